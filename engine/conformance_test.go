package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// The conformance suite: every test here runs against every backend.

func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends() {
		b := b
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

func i64(n int64) *int64 { return &n }

func events(t *testing.T, e *engine.Engine, store string) []engine.Event {
	t.Helper()
	msgs, err := e.Client().XRange(context.Background(), e.StreamKey(e.Partition(store)), "-", "+").Result()
	require.NoError(t, err)
	out := make([]engine.Event, 0, len(msgs))
	for _, m := range msgs {
		ev, err := engine.ParseEvent(m.ID, m.Values)
		require.NoError(t, err)
		out = append(out, ev)
	}
	return out
}

func itemEvents(t *testing.T, e *engine.Engine, store, sku string) []engine.Event {
	var out []engine.Event
	for _, ev := range events(t, e, store) {
		if ev.Store == store && ev.SKU == sku {
			out = append(out, ev)
		}
	}
	return out
}

func mustSet(t *testing.T, e *engine.Engine, store, sku string, onHand int64) engine.Item {
	t.Helper()
	r, err := e.Set(context.Background(), engine.SetRequest{Store: store, SKU: sku, OnHand: onHand}, engine.Op{})
	require.NoError(t, err)
	return r.Item
}

func mustGet(t *testing.T, e *engine.Engine, store, sku string) engine.Item {
	t.Helper()
	it, err := e.GetItem(context.Background(), store, sku)
	require.NoError(t, err)
	return it
}

// checkItemLedger asserts the stream's events of an item have versions 1..N
// and their deltas sum to the item's state.
func checkItemLedger(t *testing.T, e *engine.Engine, store, sku string) {
	t.Helper()
	it := mustGet(t, e, store, sku)
	evs := itemEvents(t, e, store, sku)
	require.Len(t, evs, int(it.Version), "one event per version of %s/%s", store, sku)
	var oh, rs int64
	var st engine.States
	for i, ev := range evs {
		require.Equal(t, int64(i+1), ev.Version)
		oh += ev.DeltaOnHand
		rs += ev.DeltaReserved
		st.Committed += ev.DeltaCommitted
		st.Damaged += ev.DeltaDamaged
		st.QualityControl += ev.DeltaQualityControl
		st.Display += ev.DeltaDisplay
		st.Incoming += ev.DeltaIncoming
		require.Equal(t, oh, ev.OnHand, "on_hand after event %d", ev.Version)
		require.Equal(t, rs, ev.Reserved, "reserved after event %d", ev.Version)
		require.Equal(t, st, ev.States, "states after event %d", ev.Version)
	}
	require.Equal(t, it.OnHand, oh)
	require.Equal(t, it.Reserved, rs)
	require.Equal(t, it.States, st)
}

func TestSet(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		r, err := e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 10, ReorderPoint: i64(3), MaxPerCustomer: i64(2), Reason: "count"}, engine.Op{})
		require.NoError(t, err)
		require.True(t, r.Created)
		require.Equal(t, int64(10), r.Item.Available)
		require.Equal(t, int64(3), *r.Item.ReorderPoint)
		require.Equal(t, int64(2), *r.Item.MaxPerCustomer)

		// create-only refuses an existing item
		_, err = e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 5, ExpectVersion: i64(0)}, engine.Op{})
		var vm *engine.VersionMismatchError
		require.ErrorAs(t, err, &vm)
		require.Equal(t, int64(1), vm.Current)
		require.ErrorIs(t, err, engine.ErrVersionMismatch)

		// wrong expected version
		_, err = e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 5, ExpectVersion: i64(7)}, engine.Op{})
		require.ErrorIs(t, err, engine.ErrVersionMismatch)

		// right expected version; omitted settings are kept
		r, err = e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 5, ExpectVersion: i64(1)}, engine.Op{})
		require.NoError(t, err)
		require.False(t, r.Created)
		require.Equal(t, int64(2), r.Item.Version)
		require.Equal(t, int64(3), *r.Item.ReorderPoint)

		// no change: no new version
		r, err = e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 5}, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, int64(2), r.Item.Version)

		// clearing settings
		r, err = e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 5, ClearReorderPoint: true, ClearMaxPerCustomer: true}, engine.Op{})
		require.NoError(t, err)
		require.Nil(t, r.Item.ReorderPoint)
		require.Nil(t, r.Item.MaxPerCustomer)
		require.Equal(t, int64(3), r.Item.Version)

		// create-only on an absent item
		r, err = e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "lamp", OnHand: 0, ExpectVersion: i64(0)}, engine.Op{})
		require.NoError(t, err)
		require.True(t, r.Created)

		// below reserved
		_, err = e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 4}}}, engine.Op{})
		require.NoError(t, err)
		_, err = e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 3}, engine.Op{})
		require.ErrorIs(t, err, engine.ErrConflict)
		require.Equal(t, int64(5), mustGet(t, e, "s1", "sofa").OnHand)

		checkItemLedger(t, e, "s1", "sofa")
		evs := itemEvents(t, e, "s1", "sofa")
		require.Equal(t, engine.EventSet, evs[0].Type)
		require.Equal(t, "count", evs[0].Reason)
		require.Equal(t, int64(10), evs[0].DeltaOnHand)
		require.Equal(t, int64(-5), evs[1].DeltaOnHand)
	})
}

