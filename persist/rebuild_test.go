package persist_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// deletePartition deletes every key of partition p, as a Redis restart
// without persistence would.
func (v *env) deletePartition(t testing.TB, p int) {
	t.Helper()
	ctx := context.Background()
	iter := v.rdb.Scan(ctx, 0, v.e.KeyBase(p)+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	require.NoError(t, iter.Err())
	require.NotEmpty(t, keys)
	require.NoError(t, v.rdb.Del(ctx, keys...).Err())
}

// partitionSnapshot is what a rebuild must bring back: items, customer
// units and held reservations with their expiry.
type partitionSnapshot struct {
	items map[string]engine.Item
	units map[string]map[string]string
	holds []redis.Z
	res   map[string]engine.Reservation
}

func (v *env) snapshot(t testing.TB, p int) partitionSnapshot {
	t.Helper()
	ctx := context.Background()
	s := partitionSnapshot{items: map[string]engine.Item{}, units: map[string]map[string]string{}, res: map[string]engine.Reservation{}}
	for k, it := range testsupport.RedisItems(t, v.e) {
		if v.e.Partition(it.Store) != p {
			continue
		}
		it.UpdatedAt = it.UpdatedAt.Truncate(time.Millisecond)
		s.items[k] = it
		cu, err := v.rdb.HGetAll(ctx, v.e.KeyBase(p)+"cu:"+it.Store+":"+it.SKU).Result()
		require.NoError(t, err)
		if len(cu) > 0 {
			s.units[k] = cu
		}
	}
	var err error
	s.holds, err = v.rdb.ZRangeWithScores(ctx, v.e.KeyBase(p)+"rexp", 0, -1).Result()
	require.NoError(t, err)
	for _, z := range s.holds {
		r, err := v.e.GetReservation(ctx, z.Member.(string))
		require.NoError(t, err)
		s.res[r.ID] = r
	}
	return s
}

func TestRebuildAfterPartitionFlush(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 2})
	ctx := context.Background()
	_, _ = v.startPersister(t, persist.PersisterConfig{})
	workload(t, v, 7, 3, 150, testStores, testSKUs)
	testsupport.WaitFor(t, 20*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	p := v.e.Partition("s1")
	before := v.snapshot(t, p)
	require.NotEmpty(t, before.items)
	require.NotEmpty(t, before.units, "the workload leaves customer units")
	require.NotEmpty(t, before.holds, "the workload leaves held reservations")

	v.deletePartition(t, p)
	_, err := v.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1}, engine.Op{})
	require.ErrorIs(t, err, engine.ErrPartitionNotReady, "writes are refused until rebuilt")
	_, err = v.e.GetItem(ctx, "s1", "sofa")
	require.ErrorIs(t, err, engine.ErrPartitionNotReady, "reads answer not ready, never not found")

	rb, err := persist.NewRebuilder(v.e, v.pool, persist.RebuilderConfig{Interval: 20 * time.Millisecond})
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rb.Run(rctx) }()
	testsupport.WaitFor(t, 20*time.Second, "the partition to be rebuilt", func() bool {
		ok, err := v.e.PartitionReady(ctx, p)
		require.NoError(t, err)
		return ok
	})
	cancel()
	require.NoError(t, <-done)
	require.Equal(t, int64(1), rb.Rebuilds())

	after := v.snapshot(t, p)
	require.Equal(t, before.items, after.items, "items with their versions")
	require.Equal(t, before.units, after.units, "customer units")
	require.Equal(t, before.holds, after.holds, "held reservations and their expiry")
	require.Equal(t, before.res, after.res)

	// The next write carries the next version, and the ledger stays gap-free.
	prev := before.items["s1/sofa"]
	res, err := v.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1}, engine.Op{})
	require.NoError(t, err)
	require.Equal(t, prev.Version+1, res.Item.Version)
	// Restored holds behave: one is released, the rest expire on time
	// through the engine's expiry (their units and customer allowance come
	// back, and the ledger gets their events).
	released := false
	for id := range before.res {
		if !released {
			_, err := v.e.Release(ctx, id, engine.Op{})
			require.NoError(t, err)
			released = true
		}
	}
	v.clock.Advance(5 * time.Minute)
	n, err := v.e.ExpireDue(ctx, p, 1000)
	require.NoError(t, err)
	require.Equal(t, len(before.res)-1, n, "every other restored hold expires")
	testsupport.WaitFor(t, 20*time.Second, "catch up after the rebuild", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
	require.Zero(t, testsupport.Count(t, v.pool, `SELECT count(*) FROM drift_findings`))
	require.Zero(t, testsupport.Count(t, v.pool, `SELECT count(*) FROM inventory_items WHERE reserved <> 0 AND store_id IN (SELECT unnest($1::text[]))`, storesOf(v, p)),
		"no units stay held in the rebuilt partition")
}

