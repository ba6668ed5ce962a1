package httpapi

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

type reconcilerAdapter struct{ r *persist.Reconciler }

func (a reconcilerAdapter) Reconcile(ctx context.Context, mode string) (any, error) {
	m, err := persist.ParseMode(mode)
	if err != nil {
		return nil, err
	}
	return a.r.Reconcile(ctx, m)
}

// CancelRun asks the run to stop (persist.Reconciler.RequestCancel).
func (a reconcilerAdapter) CancelRun(ctx context.Context, run int64) (any, error) {
	return a.r.RequestCancel(ctx, run)
}

// TestLedgerRoutes runs the API with the real ledger: the persister drains
// the streams, history reads PostgreSQL, reconcile runs on demand, and
// readiness covers PostgreSQL.
func TestLedgerRoutes(t *testing.T) {
	t.Parallel()
	_, pool := testsupport.LedgerSchema(t, testsupport.MaxConns(6))
	var rec *persist.Reconciler
	ts := newTestServer(t, func(c *Config) {
		c.Ledger = persist.NewLedger(pool)
		var err error
		rec, err = persist.NewReconciler(c.Engine, pool, persist.ReconcilerConfig{})
		require.NoError(t, err)
		c.Reconciler = reconcilerAdapter{rec}
	})
	testsupport.StartPersister(t, ts.e, pool, persist.PersisterConfig{Linger: -1})

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
