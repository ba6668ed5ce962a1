package engine_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// The states of docs/design.md §10, on every backend.

// requireInvariant checks §10's invariant and available rule on an item.
func requireInvariant(t *testing.T, it engine.Item) {
	t.Helper()
	for _, n := range []int64{it.OnHand, it.Reserved, it.Committed, it.Damaged, it.QualityControl, it.Display, it.Incoming} {
		require.GreaterOrEqual(t, n, int64(0), "%+v", it)
	}
	require.LessOrEqual(t, it.Reserved+it.Held(), it.OnHand, "%+v", it)
	require.Equal(t, engine.Available(it), it.Available, "%+v", it)
	require.GreaterOrEqual(t, it.Available, int64(0))
}

func TestAvailableRule(t *testing.T) {
	ss := int64(3)
	it := engine.Item{OnHand: 20, Reserved: 2, States: engine.States{Committed: 3, Damaged: 1, QualityControl: 4, Display: 2, Incoming: 50}}
	require.Equal(t, int64(8), engine.Available(it))
	require.Equal(t, int64(8), engine.TillAvailable(it))
	it.SafetyStock = &ss
	require.Equal(t, int64(5), engine.Available(it))
	require.Equal(t, int64(8), engine.TillAvailable(it))
	ss = 9
	require.Equal(t, int64(0), engine.Available(it), "shown as 0 when negative")
}

func TestSafetyStockAndTill(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		r, err := e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 5, SafetyStock: i64(2)}, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, int64(3), r.Item.Available)
		require.Equal(t, i64(2), r.Item.SafetyStock)
		var ise *engine.InsufficientStockError
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 4}}}, engine.Op{})
		require.ErrorAs(t, err, &ise)
		require.Equal(t, []engine.Shortage{{SKU: "sofa", Requested: 4, Available: 3}}, ise.Shortages)
		_, err = e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 4}}}, engine.Op{})
		require.ErrorAs(t, err, &ise)
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Channel: "web", Lines: []engine.Line{{SKU: "sofa", Qty: 3}}}, engine.Op{})
		require.NoError(t, err)
		// the web shop has sold what it may; the till sells the safety stock
		require.Equal(t, int64(0), mustGet(t, e, "s1", "sofa").Available)
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{})
		require.ErrorAs(t, err, &ise)
		c, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Channel: engine.ChannelPOS, Lines: []engine.Line{{SKU: "sofa", Qty: 2}}}, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, int64(0), c.Items[0].OnHand)
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Channel: engine.ChannelPOS, Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{})
		require.ErrorAs(t, err, &ise)
		// clearing the safety stock: null again
		r, err = e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 4, ClearSafetyStock: true}, engine.Op{})
		require.NoError(t, err)
		require.Nil(t, r.Item.SafetyStock)
		require.Equal(t, int64(4), r.Item.Available)
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Channel: "kiosk", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{})
		var ve *engine.ValidationError
		require.ErrorAs(t, err, &ve)
		require.Equal(t, "channel", ve.Field)
		requireInvariant(t, mustGet(t, e, "s1", "sofa"))
		checkItemLedger(t, e, "s1", "sofa")
	})
}

