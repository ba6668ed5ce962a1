package persist_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// A Reconciler counts its runs by mode and outcome, its findings by kind
// (every kind present from the start) and the partitions its repair runs
// rebuilt with the items and reservations they restored.
func TestReconcilerStats(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 2})
	ctx := context.Background()
	_, _ = v.startPersister(t, persist.PersisterConfig{})
	workload(t, v, 12, 2, 40, testStores, testSKUs)
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	rc, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)

	st := rc.Stats()
	require.Empty(t, st.Runs)
	require.True(t, st.LastRun.IsZero())
	for _, k := range []string{persist.KindRedisMissing, persist.KindRedisBehind, persist.KindRedisAhead, persist.KindCorrupt,
		persist.KindPartitionNotReady, persist.KindPersisterFailing, persist.KindFork, persist.KindOversold, persist.KindLedgerGap} {
		n, ok := st.Findings[k]
		require.True(t, ok, "kind %s counted from zero", k)
		require.Zero(t, n)
	}

	rep, err := rc.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Empty(t, rep.Findings)
	p := v.e.Partition("s1")
	snap := v.snapshot(t, p)
	require.NotEmpty(t, snap.items)
	v.deletePartition(t, p)
	rep, err = rc.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Len(t, rep.Findings, 1)
	rep, err = rc.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	require.Len(t, rep.Findings, 1)

	st = rc.Stats()
	require.Equal(t, []persist.RunCount{
		{Mode: persist.ModeCheck, Outcome: persist.OutcomeClean, Runs: 1},
		{Mode: persist.ModeCheck, Outcome: persist.OutcomeDrift, Runs: 1},
		{Mode: persist.ModeRepair, Outcome: persist.OutcomeDrift, Runs: 1},
	}, st.Runs)
	require.Equal(t, int64(2), st.Findings[persist.KindPartitionNotReady])
	require.Zero(t, st.Findings[persist.KindRedisMissing])
	require.Equal(t, rep.FinishedAt, st.LastRun)
	require.Positive(t, st.ItemsChecked)
	require.Positive(t, st.Rebuilds.Seconds)
	st.Rebuilds.Seconds = 0
	require.Equal(t, persist.RebuilderStats{Partitions: 1, Items: int64(len(snap.items)), Reservations: int64(len(snap.res))}, st.Rebuilds)
}

// A Rebuilder counts the partitions it rebuilt and what they restored.
func TestRebuilderStats(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 2})
	ctx := context.Background()
	_, _ = v.startPersister(t, persist.PersisterConfig{})
	workload(t, v, 13, 2, 40, testStores, testSKUs)
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	p := v.e.Partition("s1")
	snap := v.snapshot(t, p)
	v.deletePartition(t, p)
	rb, err := persist.NewRebuilder(v.e, v.pool, persist.RebuilderConfig{})
	require.NoError(t, err)
	require.Equal(t, persist.RebuilderStats{}, rb.Stats())
	require.NoError(t, rb.RebuildPartition(ctx, p))
	got := rb.Stats()
	require.Positive(t, got.Seconds, "the time the rebuild took")
	got.Seconds = 0
	require.Equal(t, persist.RebuilderStats{Partitions: 1, Items: int64(len(snap.items)), Reservations: int64(len(snap.res))}, got)
	require.Equal(t, int64(1), rb.Rebuilds())
	require.NoError(t, rb.RebuildPartition(ctx, p), "ready already: nothing to do")
	require.Equal(t, int64(1), rb.Stats().Partitions)
}
