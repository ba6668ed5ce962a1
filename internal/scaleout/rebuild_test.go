package scaleout

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/redistest"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// The batched rebuild on a Redis Cluster: items loaded with the bulk set on
// stores of every master, Redis loses every key of the deployment, and the
// rebuilder (several partitions at a time, small restore batches, several
// batches in flight) brings every item back as it was, each restore call
// within its partition's slot.
func TestBatchedRebuildOnCluster(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, redistest.Shared(t))
	d.startPersister()
	ctx := context.Background()
	stores, masterOf := d.storesOnEveryMaster(2)
	skus := make([]string, 120)
	for i := range skus {
		skus[i] = fmt.Sprintf("k%03d", i)
	}
	var lines []engine.SetRequest
	for i, s := range stores {
		for j, k := range skus {
			l := engine.SetRequest{Store: s, SKU: k, OnHand: int64(10 + (i*7+j)%50)}
			if j%3 == 0 {
				rp, ss := int64(j%7), int64(j%4)
				l.ReorderPoint, l.SafetyStock = &rp, &ss
			}
			if j%5 == 0 {
				mpc := int64(3)
				l.MaxPerCustomer = &mpc
			}
			lines = append(lines, l)
		}
	}
	res, err := d.e.SetMany(ctx, lines, engine.Op{})
	require.NoError(t, err)
	for i, r := range res.Lines {
		require.NoError(t, r.Err, "line %d", i)
		require.True(t, r.Created)
	}
	// Later versions and units in other states, so the rebuild restores
	// more than a first set.
	for _, s := range stores {
		_, err := d.e.Adjust(ctx, engine.AdjustRequest{Store: s, SKU: "k001", Delta: 5}, engine.Op{})
		require.NoError(t, err)
		_, err = d.e.Move(ctx, engine.MoveRequest{Store: s, SKU: "k002", From: engine.StateAvailable, To: engine.StateDamaged, Qty: 2}, engine.Op{})
		require.NoError(t, err)
		_, err = d.e.Checkout(ctx, engine.CheckoutRequest{Store: s, Lines: []engine.Line{{SKU: "k004", Qty: 1}}}, engine.Op{})
		require.NoError(t, err)
	}
	d.waitDrained(60 * time.Second)
	testsupport.WaitFor(t, 60*time.Second, "the ledger catches up", func() bool { return testsupport.LedgerCaughtUp(t, d.pool, d.e) })
	before := map[string]engine.Item{}
	for _, s := range stores {
		for _, k := range skus {
			it, err := d.e.GetItem(ctx, s, k)
			require.NoError(t, err)
			before[itemKey(s, k)] = it
		}
	}

	// Redis loses every key of the deployment, on every master.
	require.NoError(t, testsupport.CleanPrefix(ctx, d.rdb, d.prefix))
	_, err = d.e.GetItem(ctx, stores[0], "k000")
	require.ErrorIs(t, err, engine.ErrPartitionNotReady)

	rb, err := persist.NewRebuilder(d.e, d.pool, persist.RebuilderConfig{Interval: 20 * time.Millisecond, Parallel: 3, RestoreBatch: 17, Workers: 3})
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rb.Run(rctx) }()
	all := make([]int, partitions)
	for i := range all {
		all[i] = i
	}
	testsupport.WaitFor(t, 90*time.Second, "every partition rebuilt", func() bool {
		n, err := d.e.PartitionsNotReady(ctx, all)
		require.NoError(t, err)
		return len(n) == 0
	})
	cancel()
	require.NoError(t, <-done)
	require.Equal(t, int64(len(before)), rb.Stats().Items, "every item restored once")

	masters := map[string]bool{}
	for _, s := range stores {
		masters[masterOf[s]] = true
		for _, k := range skus {
			it, err := d.e.GetItem(ctx, s, k)
			require.NoError(t, err)
			require.Equal(t, before[itemKey(s, k)], it, "%s/%s", s, k)
		}
	}
	require.Len(t, masters, 3, "stores on every master")
	// And the rebuilt items take writes again, on every master.
	for _, s := range stores {
		r, err := d.e.Checkout(ctx, engine.CheckoutRequest{Store: s, Lines: []engine.Line{{SKU: "k001", Qty: 1}}}, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, before[itemKey(s, "k001")].Version+1, r.Items[0].Version)
	}
}