func TestValidation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		mustSet(t, e, "s1", "sofa", 10)
		long := make([]byte, 300)
		for i := range long {
			long[i] = 'a'
		}
		lines101 := make([]engine.Line, 101)
		for i := range lines101 {
			lines101[i] = engine.Line{SKU: fmt.Sprintf("k%d", i), Qty: 1}
		}
		cases := []struct {
			name string
			do   func() error
		}{
			{"bad store", func() error {
				_, err := e.Set(ctx, engine.SetRequest{Store: "s 1", SKU: "x", OnHand: 1}, engine.Op{})
				return err
			}},
			{"path trick sku", func() error {
				_, err := e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "../x", OnHand: 1}, engine.Op{})
				return err
			}},
			{"sku with colon", func() error {
				_, err := e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "a:b", OnHand: 1}, engine.Op{})
				return err
			}},
			{"negative on_hand", func() error {
				_, err := e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "x", OnHand: -1}, engine.Op{})
				return err
			}},
			{"huge on_hand", func() error {
				_, err := e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "x", OnHand: engine.MaxOnHand + 1}, engine.Op{})
				return err
			}},
			{"long reason", func() error {
				_, err := e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1, Reason: string(long)}, engine.Op{})
				return err
			}},
			{"reason not UTF-8", func() error {
				_, err := e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1, Reason: "bad \xff byte"}, engine.Op{})
				return err
			}},
			{"zero delta", func() error {
				_, err := e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 0}, engine.Op{})
				return err
			}},
			{"no lines", func() error {
				_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1"}, engine.Op{})
				return err
			}},
			{"qty 0", func() error {
				_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 0}}}, engine.Op{})
				return err
			}},
			{"qty too big", func() error {
				_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: engine.MaxQty + 1}}}, engine.Op{})
				return err
			}},
			{"duplicate sku", func() error {
				_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}, {SKU: "sofa", Qty: 1}}}, engine.Op{})
				return err
			}},
			{"101 lines", func() error {
				_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: lines101}, engine.Op{})
				return err
			}},
			{"bad customer", func() error {
				_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Customer: "bob smith", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{})
				return err
			}},
			{"negative ttl", func() error {
				_, err := e.Reserve(ctx, engine.ReserveRequest{Store: "s1", TTL: -time.Second, Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{})
				return err
			}},
			{"ttl too long", func() error {
				_, err := e.Reserve(ctx, engine.ReserveRequest{Store: "s1", TTL: 86401 * time.Second, Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{})
				return err
			}},
			{"key too long", func() error {
				_, err := e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1}, engine.Op{IdempotencyKey: string(long)})
				return err
			}},
			{"key with newline", func() error {
				_, err := e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1}, engine.Op{IdempotencyKey: "a\nb"})
				return err
			}},
			{"bad reservation id", func() error {
				_, err := e.Commit(ctx, "../../x", engine.Op{})
				return err
			}},
			{"bad list limit", func() error {
				_, _, err := e.ListItems(ctx, "s1", "", 0)
				return err
			}},
		}
		for _, c := range cases {
			err := c.do()
			var ve *engine.ValidationError
			require.ErrorAs(t, err, &ve, c.name)
		}
		it := mustGet(t, e, "s1", "sofa")
		require.Equal(t, int64(10), it.OnHand)
		require.Equal(t, int64(1), it.Version)
		require.Len(t, events(t, e, "s1"), 1)
	})
}

func TestAdjust(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		_, err := e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1}, engine.Op{})
		require.ErrorIs(t, err, engine.ErrNotFound)
		mustSet(t, e, "s1", "sofa", 10)
		r, err := e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 5, Reason: "delivery"}, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, int64(15), r.Item.OnHand)
		require.Equal(t, int64(2), r.Item.Version)
		_, err = e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: -16}, engine.Op{})
		var ise *engine.InsufficientStockError
		require.ErrorAs(t, err, &ise)
		require.Equal(t, []engine.Shortage{{SKU: "sofa", Requested: 16, Available: 15}}, ise.Shortages)
		_, err = e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: -1, ExpectVersion: i64(1)}, engine.Op{})
		require.ErrorIs(t, err, engine.ErrVersionMismatch)
		_, err = e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: engine.MaxOnHand}, engine.Op{})
		var ve *engine.ValidationError
		require.ErrorAs(t, err, &ve)
		// reserved units cannot be adjusted away
		_, err = e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 10}}}, engine.Op{})
		require.NoError(t, err)
		_, err = e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: -6}, engine.Op{})
		require.ErrorAs(t, err, &ise)
		r, err = e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: -5, ExpectVersion: i64(3)}, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, int64(10), r.Item.OnHand)
		require.Equal(t, int64(0), r.Item.Available)
		checkItemLedger(t, e, "s1", "sofa")
	})
}

func TestCheckoutAllOrNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		mustSet(t, e, "s1", "sofa", 2)
		mustSet(t, e, "s1", "lamp", 5)
		mustSet(t, e, "s1", "rug", 1)
		_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "lamp", Qty: 2}, {SKU: "sofa", Qty: 3}, {SKU: "rug", Qty: 2}}}, engine.Op{})
		var ise *engine.InsufficientStockError
		require.ErrorAs(t, err, &ise)
		require.Equal(t, []engine.Shortage{{SKU: "sofa", Requested: 3, Available: 2}, {SKU: "rug", Requested: 2, Available: 1}}, ise.Shortages)
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "lamp", Qty: 2}, {SKU: "ghost", Qty: 1}}}, engine.Op{})
		require.ErrorIs(t, err, engine.ErrNotFound)
		require.Equal(t, int64(5), mustGet(t, e, "s1", "lamp").OnHand)
		require.Equal(t, int64(1), mustGet(t, e, "s1", "lamp").Version)

		r, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Customer: "c1", Reason: "till 3", Lines: []engine.Line{{SKU: "lamp", Qty: 2}, {SKU: "sofa", Qty: 2}}}, engine.Op{})
		require.NoError(t, err)
		require.Len(t, r.Items, 2)
		require.Equal(t, "lamp", r.Items[0].SKU)
		require.Equal(t, int64(3), r.Items[0].OnHand)
		require.Equal(t, int64(0), r.Items[1].OnHand)
		evs := itemEvents(t, e, "s1", "sofa")
		require.Equal(t, engine.EventSale, evs[1].Type)
		require.Equal(t, int64(-2), evs[1].DeltaOnHand)
		require.Equal(t, "c1", evs[1].Customer)
		for _, sku := range []string{"sofa", "lamp", "rug"} {
			checkItemLedger(t, e, "s1", sku)
		}
	})
}

func TestPurchaseLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clock := newFakeClock()
		e := b.make(t, engine.Config{Clock: clock.Now})
		_, err := e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 100, MaxPerCustomer: i64(3)}, engine.Op{})
		require.NoError(t, err)
		mustSet(t, e, "s1", "lamp", 100)
		line := func(q int64) []engine.Line { return []engine.Line{{SKU: "sofa", Qty: q}} }

		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: line(1)}, engine.Op{})
		require.ErrorIs(t, err, engine.ErrCustomerRequired)
		_, err = e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Lines: line(1)}, engine.Op{})
		require.ErrorIs(t, err, engine.ErrCustomerRequired)
		// an item without a limit needs no customer
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "lamp", Qty: 1}}}, engine.Op{})
		require.NoError(t, err)

		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Customer: "ann", Lines: line(2)}, engine.Op{})
		require.NoError(t, err)
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Customer: "ann", Lines: line(2)}, engine.Op{})
		var ple *engine.PurchaseLimitError
		require.ErrorAs(t, err, &ple)
		require.Equal(t, engine.PurchaseLimitError{SKU: "sofa", Limit: 3, Already: 2}, *ple)
		// a hold counts; a released hold gives its units back
		h, err := e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Customer: "ann", Lines: line(1)}, engine.Op{})
		require.NoError(t, err)
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Customer: "ann", Lines: line(1)}, engine.Op{})
		require.ErrorAs(t, err, &ple)
		require.Equal(t, int64(3), ple.Already)
		_, err = e.Release(ctx, h.Reservation.ID, engine.Op{})
		require.NoError(t, err)
		// an expired hold gives its units back too
		h, err = e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Customer: "ann", Lines: line(1), TTL: 10 * time.Second}, engine.Op{})
		require.NoError(t, err)
		clock.Advance(11 * time.Second)
		n, err := e.ExpireDue(ctx, e.Partition("s1"), 100)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		// a committed hold counts as bought
		h, err = e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Customer: "ann", Lines: line(1)}, engine.Op{})
		require.NoError(t, err)
		_, err = e.Commit(ctx, h.Reservation.ID, engine.Op{})
		require.NoError(t, err)
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Customer: "ann", Lines: line(1)}, engine.Op{})
		require.ErrorAs(t, err, &ple)
		require.Equal(t, int64(3), ple.Already)
		// another customer has their own allowance
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Customer: "bob", Lines: line(3)}, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, int64(100-2-1-3), mustGet(t, e, "s1", "sofa").OnHand)
		checkItemLedger(t, e, "s1", "sofa")
	})
}

