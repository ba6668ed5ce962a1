package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// Redis restarted empty while a persister has a batch in its transaction
// (read from the old Redis, not yet committed). The rebuild raises the
// partition's fence before it reads the ledger, which waits for the
// batch's transaction (docs/design.md §7.3): the batch commits first, and
// the rebuild restores Redis from a ledger that has it. The acknowledged
// sale counts, and Redis never sells those units again.
func TestRebuildWaitsForABatchInItsTransaction(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{client: failFastClient})
	ctx := context.Background()
	h := newBatchHold(engine.EventSale)
	_, _ = w.startPersister(w.dpool, persist.PersisterConfig{BeforeCommit: h.hook})
	_, err := w.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 10}, engine.Op{})
	require.NoError(t, err)
	w.waitDrained(10 * time.Second)

	h.arm()
	_, err = w.e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 4}}}, op("sale-before-crash"))
	require.NoError(t, err, "an acknowledged sale")
	h.waitHeld(t) // the batch waits, inside its transaction, before COMMIT

	w.restartRedis()
	rb, err := persist.NewRebuilder(w.ins, w.dpool, persist.RebuilderConfig{})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- rb.RebuildPartition(ctx, w.ins.Partition("s1")) }()
	testsupport.WaitFor(t, 20*time.Second, "the rebuild waiting for the batch's transaction", func() bool {
		return w.count(`SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%rebuild_fences%'`) > 0
	})
	require.Zero(t, w.count(`SELECT count(*) FROM inventory_events WHERE op_id = 'sale-before-crash'`))
	h.release()
	select {
	case err = <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the rebuild did not end after the batch committed")
	}

	var ledgerV int64
	require.NoError(t, w.dpool.QueryRow(ctx, `SELECT max(version) FROM inventory_events WHERE store_id = 's1' AND sku = 'sofa'`).Scan(&ledgerV))
	it, err := w.ins.GetItem(ctx, "s1", "sofa")
	require.NoError(t, err)
	require.Equal(t, int64(1), w.count(`SELECT count(*) FROM inventory_events WHERE op_id = 'sale-before-crash'`))
	require.Equal(t, ledgerV, it.Version, "Redis restored from a ledger with the batch")
	require.Equal(t, int64(6), it.OnHand, "the sale before the crash counts")
	_, err = w.e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 7}}}, engine.Op{})
	var ise *engine.InsufficientStockError
	require.ErrorAs(t, err, &ise, "the units sold before the crash are not sold again")
	w.waitDrained(10 * time.Second)
	w.checkLedger()
}

// Redis restarted empty while a persister has a batch read from it but not
// yet in a transaction. The rebuild restores the partition without it; the
// batch then finds the partition's fence raised and is not written (docs/
// design.md §7.3): its sale is lost with Redis' data, like any write within
// the persister's lag (§13), and the ledger and Redis agree, with no fork.
func TestRebuildFencesOutABatchReadBefore(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{client: failFastClient})
	ctx := context.Background()
	h := newBatchHold(engine.EventSale)
	_, _ = w.startPersister(w.dpool, persist.PersisterConfig{BeforeWrite: h.hook})
	_, err := w.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 10}, engine.Op{})
	require.NoError(t, err)
	w.waitDrained(10 * time.Second)

	h.arm()
	_, err = w.e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 4}}}, op("sale-before-crash"))
	require.NoError(t, err, "an acknowledged sale")
	h.waitHeld(t)

	w.restartRedis()
	rb, err := persist.NewRebuilder(w.ins, w.dpool, persist.RebuilderConfig{})
	require.NoError(t, err)
	require.NoError(t, rb.RebuildPartition(ctx, w.ins.Partition("s1")))
	_, err = w.e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, op("sale-after-rebuild"))
	require.NoError(t, err)
	h.release() // the batch goes on after the rebuild read the ledger

	testsupport.WaitFor(t, 10*time.Second, "the sale after the rebuild in the ledger", func() bool {
		return w.count(`SELECT count(*) FROM inventory_events WHERE op_id = 'sale-after-rebuild'`) == 1
	})
	w.waitDrained(10 * time.Second)
	require.Zero(t, w.count(`SELECT count(*) FROM inventory_events WHERE op_id = 'sale-before-crash'`), "the batch read before the loss is not written")
	require.Zero(t, w.count(`SELECT count(*) FROM drift_findings`), "no fork")
	it, err := w.ins.GetItem(ctx, "s1", "sofa")
	require.NoError(t, err)
	require.Equal(t, int64(9), it.OnHand)
	w.checkLedger()
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
