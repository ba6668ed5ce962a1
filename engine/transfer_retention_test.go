package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// A transfer whose caller stopped between ship and expect reads as the
// source shipped it (in transit), from GET and from the source's list, not
// 404, until the worker writes its record (docs/design.md §20.4).
func TestTransferReadBeforeExpect(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clock := newFakeClock()
		e := b.make(t, engine.Config{Clock: clock.Now})
		mustSet(t, e, whStore, "sofa", 10)
		var id string
		e.SetAfterShip(func(x string) error { id = x; return errCrash })
		_, err := e.CreateTransfer(ctx, engine.TransferRequest{From: whStore, To: shopStore, Lines: lines("sofa", 4), Reference: "po-1"}, engine.Op{})
		require.ErrorIs(t, err, errCrash)
		e.SetAfterShip(nil)
		got, err := e.GetTransfer(ctx, id)
		require.NoError(t, err, "a shipped transfer is never 404")
		require.Equal(t, engine.TransferInTransit, got.Status)
		require.Equal(t, whStore, *got.From)
		require.Equal(t, []engine.TransferLine{{SKU: "sofa", Qty: 4}}, got.Lines)
		page, _, err := e.ListTransfers(ctx, engine.TransferFilter{Store: whStore})
		require.NoError(t, err)
		require.Len(t, page, 1, "the source's list has it")
		_, err = e.GetTransfer(ctx, "0-00000000000000000000000000000000")
		require.ErrorIs(t, err, engine.ErrNotFound, "an unknown id is still 404")

		clock.Advance(3 * time.Second)
		require.Equal(t, 1, engine.NewTransferWorker(e, engine.TransferWorkerConfig{}).FinishDue(ctx))
		after, err := e.GetTransfer(ctx, id)
		require.NoError(t, err)
		require.Equal(t, got.ID, after.ID)
		require.Equal(t, got.Lines, after.Lines)
		require.Equal(t, engine.TransferInTransit, after.Status)
	})
}

// A receipt or a cancel of a transfer whose caller stopped between its
// halves (shipped, the expect step not run yet) runs the expect step itself
// and succeeds: a transfer answered 201 is never 404. The worker then has
// nothing left to do, and the stock moved once.
func TestTransferStepBeforeExpect(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clock := newFakeClock()
		e := b.make(t, engine.Config{Clock: clock.Now})
		mustSet(t, e, whStore, "sofa", 10)
		ship := func() string {
			var id string
			e.SetAfterShip(func(x string) error { id = x; return errCrash })
			_, err := e.CreateTransfer(ctx, engine.TransferRequest{From: whStore, To: shopStore, Lines: lines("sofa", 3)}, engine.Op{})
			require.ErrorIs(t, err, errCrash)
			e.SetAfterShip(nil)
			return id
		}
		received := ship()
		r, err := e.ReceiveTransfer(ctx, received, []engine.ReceiveLine{{SKU: "sofa", Received: 3}}, engine.Op{IdempotencyKey: "rcv-1"})
		require.NoError(t, err, "a receipt before the expect step")
		require.Equal(t, engine.TransferReceived, r.Transfer.Status)
		cancelled := ship()
		c, err := e.CancelTransfer(ctx, cancelled, engine.Op{})
		require.NoError(t, err, "a cancel before the expect step")
		require.Equal(t, engine.TransferCancelled, c.Transfer.Status)
		clock.Advance(3 * time.Second)
		engine.NewTransferWorker(e, engine.TransferWorkerConfig{}).FinishDue(ctx)
		src, err := e.GetItem(ctx, whStore, "sofa")
		require.NoError(t, err)
		require.Equal(t, int64(7), src.OnHand, "10 - 3 received; the cancelled 3 came back")
		dst, err := e.GetItem(ctx, shopStore, "sofa")
		require.NoError(t, err)
		require.Equal(t, int64(3), dst.OnHand)
		require.Zero(t, dst.Incoming)
		_, err = e.ReceiveTransfer(ctx, "0-00000000000000000000000000000000", []engine.ReceiveLine{{SKU: "sofa", Received: 1}}, engine.Op{})
		require.ErrorIs(t, err, engine.ErrNotFound, "an unknown id is still 404")
	})
}