// TestPurchaseLimitCountsOnlyWhatItCounted: a limit set while holds made
// without one are open is not undercut by releasing or expiring them (they
// never counted), and clearing and setting a limit again keeps what was
// counted under the earlier one.
func TestPurchaseLimitCountsOnlyWhatItCounted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clock := newFakeClock()
		e := b.make(t, engine.Config{Clock: clock.Now})
		setLimit := func(sku string, limit int64) {
			t.Helper()
			req := engine.SetRequest{Store: "s1", SKU: sku, OnHand: mustGet(t, e, "s1", sku).OnHand}
			if limit < 0 {
				req.ClearMaxPerCustomer = true
			} else {
				req.MaxPerCustomer = &limit
			}
			_, err := e.Set(ctx, req, engine.Op{})
			require.NoError(t, err)
		}
		reserve := func(sku string, q int64) string {
			t.Helper()
			r, err := e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Customer: "ann", Lines: []engine.Line{{SKU: sku, Qty: q}}, TTL: 10 * time.Second}, engine.Op{})
			require.NoError(t, err)
			return r.Reservation.ID
		}
		buy := func(sku string, q int64) error {
			_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Customer: "ann", Lines: []engine.Line{{SKU: sku, Qty: q}}}, engine.Op{})
			return err
		}
		refused := func(sku string, q, limit, already int64) {
			t.Helper()
			var ple *engine.PurchaseLimitError
			require.ErrorAs(t, buy(sku, q), &ple)
			require.Equal(t, engine.PurchaseLimitError{SKU: sku, Limit: limit, Already: already}, *ple)
		}

		// A hold without a limit, a limit, the customer buys up to it, then
		// the old hold is released: its units never counted, so none come back.
		mustSet(t, e, "s1", "sofa", 100)
		h := reserve("sofa", 2)
		setLimit("sofa", 3)
		require.NoError(t, buy("sofa", 3))
		_, err := e.Release(ctx, h, engine.Op{})
		require.NoError(t, err)
		refused("sofa", 1, 3, 3)

		// The same with an expiry.
		mustSet(t, e, "s1", "lamp", 100)
		reserve("lamp", 2)
		setLimit("lamp", 2)
		require.NoError(t, buy("lamp", 2))
		clock.Advance(11 * time.Second)
		n, err := e.ExpireDue(ctx, e.Partition("s1"), 100)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		refused("lamp", 1, 2, 2)

		// Clearing the limit keeps the count; units held or bought without a
		// limit never count, a counted hold gives its units back when
		// released, and a committed one stays counted.
		mustSet(t, e, "s1", "tv", 100)
		setLimit("tv", 4)
		counted := reserve("tv", 2)
		kept := reserve("tv", 1)
		setLimit("tv", -1)
		require.NoError(t, buy("tv", 5))
		free := reserve("tv", 3)
		setLimit("tv", 4)
		refused("tv", 2, 4, 3)
		_, err = e.Release(ctx, free, engine.Op{})
		require.NoError(t, err)
		refused("tv", 2, 4, 3)
		_, err = e.Commit(ctx, kept, engine.Op{})
		require.NoError(t, err)
		refused("tv", 2, 4, 3)
		_, err = e.Release(ctx, counted, engine.Op{})
		require.NoError(t, err)
		require.NoError(t, buy("tv", 3))
		refused("tv", 1, 4, 4)
		for _, sku := range []string{"sofa", "lamp", "tv"} {
			checkItemLedger(t, e, "s1", sku)
		}
	})
}

func TestReservationLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clock := newFakeClock()
		e := b.make(t, engine.Config{Clock: clock.Now})
		mustSet(t, e, "s1", "sofa", 10)
		mustSet(t, e, "s1", "lamp", 10)
		lines := []engine.Line{{SKU: "sofa", Qty: 2}, {SKU: "lamp", Qty: 3}}

		r, err := e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Customer: "c1", Lines: lines, TTL: time.Minute}, engine.Op{})
		require.NoError(t, err)
		res := r.Reservation
		require.Equal(t, engine.StatusHeld, res.Status)
		require.Equal(t, lines, res.Lines)
		require.Equal(t, clock.Now().Add(time.Minute), res.ExpiresAt.Local().In(clock.Now().Location()))
		require.Equal(t, int64(8), mustGet(t, e, "s1", "sofa").Available)
		got, err := e.GetReservation(ctx, res.ID)
		require.NoError(t, err)
		require.Equal(t, res, got)

		// not enough for a second hold of everything
		_, err = e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 9}}}, engine.Op{})
		var ise *engine.InsufficientStockError
		require.ErrorAs(t, err, &ise)

		c, err := e.Commit(ctx, res.ID, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, engine.StatusCommitted, c.Reservation.Status)
		require.Len(t, c.Items, 2)
		sofa := mustGet(t, e, "s1", "sofa")
		require.Equal(t, int64(8), sofa.OnHand)
		require.Equal(t, int64(0), sofa.Reserved)
		// committing again changes nothing
		c, err = e.Commit(ctx, res.ID, engine.Op{})
		require.NoError(t, err)
		require.Empty(t, c.Items)
		require.Equal(t, sofa, mustGet(t, e, "s1", "sofa"))
		// a committed reservation cannot be released
		_, err = e.Release(ctx, res.ID, engine.Op{})
		require.ErrorIs(t, err, engine.ErrReservationNotHeld)

		// release, then commit is refused, release again changes nothing
		r, err = e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Lines: lines}, engine.Op{})
		require.NoError(t, err)
		rel, err := e.Release(ctx, r.Reservation.ID, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, engine.StatusReleased, rel.Reservation.Status)
		_, err = e.Commit(ctx, r.Reservation.ID, engine.Op{})
		require.ErrorIs(t, err, engine.ErrReservationNotHeld)
		rel, err = e.Release(ctx, r.Reservation.ID, engine.Op{})
		require.NoError(t, err)
		require.Empty(t, rel.Items)

		// expiry: commit past expires_at is refused even before the sweep
		r, err = e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Lines: lines, TTL: 5 * time.Second}, engine.Op{})
		require.NoError(t, err)
		clock.Advance(5 * time.Second)
		_, err = e.Commit(ctx, r.Reservation.ID, engine.Op{})
		require.ErrorIs(t, err, engine.ErrReservationNotHeld)
		sw := engine.NewSweeper(e, engine.SweeperConfig{})
		require.Equal(t, 1, sw.SweepOnce(ctx))
		require.Equal(t, 0, sw.SweepOnce(ctx))
		got, err = e.GetReservation(ctx, r.Reservation.ID)
		require.NoError(t, err)
		require.Equal(t, engine.StatusExpired, got.Status)
		_, err = e.Commit(ctx, r.Reservation.ID, engine.Op{})
		require.ErrorIs(t, err, engine.ErrReservationNotHeld)
		sofa = mustGet(t, e, "s1", "sofa")
		require.Equal(t, int64(8), sofa.OnHand)
		require.Equal(t, int64(0), sofa.Reserved)

		_, err = e.GetReservation(ctx, fmt.Sprintf("%d-%032x", e.Partition("s1"), 7))
		require.ErrorIs(t, err, engine.ErrNotFound)
		_, err = e.Commit(ctx, fmt.Sprintf("%d-%032x", e.Partition("s1"), 7), engine.Op{})
		require.ErrorIs(t, err, engine.ErrNotFound)

		var types []string
		for _, ev := range itemEvents(t, e, "s1", "sofa") {
			types = append(types, ev.Type)
		}
		require.Equal(t, []string{"SET", "RESERVE", "COMMIT", "RESERVE", "RELEASE", "RESERVE", "EXPIRE"}, types)
		evs := itemEvents(t, e, "s1", "sofa")
		require.NotNil(t, evs[1].ExpiresAt)
		require.Equal(t, res.ID, evs[1].ReservationID)
		require.Equal(t, int64(-2), evs[2].DeltaOnHand)
		require.Equal(t, int64(-2), evs[2].DeltaReserved)
		checkItemLedger(t, e, "s1", "sofa")
		checkItemLedger(t, e, "s1", "lamp")
	})
}

func TestIdempotency(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		mustSet(t, e, "s1", "sofa", 10)
		op := engine.Op{IdempotencyKey: "order-1", Principal: "till"}
		req := engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 2}}}
		first, err := e.Checkout(ctx, req, op)
		require.NoError(t, err)
		require.False(t, first.Replayed)
		again, err := e.Checkout(ctx, req, op)
		require.NoError(t, err)
		require.True(t, again.Replayed)
		require.Equal(t, first.Items, again.Items)
		require.Equal(t, int64(8), mustGet(t, e, "s1", "sofa").OnHand)

		// same key, another request
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 3}}}, op)
		require.ErrorIs(t, err, engine.ErrIdempotencyMismatch)
		// same key, another principal: its own scope
		other, err := e.Checkout(ctx, req, engine.Op{IdempotencyKey: "order-1", Principal: "web"})
		require.NoError(t, err)
		require.False(t, other.Replayed)
		require.Equal(t, int64(6), mustGet(t, e, "s1", "sofa").OnHand)

		// the key is checked before the version condition
		setOp := engine.Op{IdempotencyKey: "set-1", Principal: "till"}
		sreq := engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 20, ExpectVersion: i64(3)}
		s1, err := e.Set(ctx, sreq, setOp)
		require.NoError(t, err)
		s2, err := e.Set(ctx, sreq, setOp)
		require.NoError(t, err)
		require.True(t, s2.Replayed)
		require.Equal(t, s1.Item, s2.Item)

		// a refused request stores nothing under its key
		failOp := engine.Op{IdempotencyKey: "big", Principal: "till"}
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 100}}}, failOp)
		var ise *engine.InsufficientStockError
		require.ErrorAs(t, err, &ise)
		ok, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, failOp)
		require.NoError(t, err)
		require.False(t, ok.Replayed)

		// reservations: the retry returns the same reservation id
		rop := engine.Op{IdempotencyKey: "hold-1", Principal: "web"}
		rreq := engine.ReserveRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}
		r1, err := e.Reserve(ctx, rreq, rop)
		require.NoError(t, err)
		r2, err := e.Reserve(ctx, rreq, rop)
		require.NoError(t, err)
		require.True(t, r2.Replayed)
		require.Equal(t, r1.Reservation, r2.Reservation)
		require.Equal(t, int64(1), mustGet(t, e, "s1", "sofa").Reserved)
		c1, err := e.Commit(ctx, r1.Reservation.ID, engine.Op{IdempotencyKey: "commit-1", Principal: "web"})
		require.NoError(t, err)
		c2, err := e.Commit(ctx, r1.Reservation.ID, engine.Op{IdempotencyKey: "commit-1", Principal: "web"})
		require.NoError(t, err)
		require.True(t, c2.Replayed)
		require.Equal(t, c1.Items, c2.Items)

		// an explicit fingerprint decides what "the same request" is
		fop := engine.Op{IdempotencyKey: "fp", Principal: "till", Fingerprint: "PUT /a"}
		_, err = e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1}, fop)
		require.NoError(t, err)
		_, err = e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1}, engine.Op{IdempotencyKey: "fp", Principal: "till", Fingerprint: "PUT /b"})
		require.ErrorIs(t, err, engine.ErrIdempotencyMismatch)
		checkItemLedger(t, e, "s1", "sofa")
	})
}