func TestLaterFulfilment(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		mustSet(t, e, "s1", "sofa", 5)
		mustSet(t, e, "s1", "lamp", 2)
		c, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Fulfilment: engine.FulfilmentLater, Customer: "c1",
			Lines: []engine.Line{{SKU: "sofa", Qty: 2}}}, engine.Op{})
		require.NoError(t, err)
		it := c.Items[0]
		require.Equal(t, int64(5), it.OnHand, "a later sale leaves on_hand")
		require.Equal(t, int64(2), it.Committed)
		require.Equal(t, int64(3), it.Available)
		evs := itemEvents(t, e, "s1", "sofa")
		sale := evs[len(evs)-1]
		require.Equal(t, engine.EventSale, sale.Type)
		require.Equal(t, int64(0), sale.DeltaOnHand)
		require.Equal(t, int64(2), sale.DeltaCommitted)
		require.Equal(t, "c1", sale.Customer)

		// a reservation committed for later delivery
		res, err := e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}, {SKU: "lamp", Qty: 1}}}, engine.Op{})
		require.NoError(t, err)
		_, err = e.CommitFulfilment(ctx, res.Reservation.ID, "soon", engine.Op{})
		var ve *engine.ValidationError
		require.ErrorAs(t, err, &ve)
		cr, err := e.CommitFulfilment(ctx, res.Reservation.ID, engine.FulfilmentLater, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, engine.StatusCommitted, cr.Reservation.Status)
		sofa := mustGet(t, e, "s1", "sofa")
		require.Equal(t, int64(5), sofa.OnHand)
		require.Equal(t, int64(0), sofa.Reserved)
		require.Equal(t, int64(3), sofa.Committed)
		ev := itemEvents(t, e, "s1", "lamp")
		require.Equal(t, engine.EventCommit, ev[len(ev)-1].Type)
		require.Equal(t, int64(-1), ev[len(ev)-1].DeltaReserved)
		require.Equal(t, int64(1), ev[len(ev)-1].DeltaCommitted)

		// fulfilment: all lines or none
		var ise *engine.InsufficientStockError
		_, err = e.Fulfil(ctx, engine.FulfilRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 3}, {SKU: "lamp", Qty: 2}}}, engine.Op{})
		require.ErrorAs(t, err, &ise)
		require.Equal(t, []engine.Shortage{{SKU: "lamp", Requested: 2, Available: 1}}, ise.Shortages)
		require.Equal(t, sofa, mustGet(t, e, "s1", "sofa"), "nothing changed")
		f, err := e.Fulfil(ctx, engine.FulfilRequest{Store: "s1", Reference: "delivery 17", Lines: []engine.Line{{SKU: "sofa", Qty: 3}, {SKU: "lamp", Qty: 1}}}, engine.Op{IdempotencyKey: "f-1"})
		require.NoError(t, err)
		require.Equal(t, int64(2), f.Items[0].OnHand)
		require.Equal(t, int64(0), f.Items[0].Committed)
		require.Equal(t, int64(1), f.Items[1].OnHand)
		again, err := e.Fulfil(ctx, engine.FulfilRequest{Store: "s1", Reference: "delivery 17", Lines: []engine.Line{{SKU: "sofa", Qty: 3}, {SKU: "lamp", Qty: 1}}}, engine.Op{IdempotencyKey: "f-1"})
		require.NoError(t, err)
		require.True(t, again.Replayed)
		require.Equal(t, f.Items, again.Items)
		ev = itemEvents(t, e, "s1", "sofa")
		require.Equal(t, engine.EventFulfil, ev[len(ev)-1].Type)
		require.Equal(t, int64(-3), ev[len(ev)-1].DeltaOnHand)
		require.Equal(t, int64(-3), ev[len(ev)-1].DeltaCommitted)
		require.Equal(t, "delivery 17", ev[len(ev)-1].Reason)
		_, err = e.Fulfil(ctx, engine.FulfilRequest{Store: "s1", Lines: []engine.Line{{SKU: "ghost", Qty: 1}}}, engine.Op{})
		require.ErrorIs(t, err, engine.ErrNotFound)
		_, err = e.Fulfil(ctx, engine.FulfilRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 0}}}, engine.Op{})
		require.ErrorAs(t, err, &ve)
		for _, sku := range []string{"sofa", "lamp"} {
			requireInvariant(t, mustGet(t, e, "s1", sku))
			checkItemLedger(t, e, "s1", sku)
		}
	})
}