func storesOf(v *env, p int) []string {
	var out []string
	for _, s := range testStores {
		if v.e.Partition(s) == p {
			out = append(out, s)
		}
	}
	return out
}

func TestRebuildPersistsTheSurvivingStreamFirst(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	// Half of the history persisted, half still only in the stream.
	_, stop := v.startPersister(t, persist.PersisterConfig{})
	workload(t, v, 8, 2, 60, testStores, testSKUs)
	testsupport.WaitFor(t, 20*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	require.NoError(t, stop())
	workload(t, v, 9, 2, 60, testStores, testSKUs)
	require.False(t, testsupport.LedgerCaughtUp(t, v.pool, v.e))
	before := v.snapshot(t, 0)

	require.NoError(t, v.rdb.Del(ctx, v.e.ReadyKey(0)).Err())
	rb, err := persist.NewRebuilder(v.e, v.pool, persist.RebuilderConfig{})
	require.NoError(t, err)
	require.NoError(t, rb.RebuildPartition(ctx, 0))
	require.True(t, testsupport.LedgerCaughtUp(t, v.pool, v.e), "the stream's entries were persisted before the rebuild")
	require.Equal(t, before, v.snapshot(t, 0))

	_, err = v.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 2}, engine.Op{})
	require.NoError(t, err)
	_, _ = v.startPersister(t, persist.PersisterConfig{})
	testsupport.WaitFor(t, 20*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
	require.Zero(t, testsupport.Count(t, v.pool, `SELECT count(*) FROM drift_findings`), "no fork")
}

func TestRebuildEmptyLedgerAndLock(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 2})
	ctx := context.Background()
	rb, err := persist.NewRebuilder(v.e, v.pool, persist.RebuilderConfig{})
	require.NoError(t, err)
	require.NoError(t, v.rdb.Del(ctx, v.e.ReadyKey(1)).Err())
	// Another process holds the lock.
	require.NoError(t, v.rdb.Set(ctx, v.e.KeyBase(1)+"rebuild-lock", "other", time.Minute).Err())
	require.ErrorIs(t, rb.RebuildPartition(ctx, 1), persist.ErrRebuildInProgress)
	require.NoError(t, v.rdb.Del(ctx, v.e.KeyBase(1)+"rebuild-lock").Err())
	require.NoError(t, rb.RebuildPartition(ctx, 1))
	ok, err := v.e.PartitionReady(ctx, 1)
	require.NoError(t, err)
	require.True(t, ok, "an empty ledger just marks the partition ready")
	require.Zero(t, v.rdb.Exists(ctx, v.e.KeyBase(1)+"rebuild-lock").Val(), "lock released")
	require.NoError(t, rb.RebuildPartition(ctx, 1), "a ready partition is left alone")
	require.Equal(t, int64(1), rb.Rebuilds())
}

func TestRebuildRacingRebuildersRebuildOnce(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	_, _ = v.startPersister(t, persist.PersisterConfig{})
	workload(t, v, 12, 2, 40, testStores, testSKUs)
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	before := v.snapshot(t, 0)
	v.deletePartition(t, 0)
	var rbs []*persist.Rebuilder
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		rb, err := persist.NewRebuilder(v.e, v.pool, persist.RebuilderConfig{})
		require.NoError(t, err)
		rbs = append(rbs, rb)
		go func() { errs <- rb.RebuildPartition(ctx, 0) }()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			require.ErrorIs(t, err, persist.ErrRebuildInProgress)
		}
	}
	var n int64
	for _, rb := range rbs {
		n += rb.Rebuilds()
	}
	require.Equal(t, int64(1), n, "one rebuild")
	require.Equal(t, before, v.snapshot(t, 0))
}