func TestReadinessMarker(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		mustSet(t, e, "s1", "sofa", 10)
		p := e.Partition("s1")
		require.NoError(t, e.Client().Del(ctx, e.ReadyKey(p)).Err())
		ready, err := e.PartitionReady(ctx, p)
		require.NoError(t, err)
		require.False(t, ready)
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{})
		require.ErrorIs(t, err, engine.ErrPartitionNotReady)
		require.True(t, engine.IsUnavailable(err))
		_, err = e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "new", OnHand: 1}, engine.Op{})
		require.ErrorIs(t, err, engine.ErrPartitionNotReady)
		_, err = e.GetItem(ctx, "s1", "sofa")
		require.ErrorIs(t, err, engine.ErrPartitionNotReady)
		_, err = e.GetItem(ctx, "s1", "absent")
		require.ErrorIs(t, err, engine.ErrPartitionNotReady, "a miss on a partition that is not ready is 503, never 404")
		_, err = e.Availability(ctx, "sofa")
		require.ErrorIs(t, err, engine.ErrPartitionNotReady)
		_, _, err = e.ListItems(ctx, "s1", "", 10)
		require.ErrorIs(t, err, engine.ErrPartitionNotReady)
		require.NoError(t, e.MarkReady(ctx, p))
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{})
		require.NoError(t, err)
		checkItemLedger(t, e, "s1", "sofa")
	})
}

func TestBackpressure(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{StreamHighWatermark: 3})
		mustSet(t, e, "s1", "sofa", 10)
		op := engine.Op{IdempotencyKey: "k1"}
		_, err := e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1}, op)
		require.NoError(t, err)
		_, err = e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1}, engine.Op{})
		require.NoError(t, err)
		_, err = e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1}, engine.Op{})
		require.ErrorIs(t, err, engine.ErrBackpressure)
		require.True(t, engine.IsUnavailable(err))
		// a replay still answers: it changes nothing
		r, err := e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1}, op)
		require.NoError(t, err)
		require.True(t, r.Replayed)
		// reads still answer
		require.Equal(t, int64(12), mustGet(t, e, "s1", "sofa").OnHand)
		// trimming the stream lets writes through again
		require.NoError(t, e.Client().XTrimMaxLen(ctx, e.StreamKey(e.Partition("s1")), 0).Err())
		_, err = e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1}, engine.Op{})
		require.NoError(t, err)
	})
}

// TestScriptFlushRecovery empties Redis' script cache and drops its
// function libraries, as a restart would, before each call: every path
// loads what it needs again by itself.
func TestScriptFlushRecovery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		mustSet(t, e, "s1", "sofa", 10)
		flush := func() {
			t.Helper()
			flushScripts(t, e)
		}
		for i := 0; i < 3; i++ {
			flush()
			_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{})
			require.NoError(t, err)
			flush()
			_, err = e.Availability(ctx, "sofa")
			require.NoError(t, err)
			flush()
			_, err = e.GetItem(ctx, "s1", "sofa")
			require.NoError(t, err)
			if c, ok := e.Client().(*redis.Client); ok && e.Scripts().UsesFunctions() {
				// the read went through FCALL after loading its library again
				libs, err := c.FunctionList(ctx, redis.FunctionListQuery{}).Result()
				require.NoError(t, err)
				loaded := map[string]bool{}
				for _, l := range libs {
					loaded[l.Name] = true
				}
				n := 0
				for _, name := range e.Scripts().FunctionNames() {
					if loaded[name] {
						n++
					}
				}
				require.Positive(t, n)
			}
		}
		require.Equal(t, int64(7), mustGet(t, e, "s1", "sofa").OnHand)
		checkItemLedger(t, e, "s1", "sofa")
	})
}