func TestMovesAndStateAdjust(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		r, err := e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 10, SafetyStock: i64(1)}, engine.Op{})
		require.NoError(t, err)
		before := r.Item
		var ve *engine.ValidationError
		for _, bad := range []engine.MoveRequest{
			{From: "available", To: "stolen", Qty: 1},
			{From: "attic", To: "damaged", Qty: 1},
			{From: "damaged", To: "damaged", Qty: 1},
			{From: "damaged", To: "committed", Qty: 1},
			{From: "committed", To: "display", Qty: 1},
			{From: "available", To: "display", Qty: 0},
			{From: "available", To: "display", Qty: -2},
		} {
			bad.Store, bad.SKU = "s1", "sofa"
			_, err := e.Move(ctx, bad, engine.Op{})
			require.ErrorAs(t, err, &ve, "%+v", bad)
		}
		var ise *engine.InsufficientStockError
		_, err = e.Move(ctx, engine.MoveRequest{Store: "s1", SKU: "sofa", From: "available", To: "display", Qty: 10}, engine.Op{})
		require.ErrorAs(t, err, &ise, "available is 9 with the safety stock")
		_, err = e.Move(ctx, engine.MoveRequest{Store: "s1", SKU: "sofa", From: "damaged", To: "available", Qty: 1}, engine.Op{})
		require.ErrorAs(t, err, &ise)
		_, err = e.Move(ctx, engine.MoveRequest{Store: "ghost", SKU: "sofa", From: "available", To: "display", Qty: 1}, engine.Op{})
		require.ErrorIs(t, err, engine.ErrNotFound)
		require.Equal(t, before, mustGet(t, e, "s1", "sofa"), "refusals change nothing")

		m, err := e.Move(ctx, engine.MoveRequest{Store: "s1", SKU: "sofa", From: "available", To: "display", Qty: 2, Reason: "showroom"}, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, int64(10), m.Item.OnHand)
		require.Equal(t, int64(2), m.Item.Display)
		require.Equal(t, int64(7), m.Item.Available)
		_, err = e.Move(ctx, engine.MoveRequest{Store: "s1", SKU: "sofa", From: "display", To: "damaged", Qty: 1}, engine.Op{})
		require.NoError(t, err)
		_, err = e.Move(ctx, engine.MoveRequest{Store: "s1", SKU: "sofa", From: "available", To: "quality_control", Qty: 3}, engine.Op{})
		require.NoError(t, err)
		_, err = e.Move(ctx, engine.MoveRequest{Store: "s1", SKU: "sofa", From: "available", To: "committed", Qty: 2, Reason: "phone order"}, engine.Op{})
		require.NoError(t, err)
		m, err = e.Move(ctx, engine.MoveRequest{Store: "s1", SKU: "sofa", From: "committed", To: "available", Qty: 1, Reason: "cancelled"}, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, engine.States{Committed: 1, Damaged: 1, QualityControl: 3, Display: 1}, m.Item.States)
		ev := itemEvents(t, e, "s1", "sofa")
		last := ev[len(ev)-1]
		require.Equal(t, engine.EventMove, last.Type)
		require.Equal(t, "committed", last.From)
		require.Equal(t, "available", last.To)
		require.Equal(t, int64(1), last.Qty)
		require.Equal(t, int64(-1), last.DeltaCommitted)
		require.Equal(t, int64(0), last.DeltaOnHand)

		// adjust in a state: a damaged unit thrown away
		_, err = e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: -2, State: "damaged"}, engine.Op{})
		require.ErrorAs(t, err, &ise)
		_, err = e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: -1, State: "broken"}, engine.Op{})
		require.ErrorAs(t, err, &ve)
		a, err := e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: -1, State: "damaged", Reason: "thrown away"}, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, int64(9), a.Item.OnHand)
		require.Equal(t, int64(0), a.Item.Damaged)
		a, err = e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 2, State: "quality_control"}, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, int64(11), a.Item.OnHand)
		require.Equal(t, int64(5), a.Item.QualityControl)
		// available 11 - 7 held = 4 (less 1 safety stock: 3); an adjust in
		// available may not go below what the states hold
		_, err = e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: -5}, engine.Op{})
		require.ErrorAs(t, err, &ise)
		// PUT refuses an on_hand below the held states
		_, err = e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 6}, engine.Op{})
		require.ErrorIs(t, err, engine.ErrConflict)
		s, err := e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 7}, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, int64(0), s.Item.Available)
		requireInvariant(t, s.Item)
		checkItemLedger(t, e, "s1", "sofa")
	})
}
