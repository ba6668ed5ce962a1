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

// Every partition lost at once is rebuilt several at a time, in batches;
// a rebuilt partition serves reads and writes while another is still being
// rebuilt, and in the end every item equals the ledger.
func TestParallelRebuildServesRebuiltPartitions(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 8})
	ctx := context.Background()
	_, _ = v.startPersister(t, persist.PersisterConfig{})
	var stores, skus []string
	for i := 0; i < 24; i++ {
		stores = append(stores, fmt.Sprintf("s%d", i))
	}
	for i := 0; i < 40; i++ {
		skus = append(skus, fmt.Sprintf("k%d", i))
	}
	workload(t, v, 11, 4, 200, stores, skus)
	// Every stock state and the safety stock must come back too.
	ss := int64(3)
	for i, s := range stores {
		for j, to := range []string{engine.StateDamaged, engine.StateQualityControl, engine.StateDisplay, engine.StateCommitted} {
			_, err := v.e.Move(ctx, engine.MoveRequest{Store: s, SKU: skus[(i+j)%len(skus)], From: engine.StateAvailable, To: to, Qty: int64(1 + j)}, engine.Op{})
			require.NoError(t, err)
		}
		_, err := v.e.Set(ctx, engine.SetRequest{Store: s, SKU: "k39", OnHand: 400, SafetyStock: &ss}, engine.Op{})
		require.NoError(t, err)
	}
	testsupport.WaitFor(t, 30*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	before := testsupport.RedisItems(t, v.e)
	require.Len(t, before, len(stores)*len(skus))

	held := v.e.Partition("s0")
	busy := map[int]bool{}
	for _, s := range stores {
		busy[v.e.Partition(s)] = true
	}
	require.Greater(t, len(busy), 2, "the stores spread over several partitions")
	for p := 0; p < v.e.Partitions(); p++ {
		v.deletePartition(t, p)
	}

	rb, err := persist.NewRebuilder(v.e, v.pool, persist.RebuilderConfig{Interval: 20 * time.Millisecond, Parallel: 3, RestoreBatch: 37, Workers: 3})
	require.NoError(t, err)
	release := make(chan struct{})
	reached := make(chan struct{})
	var once sync.Once
	persist.SetBeforeMarkReady(rb, func(p int) {
		if p == held {
			once.Do(func() { close(reached) })
			<-release
		}
	})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rb.Run(rctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	select {
	case <-reached:
	case <-time.After(60 * time.Second):
		t.Fatal("the held partition's rebuild never reached its end")
	}
	others := func() bool {
		for p := 0; p < v.e.Partitions(); p++ {
			if p == held {
				continue
			}
			ok, err := v.e.PartitionReady(ctx, p)
			require.NoError(t, err)
			if !ok {
				return false
			}
		}
		return true
	}
	testsupport.WaitFor(t, 60*time.Second, "every other partition to be rebuilt", others)
	ready, err := v.e.PartitionReady(ctx, held)
	require.NoError(t, err)
	require.False(t, ready, "the held partition is still being rebuilt")
	require.Equal(t, int64(1), rb.Stats().Rebuilding)

	// The rebuilt partitions serve reads and writes meanwhile; the held one
	// answers not ready.
	adjusted := map[string]int64{}
	for _, s := range stores {
		if v.e.Partition(s) == held {
			_, err := v.e.GetItem(ctx, s, "k1")
			require.ErrorIs(t, err, engine.ErrPartitionNotReady)
			_, err = v.e.Adjust(ctx, engine.AdjustRequest{Store: s, SKU: "k1", Delta: 1}, engine.Op{})
			require.ErrorIs(t, err, engine.ErrPartitionNotReady)
			continue
		}
		k := testsupport.ItemKey(s, "k1")
		it, err := v.e.GetItem(ctx, s, "k1")
		require.NoError(t, err)
		require.Equal(t, before[k].Version, it.Version)
		require.Equal(t, before[k].OnHand, it.OnHand)
		res, err := v.e.Adjust(ctx, engine.AdjustRequest{Store: s, SKU: "k1", Delta: 3}, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, before[k].Version+1, res.Item.Version)
		require.Equal(t, before[k].OnHand+3, res.Item.OnHand)
		adjusted[k] = 3
	}
	require.NotEmpty(t, adjusted)

	close(release)
	testsupport.WaitFor(t, 60*time.Second, "every partition to be rebuilt", func() bool {
		all := make([]int, v.e.Partitions())
		for i := range all {
			all[i] = i
		}
		n, err := v.e.PartitionsNotReady(ctx, all)
		require.NoError(t, err)
		// The marker goes up just before the rebuild counts itself done.
		return len(n) == 0 && rb.Stats().Rebuilding == 0
	})
	st := rb.Stats()
	require.Equal(t, int64(len(busy)), st.Partitions, "every partition with stores rebuilt once")
	require.Equal(t, int64(len(before)), st.Items)
	require.Zero(t, st.Rebuilding)

	after := testsupport.RedisItems(t, v.e)
	require.Len(t, after, len(before))
	for k, b := range before {
		a := after[k]
		require.Equal(t, b.Version+min(adjusted[k], 1), a.Version, k)
		require.Equal(t, b.OnHand+adjusted[k], a.OnHand, k)
		require.Equal(t, b.Reserved, a.Reserved, k)
		require.Equal(t, b.ReorderPoint, a.ReorderPoint, k)
		require.Equal(t, b.MaxPerCustomer, a.MaxPerCustomer, k)
		require.Equal(t, b.SafetyStock, a.SafetyStock, k)
		require.Equal(t, []int64{b.Committed, b.Damaged, b.QualityControl, b.Display, b.Incoming},
			[]int64{a.Committed, a.Damaged, a.QualityControl, a.Display, a.Incoming}, k)
	}
	states := 0
	for _, it := range after {
		if it.Committed > 0 || it.Damaged > 0 || it.QualityControl > 0 || it.Display > 0 {
			states++
		}
	}
	require.GreaterOrEqual(t, states, len(stores), "items with units in states were rebuilt")
	testsupport.WaitFor(t, 30*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{NoOversell: true})
}