// flushScripts empties the script cache of e's Redis (every node of a
// cluster) and, when e calls functions, deletes the engine's libraries.
// The libraries are those of every engine of this build on the same Redis:
// the others load them again just the same.
func flushScripts(t *testing.T, e *engine.Engine) {
	t.Helper()
	ctx := context.Background()
	flush := func(ctx context.Context, c *redis.Client) error { return c.ScriptFlush(ctx).Err() }
	drop := func(ctx context.Context, c *redis.Client) error {
		if !e.Scripts().UsesFunctions() {
			return nil
		}
		for _, name := range e.Scripts().FunctionNames() {
			if err := c.FunctionDelete(ctx, name).Err(); err != nil && !strings.Contains(err.Error(), "not found") {
				return err
			}
		}
		return nil
	}
	switch c := e.Client().(type) {
	case *redis.ClusterClient:
		require.NoError(t, c.ForEachShard(ctx, flush))
		require.NoError(t, c.ForEachMaster(ctx, drop)) // replicas follow
	case *redis.Client:
		require.NoError(t, flush(ctx, c))
		require.NoError(t, drop(ctx, c))
	default:
		t.Fatalf("client %T", c)
	}
}

func TestListAndAvailability(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		for i := 0; i < 25; i++ {
			mustSet(t, e, "s1", fmt.Sprintf("sku-%02d", i), int64(i))
		}
		stores := []string{"a1", "b2", "c3", "d4", "e5", "f6"}
		for i, s := range stores {
			mustSet(t, e, s, "sofa", int64(i+1))
		}
		var all []engine.Item
		cursor := ""
		for pages := 0; pages < 10; pages++ {
			items, next, err := e.ListItems(ctx, "s1", cursor, 10)
			require.NoError(t, err)
			all = append(all, items...)
			if next == "" {
				break
			}
			cursor = next
		}
		require.Len(t, all, 25)
		for i, it := range all {
			require.Equal(t, fmt.Sprintf("sku-%02d", i), it.SKU)
		}
		items, next, err := e.ListItems(ctx, "nobody", "", 10)
		require.NoError(t, err)
		require.Empty(t, items)
		require.Empty(t, next)

		a, err := e.Availability(ctx, "sofa")
		require.NoError(t, err)
		require.Equal(t, int64(21), a.Available)
		require.Len(t, a.Stores, 6)
		for i, it := range a.Stores {
			require.Equal(t, stores[i], it.Store)
		}
		a, err = e.Availability(ctx, "nothing")
		require.NoError(t, err)
		require.Empty(t, a.Stores)

		got, err := e.Stores(ctx)
		require.NoError(t, err)
		require.Equal(t, append([]string{"a1", "b2", "c3", "d4", "e5", "f6", "s1"}[:0:0], "a1", "b2", "c3", "d4", "e5", "f6", "s1"), got)
		_, err = e.GetItem(ctx, "s1", "ghost")
		require.ErrorIs(t, err, engine.ErrNotFound)
	})
}

func TestRestore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clock := newFakeClock()
		e := b.make(t, engine.Config{Clock: clock.Now})
		p := e.Partition("s1")
		require.NoError(t, e.Client().Del(ctx, e.ReadyKey(p)).Err())
		st := engine.ItemState{Store: "s1", SKU: "sofa", OnHand: 9, Reserved: 2, Version: 7, ReorderPoint: -1, MaxPerCustomer: 2,
			UpdatedAt: clock.Now(), CustomerUnits: map[string]int64{"ann": 2}}
		require.NoError(t, e.RestoreItem(ctx, st, 0))
		err := e.RestoreItem(ctx, st, 0)
		require.ErrorIs(t, err, engine.ErrVersionMismatch)
		id := fmt.Sprintf("%d-%032x", p, 1)
		require.NoError(t, e.RestoreReservation(ctx, engine.HeldReservation{
			Reservation: engine.Reservation{ID: id, Store: "s1", Customer: "ann", Lines: []engine.Line{{SKU: "sofa", Qty: 2}}, ExpiresAt: clock.Now().Add(time.Minute)},
			Counted:     map[string]int64{"sofa": 2}}))
		require.NoError(t, e.MarkReady(ctx, p))
		it := mustGet(t, e, "s1", "sofa")
		require.Equal(t, int64(7), it.Version)
		require.Equal(t, int64(7), it.Available)
		// the customer's units came back with the item
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Customer: "ann", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{})
		var ple *engine.PurchaseLimitError
		require.ErrorAs(t, err, &ple)
		r, err := e.Release(ctx, id, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, int64(8), r.Items[0].Version)
		require.Equal(t, int64(0), r.Items[0].Reserved)
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Customer: "ann", Lines: []engine.Line{{SKU: "sofa", Qty: 2}}}, engine.Op{})
		require.NoError(t, err)
		refs := []engine.ItemRef{{Store: "s1", SKU: "sofa"}, {Store: "s1", SKU: "none"}}
		loaded, err := e.LoadItems(ctx, refs)
		require.NoError(t, err)
		require.NotNil(t, loaded[0])
		require.Nil(t, loaded[1])
		require.Equal(t, int64(9), loaded[0].Version)
		var seen []engine.ItemRef
		require.NoError(t, e.ScanItems(ctx, p, 10, func(r []engine.ItemRef) error { seen = append(seen, r...); return nil }))
		require.Equal(t, refs[:1], seen)
	})
}

