package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/persist"
)

func databaseURL() string {
	if u := os.Getenv("INVENTORY_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// testPool returns a pool on a fresh, migrated schema of the test database,
// dropped after the test.
func testPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "th_" + hex.EncodeToString(b)
	admin, err := pgxpool.New(ctx, databaseURL())
	require.NoError(t, err)
	require.NoError(t, admin.Ping(ctx), "real PostgreSQL at %s must be reachable", databaseURL())
	_, err = admin.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	cfg, err := pgxpool.ParseConfig(databaseURL())
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 6
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		pool.Close()
		_, _ = admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	})
	require.NoError(t, persist.Migrate(ctx, pool))
	return pool
}

type reconcilerAdapter struct{ r *persist.Reconciler }

func (a reconcilerAdapter) Reconcile(ctx context.Context, mode string) (any, error) {
	m, err := persist.ParseMode(mode)
	if err != nil {
		return nil, err
	}
	return a.r.Reconcile(ctx, m)
}

// TestLedgerRoutes runs the API with the real ledger: the persister drains
// the streams, history reads PostgreSQL, reconcile runs on demand, and
// readiness covers PostgreSQL.
func TestLedgerRoutes(t *testing.T) {
	t.Parallel()
	pool := testPool(t)
	var rec *persist.Reconciler
	ts := newTestServer(t, func(c *Config) {
		c.Ledger = persist.NewLedger(pool)
		var err error
		rec, err = persist.NewReconciler(c.Engine, pool, persist.ReconcilerConfig{})
		require.NoError(t, err)
		c.Reconciler = reconcilerAdapter{rec}
	})
	p, err := persist.NewPersister(ts.e, pool, persist.PersisterConfig{Block: 50 * time.Millisecond, Linger: -1})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	r := ts.req("GET", "/readyz", "", "")
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Equal(t, "ok", r.json(t)["checks"].(map[string]any)["postgres"])

	require.Equal(t, 201, ts.req("PUT", "/v1/stores/s1/items/sofa", tokAdmin, `{"on_hand":5}`).Status)
	require.Equal(t, 200, ts.req("POST", "/v1/stores/s1/items/sofa/adjust", tokS1, `{"delta":-2,"reason":"damaged"}`).Status)
	var events []any
	require.Eventually(t, func() bool {
		r := ts.req("GET", "/v1/stores/s1/items/sofa/history", tokS1, "")
		if r.Status != 200 {
			return false
		}
		events = r.json(t)["events"].([]any)
		return len(events) == 2
	}, 10*time.Second, 50*time.Millisecond)
	newest := events[0].(map[string]any)
	require.Equal(t, "ADJUST", newest["type"])
	require.Equal(t, float64(2), newest["version"])
	require.Equal(t, float64(-2), newest["delta_on_hand"])
	require.Equal(t, "damaged", newest["reason"])
	r = ts.req("GET", "/v1/stores/s1/items/sofa/history?limit=1", tokReader, "")
	require.Len(t, r.json(t)["events"], 1)
	requireProblem(t, ts.req("GET", "/v1/stores/s1/items/none/history", tokReader, ""), 404)
	requireProblem(t, ts.req("GET", "/v1/stores/s1/items/sofa/history?limit=0", tokReader, ""), 400)

	r = ts.req("POST", "/v1/admin/reconcile?mode=check", tokAdmin, "")
	require.Equal(t, 200, r.Status, "%s", r.Body)
	rep := r.json(t)
	require.Equal(t, "check", rep["mode"])
	require.Contains(t, rep, "findings")
	r = ts.req("POST", "/v1/admin/reconcile?mode=repair", tokAdmin, "", "Idempotency-Key", "rec-1")
	require.Equal(t, 200, r.Status, "%s", r.Body)
	again := ts.req("POST", "/v1/admin/reconcile?mode=repair", tokAdmin, "", "Idempotency-Key", "rec-1")
	require.Equal(t, r.Body, again.Body)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
}
