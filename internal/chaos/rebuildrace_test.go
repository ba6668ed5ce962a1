package chaos

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// Redis restarted empty while a persister has a batch in flight (read from
// the old Redis, not yet committed). The Rebuilder restores the partition
// from the ledger as it is, without that batch; then the batch commits. The
// ledger now holds a version (an acknowledged sale) that the rebuilt Redis
// lacks. The persister sees the partition's readiness marker changed under
// its batch and brings the batch's items in Redis up to the ledger at once,
// so Redis never sells those units again.
func TestRebuildRacingAnInFlightBatchIsHealed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{client: failFastClient})
	ctx := context.Background()
	var (
		mu      sync.Mutex
		armed   bool
		entered = make(chan struct{})
		release = make(chan struct{})
	)
	hook := func(ctx context.Context, _ int, evs []engine.Event) error {
		mu.Lock()
		hold := armed
		armed = false
		mu.Unlock()
		if hold {
			close(entered)
			<-release // the batch waits, inside its transaction, before COMMIT
		}
		return nil
	}
	_, _ = w.startPersister(w.dpool, persist.PersisterConfig{BeforeCommit: hook})
	_, err := w.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 10}, engine.Op{})
	require.NoError(t, err)
	w.waitDrained(10 * time.Second)

	mu.Lock()
	armed = true
	mu.Unlock()
	_, err = w.e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 4}}}, op("sale-before-crash"))
	require.NoError(t, err, "an acknowledged sale")
	<-entered

	w.restartRedis()
	rb, err := persist.NewRebuilder(w.ins, w.dpool, persist.RebuilderConfig{})
	require.NoError(t, err)
	require.NoError(t, rb.RebuildPartition(ctx, w.ins.Partition("s1")))
	close(release) // the in-flight batch commits after the rebuild read the ledger

	// Redis must come back with what the ledger has: wait for the batch.
	testsupport.WaitFor(t, 10*time.Second, "the in-flight batch committed", func() bool {
		return w.count(`SELECT count(*) FROM inventory_events WHERE op_id = 'sale-before-crash'`) == 1
	})
	var ledgerV int64
	require.NoError(t, w.dpool.QueryRow(ctx, `SELECT max(version) FROM inventory_events WHERE store_id = 's1' AND sku = 'sofa'`).Scan(&ledgerV))
	var it engine.Item
	testsupport.WaitFor(t, 10*time.Second, "Redis brought up to the ledger", func() bool {
		it, err = w.ins.GetItem(ctx, "s1", "sofa")
		return err == nil && it.Version >= ledgerV
	})
	t.Logf("after the rebuild and the late batch: Redis at v%d (on_hand %d), the ledger at v%d", it.Version, it.OnHand, ledgerV)
	require.Equal(t, ledgerV, it.Version)
	require.Equal(t, int64(6), it.OnHand, "the sale before the crash counts")
	_, err = w.e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 7}}}, engine.Op{})
	var ise *engine.InsufficientStockError
	require.ErrorAs(t, err, &ise, "the units sold before the crash are not sold again")
}

// A keyed sale is applied and persisted; its reply is lost; Redis restarts
// empty and is rebuilt from the ledger, which has the sale with its key as
// operation id. The client's retry with the same key must not apply a second
// time: the rebuild restores a record of every keyed request of the last
// 24 h, and the retry answers ErrAlreadyApplied (its first response is not in
// the ledger) and changes nothing.
func TestRetryAfterRebuildAppliesOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{client: failFastClient})
	ctx := context.Background()
	_, _ = w.startPersister(w.dpool, persist.PersisterConfig{})
	_, err := w.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 10}, engine.Op{})
	require.NoError(t, err)
	req := engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 3}}}
	_, err = w.e.Checkout(ctx, req, op("retried-sale"))
	require.NoError(t, err) // the client never saw this reply
	w.waitDrained(10 * time.Second)

	w.restartRedis()
	rb, err := persist.NewRebuilder(w.ins, w.dpool, persist.RebuilderConfig{})
	require.NoError(t, err)
	require.NoError(t, rb.RebuildPartition(ctx, w.ins.Partition("s1")))

	testsupport.WaitFor(t, 10*time.Second, "the retry answers", func() bool {
		_, err = w.e.Checkout(ctx, req, op("retried-sale"))
		return err == nil || !engine.IsUnavailable(err)
	})
	require.ErrorIs(t, err, engine.ErrAlreadyApplied)
	w.waitDrained(10 * time.Second)
	n := w.count(`SELECT count(*) FROM inventory_events WHERE op_id = 'retried-sale'`)
	it, err := w.ins.GetItem(ctx, "s1", "sofa")
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "the retried key applied once")
	require.Equal(t, int64(7), it.OnHand)
}