func TestConfigValidation(t *testing.T) {
	c := newRealClient(t)
	defer c.Close()
	for _, cfg := range []engine.Config{
		{},
		{Client: c, Partitions: -1},
		{Client: c, Partitions: 20000},
		{Client: c, Prefix: "bad prefix"},
		{Client: c, IdempotencyTTL: time.Millisecond},
	} {
		_, err := engine.New(cfg)
		require.Error(t, err)
	}
	_, err := engine.New(engine.Config{Client: c})
	require.NoError(t, err)
	require.False(t, errors.Is(err, engine.ErrNotFound))
}

// TestCorruptItemFailsAlone: an item whose stored value does not parse makes
// its own request fail with ErrCorrupt and nothing else, also inside a batch.
func TestCorruptItemFailsAlone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		mustSet(t, e, "s1", "sofa", 10)
		mustSet(t, e, "s1", "lamp", 10)
		require.NoError(t, e.Client().HSet(ctx, e.StoreKey("s1"), "sofa", "garbage").Err())
		errs := make(chan error, 20)
		for i := 0; i < 20; i++ {
			sku := []string{"sofa", "lamp"}[i%2]
			go func() {
				_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: sku, Qty: 1}}}, engine.Op{})
				if sku == "lamp" {
					errs <- err
				} else if !errors.Is(err, engine.ErrCorrupt) {
					errs <- fmt.Errorf("checkout of a corrupt item: want ErrCorrupt, got %v", err)
				} else {
					errs <- nil
				}
			}()
		}
		for i := 0; i < 20; i++ {
			require.NoError(t, <-errs)
		}
		require.Equal(t, int64(0), mustGet(t, e, "s1", "lamp").OnHand)
		checkItemLedger(t, e, "s1", "lamp")
	})
}

func TestIsUnavailable(t *testing.T) {
	ctx := context.Background()
	e := realBackend().make(t, engine.Config{})
	// a Redis nobody listens on
	opt, err := redis.ParseURL("redis://127.0.0.1:1/0")
	require.NoError(t, err)
	engine.FailFast(opt)
	dc := redis.NewClient(opt)
	defer dc.Close()
	dead, err := engine.New(engine.Config{Client: dc, Prefix: e.Prefix()})
	require.NoError(t, err)
	t0 := time.Now()
	_, err = dead.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "x", Qty: 1}}}, engine.Op{})
	require.Error(t, err)
	require.True(t, engine.IsUnavailable(err), "unreachable Redis: %v", err)
	t.Logf("a write to an unreachable Redis failed after %s", time.Since(t0))
	_, err = dead.GetItem(ctx, "s1", "x")
	require.True(t, engine.IsUnavailable(err), "unreachable Redis on read: %v", err)
	for _, err := range []error{engine.ErrNotFound, &engine.InsufficientStockError{}, &engine.ValidationError{Field: "x"},
		errors.New("some bug"), context.Canceled, engine.ErrIdempotencyMismatch} {
		require.False(t, engine.IsUnavailable(err), "%v", err)
	}
	for _, err := range []error{engine.ErrBackpressure, engine.ErrPartitionNotReady, fmt.Errorf("x: %w", context.DeadlineExceeded)} {
		require.True(t, engine.IsUnavailable(err), "%v", err)
	}
}

func TestRestoreKeepsCustomerUnits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		_, err := e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "tv", OnHand: 10, MaxPerCustomer: i64(2)}, engine.Op{})
		require.NoError(t, err)
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Customer: "ann", Lines: []engine.Line{{SKU: "tv", Qty: 2}}}, engine.Op{})
		require.NoError(t, err)
		it := mustGet(t, e, "s1", "tv")
		st := engine.ItemState{Store: "s1", SKU: "tv", OnHand: 7, Version: it.Version + 1, ReorderPoint: -1, MaxPerCustomer: 2, KeepCustomerUnits: true}
		require.NoError(t, e.RestoreItem(ctx, st, it.Version))
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Customer: "ann", Lines: []engine.Line{{SKU: "tv", Qty: 1}}}, engine.Op{})
		var ple *engine.PurchaseLimitError
		require.ErrorAs(t, err, &ple, "ann's units were kept")
		st.Version++
		st.KeepCustomerUnits = false
		require.NoError(t, e.RestoreItem(ctx, st, st.Version-1))
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Customer: "ann", Lines: []engine.Line{{SKU: "tv", Qty: 1}}}, engine.Op{})
		require.NoError(t, err, "without KeepCustomerUnits they are replaced (here by none)")
	})
}
