package persist_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// A run in progress holds nothing that blocks a sale; it can be cancelled
// (Cancel, or its context), stops, records what it found and frees its lock
// for the next run, which finds everything in order.
func TestReconcileCancelled(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 4})
	ctx := context.Background()
	_, _ = v.startPersister(t, persist.PersisterConfig{})
	var stores, skus []string
	for i := 0; i < 8; i++ {
		stores = append(stores, fmt.Sprintf("s%d", i))
	}
	for i := 0; i < 30; i++ {
		skus = append(skus, fmt.Sprintf("k%d", i))
	}
	for _, s := range stores {
		for _, k := range skus {
			_, err := v.e.Set(ctx, engine.SetRequest{Store: s, SKU: k, OnHand: 100}, engine.Op{})
			require.NoError(t, err)
		}
	}
	testsupport.WaitFor(t, 30*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })

	rec, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{BatchSize: 10, Parallel: 2, ProgressInterval: 5 * time.Millisecond,
		CancelPollInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	require.False(t, rec.Cancel(), "no run to cancel")
	// other stands for another process: its RequestCancel reaches the run
	// only through the run's record.
	other, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	var cancelledRuns []int64

	for _, how := range []string{"Cancel", "context", "RequestCancel"} {
		t.Run(how, func(t *testing.T) {
			reached := make(chan struct{})
			var once sync.Once
			persist.SetAfterPage(rec, func(ctx context.Context, p int) {
				once.Do(func() { close(reached) })
				<-ctx.Done() // the run stays here until it is cancelled
			})
			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			done := make(chan error, 1)
			var rep *persist.Report
			go func() {
				var err error
				rep, err = rec.Reconcile(rctx, persist.ModeRepair)
				done <- err
			}()
			<-reached
			st := rec.Stats().Run
			require.True(t, st.Running)
			require.Positive(t, st.ItemsChecked)
			require.Equal(t, 4, st.Partitions)

			// Sales and restocks go on in every store while the run is
			// in progress.
			for _, s := range stores {
				_, err := v.e.Checkout(ctx, engine.CheckoutRequest{Store: s, Lines: []engine.Line{{SKU: "k0", Qty: 1}}}, engine.Op{})
				require.NoError(t, err)
				_, err = v.e.Adjust(ctx, engine.AdjustRequest{Store: s, SKU: "k1", Delta: 2}, engine.Op{})
				require.NoError(t, err)
			}
			_, err := rec.Reconcile(ctx, persist.ModeCheck)
			require.ErrorIs(t, err, persist.ErrReconcileInProgress, "one run at a time")

			switch how {
			case "Cancel":
				require.True(t, rec.Cancel())
			case "context":
				cancel()
			case "RequestCancel":
				var run int64
				require.NoError(t, v.pool.QueryRow(ctx, `SELECT id FROM reconciliation_runs WHERE finished_at IS NULL`).Scan(&run))
				req, err := other.RequestCancel(ctx, run)
				require.NoError(t, err)
				require.Equal(t, run, req.RunID)
				again, err := other.RequestCancel(ctx, run)
				require.NoError(t, err, "asking twice is harmless")
				require.Equal(t, req.CancelRequestedAt, again.CancelRequestedAt, "the first request's time stays")
			}
			select {
			case err := <-done:
				require.ErrorIs(t, err, persist.ErrReconcileCancelled)
			case <-time.After(60 * time.Second):
				t.Fatal("the cancelled run never returned")
			}
			require.NotNil(t, rep)
			require.Less(t, rep.ItemsChecked, int64(len(stores)*len(skus)), "it stopped part way")
			require.False(t, rec.Stats().Run.Running)
			var msg string
			require.NoError(t, v.pool.QueryRow(ctx, `SELECT error FROM reconciliation_runs WHERE id = $1`, rep.RunID).Scan(&msg))
			require.Contains(t, msg, "cancelled")
			cancelledRuns = append(cancelledRuns, rep.RunID)
		})
	}
	_, err = other.RequestCancel(ctx, cancelledRuns[0])
	require.ErrorIs(t, err, persist.ErrRunFinished)
	_, err = other.RequestCancel(ctx, 1<<40)
	require.ErrorIs(t, err, persist.ErrRunNotFound)
	runs := map[string]int64{}
	for _, rc := range rec.Stats().Runs {
		runs[string(rc.Mode)+"/"+rc.Outcome] = rc.Runs
	}
	require.Equal(t, map[string]int64{"repair/cancelled": 3}, runs)

	// The lock is free: the next run checks every item and finds them in
	// order (the sales made meanwhile included, once persisted).
	persist.SetAfterPage(rec, nil)
	testsupport.WaitFor(t, 30*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	rep, err := rec.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Empty(t, rep.Findings)
	require.Equal(t, int64(len(stores)*len(skus)), rep.ItemsChecked)
	require.Equal(t, persist.RunProgress{Running: false, Partitions: 4, PartitionsDone: 4, ItemsChecked: int64(len(stores) * len(skus)),
		Seconds: rec.Stats().Run.Seconds}, rec.Stats().Run)
}