// Finished transfers leave Redis once their retention has passed: the
// record with its index entries and the source's marker; transfers in
// transit and those still within the retention stay.
func TestTransferRetention(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clock := newFakeClock()
		e := b.make(t, engine.Config{Clock: clock.Now, TransferRetention: time.Hour})
		mustSet(t, e, whStore, "sofa", 100)
		received := mustTransfer(t, e, engine.TransferRequest{From: whStore, To: shopStore, Lines: lines("sofa", 2)})
		cancelled := mustTransfer(t, e, engine.TransferRequest{From: whStore, To: shopStore, Lines: lines("sofa", 3)})
		supplied := mustTransfer(t, e, engine.TransferRequest{To: shopStore, Lines: lines("sofa", 5)})
		open := mustTransfer(t, e, engine.TransferRequest{From: whStore, To: shopStore, Lines: lines("sofa", 1)})
		_, err := e.ReceiveTransfer(ctx, received.ID, []engine.ReceiveLine{{SKU: "sofa", Received: 1, Missing: 1}}, engine.Op{})
		require.NoError(t, err)
		_, err = e.CancelTransfer(ctx, cancelled.ID, engine.Op{})
		require.NoError(t, err)
		_, err = e.ReceiveTransfer(ctx, supplied.ID, []engine.ReceiveLine{{SKU: "sofa", Received: 5}}, engine.Op{})
		require.NoError(t, err)

		w := engine.NewTransferWorker(e, engine.TransferWorkerConfig{})
		clock.Advance(59 * time.Minute)
		w.FinishDue(ctx)
		for _, tr := range []engine.Transfer{received, cancelled, supplied, open} {
			_, err := e.GetTransfer(ctx, tr.ID)
			require.NoError(t, err, "within the retention")
		}
		clock.Advance(2 * time.Minute)
		w.FinishDue(ctx)
		w.FinishDue(ctx) // a second look changes nothing
		for _, tr := range []engine.Transfer{received, cancelled, supplied} {
			_, err := e.GetTransfer(ctx, tr.ID)
			require.ErrorIs(t, err, engine.ErrNotFound, "deleted after the retention: %s", tr.ID)
			for name, key := range e.TransferKeysForTest(whStore, tr.ID) {
				if name == "transfer_out_key" {
					n, err := e.Client().Exists(ctx, key).Result()
					require.NoError(t, err)
					require.Zero(t, n, "the source's marker is gone")
				}
			}
			for name, key := range e.TransferKeysForTest(shopStore, tr.ID) {
				if name == "transfer_key" {
					n, err := e.Client().Exists(ctx, key).Result()
					require.NoError(t, err)
					require.Zero(t, n, "the record is gone")
				}
			}
		}
		got, err := e.GetTransfer(ctx, open.ID)
		require.NoError(t, err, "in transit: kept")
		require.Equal(t, engine.TransferInTransit, got.Status)
		for _, store := range []string{whStore, shopStore} {
			page, next, err := e.ListTransfers(ctx, engine.TransferFilter{Store: store})
			require.NoError(t, err)
			require.Empty(t, next)
			require.Len(t, page, 1, "only the open one is listed from Redis at %s", store)
			require.Equal(t, open.ID, page[0].ID)
		}
		byID, err := e.GetTransfers(ctx, []string{open.ID, received.ID})
		require.NoError(t, err)
		require.Len(t, byID, 1)
		n, err := e.Client().ZCard(ctx, e.TransferDoneKey(e.Partition(shopStore))).Result()
		require.NoError(t, err)
		require.Zero(t, n, "nothing left to delete")
		// stock is untouched by the deletion
		require.Equal(t, counts{OnHand: 6, Damaged: 0, Incoming: 1, Version: 8}, rawCounts(t, e, shopStore, "sofa"))
	})
}
