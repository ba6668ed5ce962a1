package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// An admin cancels a reconciliation run in progress by its id: the run
// stops, is recorded as cancelled, its own request answers 409, and the
// lock is free for the next run. Only an admin may; an unknown run is 404,
// a run that is over 409.
func TestCancelReconcileRoute(t *testing.T) {
	t.Parallel()
	_, pool := testsupport.LedgerSchema(t, testsupport.MaxConns(8))
	reached := make(chan struct{})
	var once sync.Once
	ts := newTestServer(t, func(c *Config) {
		c.Ledger = persist.NewLedger(pool)
		rec, err := persist.NewReconciler(c.Engine, pool, persist.ReconcilerConfig{CancelPollInterval: 20 * time.Millisecond,
			// The repair stays here until the run is cancelled.
			Repaired: func(ctx context.Context, _ []engine.Event) error {
				once.Do(func() { close(reached) })
				<-ctx.Done()
				return ctx.Err()
			}})
		require.NoError(t, err)
		c.Reconciler = reconcilerAdapter{rec}
	})
	testsupport.StartPersister(t, ts.e, pool, persist.PersisterConfig{Linger: -1})
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		ts.put("s1", "b", int64(i))
	}
	testsupport.WaitFor(t, 20*time.Second, "the ledger catches up", func() bool { return testsupport.LedgerCaughtUp(t, pool, ts.e) })
	// Redis loses b's last write: the repair restores it from the ledger.
	require.NoError(t, ts.e.RestoreItem(ctx, engine.ItemState{Store: "s1", SKU: "b", OnHand: 2, Version: 2,
		ReorderPoint: -1, MaxPerCustomer: -1, KeepCustomerUnits: true}, 3))

	type answer struct {
		status int
		body   map[string]any
		err    error
	}
	done := make(chan answer, 1)
	go func() {
		rq, _ := http.NewRequest("POST", ts.url+"/v1/admin/reconcile?mode=repair", nil)
		rq.Header.Set("Authorization", "Bearer "+tokAdmin)
		res, err := http.DefaultClient.Do(rq)
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer res.Body.Close()
		var m map[string]any
		err = json.NewDecoder(res.Body).Decode(&m)
		done <- answer{status: res.StatusCode, body: m, err: err}
	}()
	select {
	case <-reached:
	case a := <-done:
		t.Fatalf("the run ended before its repair: %+v", a)
	}
	var run int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT id FROM reconciliation_runs WHERE finished_at IS NULL`).Scan(&run))
	path := fmt.Sprintf("/v1/admin/reconcile/%d/cancel", run)

	requireProblem(t, ts.req("POST", path, tokS1, ""), 403)
	requireProblem(t, ts.req("POST", path, tokReader, ""), 403)
	requireProblem(t, ts.req("POST", path, "", ""), 401)
	requireProblem(t, ts.req("POST", "/v1/admin/reconcile/x/cancel", tokAdmin, ""), 404)
	requireProblem(t, ts.req("POST", fmt.Sprintf("/v1/admin/reconcile/%d/cancel", run+1000), tokAdmin, ""), 404)
	requireProblem(t, ts.req("POST", path, tokAdmin, `{"now":true}`), 400)
	select {
	case a := <-done:
		t.Fatalf("refused requests cancelled the run: %+v", a)
	default:
	}

	res := ts.req("POST", path, tokAdmin, "")
	require.Equal(t, 202, res.Status, string(res.Body))
	m := res.json(t)
	require.Equal(t, float64(run), m["run_id"])
	require.NotEmpty(t, m["cancel_requested_at"])
	var a answer
	select {
	case a = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the cancelled run never answered")
	}
	require.NoError(t, a.err)
	require.Equal(t, 409, a.status, "%v", a.body)
	require.Equal(t, "https://shelfline.dev/problems/reconcile-cancelled", a.body["type"])

	var msg string
	require.NoError(t, pool.QueryRow(ctx, `SELECT error FROM reconciliation_runs WHERE id = $1`, run).Scan(&msg))
	require.Contains(t, msg, "cancelled")
	p := requireProblem(t, ts.req("POST", path, tokAdmin, "{}"), 409)
	require.Equal(t, "https://shelfline.dev/problems/run-finished", p["type"])
	r := ts.req("POST", "/v1/admin/reconcile?mode=check", tokAdmin, "")
	require.Equal(t, 200, r.Status, "the lock is free: %s", r.Body)
}
