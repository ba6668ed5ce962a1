package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// Transfers in the conformance suite: every backend, source and destination
// in different partitions (and, on the cluster, different slots).

// whStore and shopStore sit in different partitions of the default 16.
const whStore, shopStore = "wh", "s2"

// counts are an item's counts as stored (the packed item), so the tests do
// not depend on how reads render them.
type counts struct{ OnHand, Reserved, Damaged, Incoming, Version int64 }

func rawCounts(t *testing.T, e *engine.Engine, store, sku string) counts {
	t.Helper()
	v, err := e.Client().HGet(context.Background(), e.StoreKey(store), sku).Result()
	require.NoError(t, err, "%s/%s", store, sku)
	f := strings.Split(v, ",")
	n := func(i int) int64 {
		if i >= len(f) {
			return 0
		}
		x, err := strconv.ParseInt(f[i], 10, 64)
		require.NoError(t, err)
		return x
	}
	return counts{OnHand: n(0), Reserved: n(1), Version: n(2), Damaged: n(7), Incoming: n(10)}
}

func mustTransfer(t *testing.T, e *engine.Engine, req engine.TransferRequest) engine.Transfer {
	t.Helper()
	r, err := e.CreateTransfer(context.Background(), req, engine.Op{})
	require.NoError(t, err)
	return r.Transfer
}

func lines(kv ...any) []engine.Line {
	var out []engine.Line
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, engine.Line{SKU: kv[i].(string), Qty: int64(kv[i+1].(int))})
	}
	return out
}

func TestTransferPartitionsDiffer(t *testing.T) {
	e, err := engine.New(engine.Config{Client: newRealClient(t)})
	require.NoError(t, err)
	require.NotEqual(t, e.Partition(whStore), e.Partition(shopStore))
}

func TestTransferLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		mustSet(t, e, whStore, "sofa", 10)
		mustSet(t, e, whStore, "lamp", 4)
		x := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Millisecond)
		tr := mustTransfer(t, e, engine.TransferRequest{From: whStore, To: shopStore, Lines: lines("sofa", 3, "lamp", 2),
			ExpectedAt: &x, Reference: "PO-1"})
		require.Equal(t, engine.TransferInTransit, tr.Status)
		require.Equal(t, whStore, *tr.From)
		require.Equal(t, x, *tr.ExpectedAt)
		require.Equal(t, "PO-1", *tr.Reference)
		require.Equal(t, counts{OnHand: 7, Version: 2}, rawCounts(t, e, whStore, "sofa"))
		require.Equal(t, counts{Incoming: 3, Version: 1}, rawCounts(t, e, shopStore, "sofa"))
		require.Equal(t, counts{Incoming: 2, Version: 1}, rawCounts(t, e, shopStore, "lamp"))
		got, err := e.GetTransfer(ctx, tr.ID)
		require.NoError(t, err)
		require.Equal(t, tr, got)

		// a partial receipt
		r, err := e.ReceiveTransfer(ctx, tr.ID, []engine.ReceiveLine{{SKU: "sofa", Received: 1, Damaged: 1}, {SKU: "lamp", Missing: 1}}, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, engine.TransferInTransit, r.Transfer.Status)
		require.Equal(t, []engine.TransferLine{{SKU: "sofa", Qty: 3, Received: 1, Damaged: 1}, {SKU: "lamp", Qty: 2, Missing: 1}}, r.Transfer.Lines)
		require.Equal(t, counts{OnHand: 2, Damaged: 1, Incoming: 1, Version: 2}, rawCounts(t, e, shopStore, "sofa"))
		require.Equal(t, counts{Incoming: 1, Version: 2}, rawCounts(t, e, shopStore, "lamp"))
		_, err = e.CancelTransfer(ctx, tr.ID, engine.Op{})
		var tse *engine.TransferStateError
		require.ErrorAs(t, err, &tse, "no cancel after a receipt")
		require.Equal(t, "partly_received", tse.Status)
		_, err = e.ReceiveTransfer(ctx, tr.ID, []engine.ReceiveLine{{SKU: "sofa", Received: 2}}, engine.Op{})
		var ore *engine.OverReceiptError
		require.ErrorAs(t, err, &ore)
		require.Equal(t, []engine.OverReceipt{{SKU: "sofa", Requested: 2, Open: 1}}, ore.Lines)

		// the rest
		r, err = e.ReceiveTransfer(ctx, tr.ID, []engine.ReceiveLine{{SKU: "sofa", Received: 1}, {SKU: "lamp", Received: 1}}, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, engine.TransferReceived, r.Transfer.Status)
		require.Equal(t, counts{OnHand: 3, Damaged: 1, Version: 3}, rawCounts(t, e, shopStore, "sofa"))
		require.Equal(t, counts{OnHand: 1, Version: 3}, rawCounts(t, e, shopStore, "lamp"))
		_, err = e.ReceiveTransfer(ctx, tr.ID, []engine.ReceiveLine{{SKU: "sofa", Received: 1}}, engine.Op{})
		require.ErrorAs(t, err, &tse)
		require.Equal(t, engine.TransferReceived, tse.Status)
		open, err := e.OpenTransfers(ctx, shopStore)
		require.NoError(t, err)
		require.Empty(t, open)
		pending, _, err := e.PendingTransferSteps(ctx)
		require.NoError(t, err)
		for p, n := range pending {
			require.Zero(t, n, "partition %d has pending steps", p)
		}
	})
}

func TestTransferCancel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		mustSet(t, e, whStore, "sofa", 10)
		tr := mustTransfer(t, e, engine.TransferRequest{From: whStore, To: shopStore, Lines: lines("sofa", 4)})
		r, err := e.CancelTransfer(ctx, tr.ID, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, engine.TransferCancelled, r.Transfer.Status)
		require.Equal(t, counts{OnHand: 10, Version: 3}, rawCounts(t, e, whStore, "sofa"))
		require.Equal(t, counts{Version: 2}, rawCounts(t, e, shopStore, "sofa"))
		var tse *engine.TransferStateError
		_, err = e.CancelTransfer(ctx, tr.ID, engine.Op{})
		require.ErrorAs(t, err, &tse)
		require.Equal(t, engine.TransferCancelled, tse.Status)
		_, err = e.ReceiveTransfer(ctx, tr.ID, []engine.ReceiveLine{{SKU: "sofa", Received: 1}}, engine.Op{})
		require.ErrorAs(t, err, &tse)
		require.Equal(t, counts{OnHand: 10, Version: 3}, rawCounts(t, e, whStore, "sofa"))
	})
}

func TestTransferFromSupplier(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		tr := mustTransfer(t, e, engine.TransferRequest{To: shopStore, Lines: lines("rug", 5), Reference: "PO-9"})
		require.Nil(t, tr.From)
		require.Nil(t, tr.ExpectedAt)
		require.Equal(t, counts{Incoming: 5, Version: 1}, rawCounts(t, e, shopStore, "rug"))
		r, err := e.ReceiveTransfer(ctx, tr.ID, []engine.ReceiveLine{{SKU: "rug", Received: 5}}, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, engine.TransferReceived, r.Transfer.Status)
		require.Equal(t, counts{OnHand: 5, Version: 2}, rawCounts(t, e, shopStore, "rug"))
	})
}

// TestTransferRefusals: every refusal of DESIGN §11 changes nothing.
func TestTransferRefusals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		mustSet(t, e, whStore, "sofa", 3)
		before := rawCounts(t, e, whStore, "sofa")
		var ve *engine.ValidationError
		var ise *engine.InsufficientStockError
		for name, req := range map[string]engine.TransferRequest{
			"own source":  {From: whStore, To: whStore, Lines: lines("sofa", 1)},
			"qty 0":       {From: whStore, To: shopStore, Lines: lines("sofa", 0)},
			"sku twice":   {From: whStore, To: shopStore, Lines: lines("sofa", 1, "sofa", 1)},
			"no lines":    {From: whStore, To: shopStore},
			"bad to":      {From: whStore, To: "a b", Lines: lines("sofa", 1)},
			"bad ref":     {From: whStore, To: shopStore, Lines: lines("sofa", 1), Reference: "a\x00b"},
			"bad sku":     {From: whStore, To: shopStore, Lines: lines("so fa", 1)},
			"no from bad": {From: "-x", To: shopStore, Lines: lines("sofa", 1)},
		} {
			_, err := e.CreateTransfer(ctx, req, engine.Op{})
			require.ErrorAs(t, err, &ve, name)
		}
		for name, req := range map[string]engine.TransferRequest{
			"more than available": {From: whStore, To: shopStore, Lines: lines("sofa", 4)},
			"unknown sku":         {From: whStore, To: shopStore, Lines: lines("bed", 1)},
			"unknown location":    {From: "nowhere", To: shopStore, Lines: lines("sofa", 1)},
		} {
			_, err := e.CreateTransfer(ctx, req, engine.Op{})
			require.ErrorAs(t, err, &ise, name)
		}
		require.Equal(t, before, rawCounts(t, e, whStore, "sofa"))
		_, err := e.GetTransfer(ctx, "0-00000000000000000000000000000000")
		require.ErrorIs(t, err, engine.ErrNotFound)
		_, err = e.GetTransfer(ctx, "nonsense")
		require.ErrorIs(t, err, engine.ErrNotFound)
		_, err = e.ReceiveTransfer(ctx, "0-00000000000000000000000000000000", []engine.ReceiveLine{{SKU: "sofa", Received: 1}}, engine.Op{})
		require.ErrorIs(t, err, engine.ErrNotFound)
		_, err = e.CancelTransfer(ctx, "0-00000000000000000000000000000000", engine.Op{})
		require.ErrorIs(t, err, engine.ErrNotFound)
		tr := mustTransfer(t, e, engine.TransferRequest{From: whStore, To: shopStore, Lines: lines("sofa", 2)})
		for name, ls := range map[string][]engine.ReceiveLine{
			"none":       nil,
			"zero":       {{SKU: "sofa"}},
			"negative":   {{SKU: "sofa", Received: 2, Damaged: -1}},
			"twice":      {{SKU: "sofa", Received: 1}, {SKU: "sofa", Received: 1}},
			"not in it":  {{SKU: "lamp", Received: 1}},
			"bad sku id": {{SKU: "la mp", Received: 1}},
		} {
			_, err := e.ReceiveTransfer(ctx, tr.ID, ls, engine.Op{})
			require.ErrorAs(t, err, &ve, name)
		}
		require.Equal(t, counts{Incoming: 2, Version: 1}, rawCounts(t, e, shopStore, "sofa"))
	})
}

func TestTransferIdempotencyKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		mustSet(t, e, whStore, "sofa", 10)
		op := engine.Op{IdempotencyKey: "t-1", Principal: "admin"}
		req := engine.TransferRequest{From: whStore, To: shopStore, Lines: lines("sofa", 3)}
		a, err := e.CreateTransfer(ctx, req, op)
		require.NoError(t, err)
		require.False(t, a.Replayed)
		bb, err := e.CreateTransfer(ctx, req, op)
		require.NoError(t, err)
		require.True(t, bb.Replayed)
		require.Equal(t, a.Transfer.ID, bb.Transfer.ID)
		require.Equal(t, counts{OnHand: 7, Version: 2}, rawCounts(t, e, whStore, "sofa"))
		_, err = e.CreateTransfer(ctx, engine.TransferRequest{From: whStore, To: shopStore, Lines: lines("sofa", 1)}, op)
		require.ErrorIs(t, err, engine.ErrIdempotencyMismatch)
		rop := engine.Op{IdempotencyKey: "r-1", Principal: "admin"}
		rl := []engine.ReceiveLine{{SKU: "sofa", Received: 1}}
		_, err = e.ReceiveTransfer(ctx, a.Transfer.ID, rl, rop)
		require.NoError(t, err)
		rr, err := e.ReceiveTransfer(ctx, a.Transfer.ID, rl, rop)
		require.NoError(t, err)
		require.True(t, rr.Replayed)
		require.Equal(t, counts{OnHand: 1, Incoming: 2, Version: 2}, rawCounts(t, e, shopStore, "sofa"))
		// a refused request stores nothing under its key
		_, err = e.ReceiveTransfer(ctx, a.Transfer.ID, []engine.ReceiveLine{{SKU: "sofa", Received: 9}}, engine.Op{IdempotencyKey: "r-2", Principal: "admin"})
		require.Error(t, err)
		rr, err = e.ReceiveTransfer(ctx, a.Transfer.ID, []engine.ReceiveLine{{SKU: "sofa", Received: 2}}, engine.Op{IdempotencyKey: "r-2", Principal: "admin"})
		require.NoError(t, err)
		require.False(t, rr.Replayed)
		require.Equal(t, engine.TransferReceived, rr.Transfer.Status)
	})
}

var errCrash = errors.New("crashed between the steps")

// TestTransferWorkerFinishesSteps: callers stop between the halves of a
// step (as a crash would); the worker finishes every step once due, once.
func TestTransferWorkerFinishesSteps(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clock := newFakeClock()
		e := b.make(t, engine.Config{Clock: clock.Now})
		mustSet(t, e, whStore, "sofa", 100)
		e.SetAfterShip(func(string) error { return errCrash })
		const n = 10
		var ids []string
		for i := 0; i < n; i++ {
			_, err := e.CreateTransfer(ctx, engine.TransferRequest{From: whStore, To: shopStore, Lines: lines("sofa", 2)}, engine.Op{IdempotencyKey: fmt.Sprint("c", i), Principal: "p"})
			require.ErrorIs(t, err, errCrash)
		}
		require.Equal(t, counts{OnHand: 80, Version: n + 1}, rawCounts(t, e, whStore, "sofa"))
		_, stuck, err := e.PendingTransferSteps(ctx)
		require.NoError(t, err)
		require.Zero(t, sum(stuck), "not due yet")
		w := engine.NewTransferWorker(e, engine.TransferWorkerConfig{})
		require.Zero(t, w.FinishDue(ctx), "within the grace the caller may still finish")
		clock.Advance(3 * time.Second)
		// two workers at once: each step is finished by one
		var done atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				done.Add(int64(engine.NewTransferWorker(e, engine.TransferWorkerConfig{}).FinishDue(ctx)))
			}()
		}
		wg.Wait()
		done.Add(int64(w.FinishDue(ctx)))
		require.Equal(t, int64(n), done.Load())
		require.Equal(t, counts{Incoming: 2 * n, Version: n}, rawCounts(t, e, shopStore, "sofa"))
		open, err := e.OpenTransfers(ctx, shopStore)
		require.NoError(t, err)
		require.Len(t, open, n)
		for _, tr := range open {
			ids = append(ids, tr.ID)
		}
		// a retry of the first request replays and changes nothing
		r, err := e.CreateTransfer(ctx, engine.TransferRequest{From: whStore, To: shopStore, Lines: lines("sofa", 2)}, engine.Op{IdempotencyKey: "c0", Principal: "p"})
		require.ErrorIs(t, err, errCrash, "the hook still stops it")
		_ = r
		e.SetAfterShip(nil)
		r, err = e.CreateTransfer(ctx, engine.TransferRequest{From: whStore, To: shopStore, Lines: lines("sofa", 2)}, engine.Op{IdempotencyKey: "c0", Principal: "p"})
		require.NoError(t, err)
		require.True(t, r.Replayed)
		require.Contains(t, ids, r.Transfer.ID)
		require.Equal(t, counts{Incoming: 2 * n, Version: n}, rawCounts(t, e, shopStore, "sofa"))

		// cancels stopped before the return
		e.SetAfterShip(func(string) error { return errCrash })
		for _, id := range ids {
			_, err := e.CancelTransfer(ctx, id, engine.Op{})
			require.ErrorIs(t, err, errCrash)
		}
		require.Equal(t, counts{Version: 2 * n}, rawCounts(t, e, shopStore, "sofa"))
		require.Equal(t, counts{OnHand: 80, Version: n + 1}, rawCounts(t, e, whStore, "sofa"))
		clock.Advance(3 * time.Second)
		require.Equal(t, n, w.FinishDue(ctx))
		require.Zero(t, w.FinishDue(ctx))
		require.Equal(t, counts{OnHand: 100, Version: 2*n + 1}, rawCounts(t, e, whStore, "sofa"))
		pending, _, err := e.PendingTransferSteps(ctx)
		require.NoError(t, err)
		require.Zero(t, sum(pending))
	})
}

func sum(a []int64) int64 {
	var s int64
	for _, x := range a {
		s += x
	}
	return s
}

// TestTransferRace: sales at the source and receipts at the destination
// race transfers being created, received and cancelled, some of them
// stopped between their steps; once the worker has settled them, DESIGN
// §11's invariant holds exactly: on_hand over both locations plus what is
// open in transit equals the start less what was sold and found missing.
func TestTransferRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clock := newFakeClock()
		e := b.make(t, engine.Config{Clock: clock.Now})
		const start = 500
		mustSet(t, e, whStore, "sofa", start)
		var crash atomic.Bool
		e.SetAfterShip(func(string) error {
			if crash.Load() {
				return errCrash
			}
			return nil
		})
		var sold, missing atomic.Int64
		var mu sync.Mutex
		var ids []string
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		deadline := time.Now().Add(20 * time.Second)
		for g := 0; g < 8; g++ {
			g := g
			wg.Add(1)
			go func() {
				defer wg.Done()
				rnd := rand.New(rand.NewSource(int64(g)))
				for i := 0; i < 60 && time.Now().Before(deadline); i++ {
					var err error
					switch rnd.Intn(5) {
					case 0: // a sale at the source
						_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: whStore, Lines: lines("sofa", 1)}, engine.Op{})
						if err == nil {
							sold.Add(1)
						}
					case 1, 2: // a transfer, sometimes stopped after shipping
						crash.Store(rnd.Intn(4) == 0)
						var r engine.TransferResult
						r, err = e.CreateTransfer(ctx, engine.TransferRequest{From: whStore, To: shopStore, Lines: lines("sofa", 1+rnd.Intn(3))}, engine.Op{})
						if err == nil {
							mu.Lock()
							ids = append(ids, r.Transfer.ID)
							mu.Unlock()
						}
					case 3: // a receipt of one unit, received or missing
						mu.Lock()
						var id string
						if len(ids) > 0 {
							id = ids[rnd.Intn(len(ids))]
						}
						mu.Unlock()
						if id == "" {
							continue
						}
						l := engine.ReceiveLine{SKU: "sofa", Received: 1}
						if rnd.Intn(3) == 0 {
							l = engine.ReceiveLine{SKU: "sofa", Missing: 1}
						}
						_, err = e.ReceiveTransfer(ctx, id, []engine.ReceiveLine{l}, engine.Op{})
						if err == nil && l.Missing == 1 {
							missing.Add(1)
						}
					case 4: // a cancel, sometimes stopped before the return
						mu.Lock()
						var id string
						if len(ids) > 0 {
							id = ids[rnd.Intn(len(ids))]
						}
						mu.Unlock()
						if id == "" {
							continue
						}
						crash.Store(rnd.Intn(4) == 0)
						_, err = e.CancelTransfer(ctx, id, engine.Op{})
					}
					var ise *engine.InsufficientStockError
					var tse *engine.TransferStateError
					var ore *engine.OverReceiptError
					switch {
					case err == nil, errors.Is(err, errCrash), errors.As(err, &ise), errors.As(err, &tse), errors.As(err, &ore),
						errors.Is(err, engine.ErrNotFound): // not expected yet: stopped after shipping
					default:
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		e.SetAfterShip(nil)
		clock.Advance(3 * time.Second)
		w := engine.NewTransferWorker(e, engine.TransferWorkerConfig{})
		w.FinishDue(ctx)
		require.Zero(t, w.FinishDue(ctx))
		pending, _, err := e.PendingTransferSteps(ctx)
		require.NoError(t, err)
		require.Zero(t, sum(pending))

		wh, shop := rawCounts(t, e, whStore, "sofa"), counts{}
		if _, err := e.Client().HGet(ctx, e.StoreKey(shopStore), "sofa").Result(); err == nil {
			shop = rawCounts(t, e, shopStore, "sofa")
		}
		var openUnits int64
		open, err := e.OpenTransfers(ctx, shopStore)
		require.NoError(t, err)
		for _, tr := range open {
			for _, l := range tr.Lines {
				openUnits += l.Open()
			}
		}
		require.Equal(t, openUnits, shop.Incoming, "incoming is what is open in transit")
		require.Equal(t, int64(start)-sold.Load()-missing.Load(), wh.OnHand+shop.OnHand+openUnits,
			"sold %d, missing %d", sold.Load(), missing.Load())
	})
}

// TestTransferListPages pages through a store's transfers and through all,
// with a status filter, every transfer once, in creation order.
func TestTransferListPages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clock := newFakeClock()
		e := b.make(t, engine.Config{Clock: clock.Now})
		mustSet(t, e, whStore, "sofa", 100)
		var want []string
		for i := 0; i < 7; i++ {
			from := whStore
			if i%3 == 0 {
				from = ""
			}
			tr := mustTransfer(t, e, engine.TransferRequest{From: from, To: shopStore, Lines: lines("sofa", 1)})
			want = append(want, tr.ID)
			if i%2 == 0 {
				clock.Advance(time.Millisecond) // some share a created ms
			}
		}
		_, err := e.CancelTransfer(ctx, want[1], engine.Op{})
		require.NoError(t, err)
		for _, f := range []engine.TransferFilter{{}, {Store: shopStore}, {Store: whStore}, {Status: engine.TransferCancelled}, {Store: shopStore, Status: engine.TransferInTransit}} {
			var got []string
			f.Limit = 3
			for page := 0; page < 10; page++ {
				ts, next, err := e.ListTransfers(ctx, f)
				require.NoError(t, err)
				require.LessOrEqual(t, len(ts), 3)
				for _, tr := range ts {
					got = append(got, tr.ID)
				}
				if next == "" {
					break
				}
				f.Cursor = next
			}
			var exp []string
			for i, id := range want {
				switch {
				case f.Store == whStore && i%3 == 0, // from a supplier: not wh's
					f.Status == engine.TransferCancelled && i != 1,
					f.Status == engine.TransferInTransit && i == 1:
					continue
				}
				exp = append(exp, id)
			}
			// in creation order; ids of one created ms by id
			require.ElementsMatch(t, exp, got, "filter %+v", f)
			require.Len(t, got, len(exp))
		}
		_, _, err = e.ListTransfers(ctx, engine.TransferFilter{Cursor: "nonsense"})
		var ve *engine.ValidationError
		require.ErrorAs(t, err, &ve)
	})
}

// txModel is a model of two locations and their transfers: what each
// operation must do, or refuse, with nothing changed.
type txModel struct {
	onHand, damaged, incoming map[string]int64 // by store
	transfers                 map[string]*engine.Transfer
}

func (m *txModel) open(t *engine.Transfer) int64 {
	var n int64
	for _, l := range t.Lines {
		n += l.Open()
	}
	return n
}

// TestTransferModel runs a random sequence of sales, adjustments,
// transfers from the warehouse and from suppliers, receipts (in range and
// past it) and cancels (allowed or not), checking after each step the
// items and the transfers against the model; every refusal must leave
// everything as it was.
func TestTransferModel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		m := &txModel{onHand: map[string]int64{whStore: 50, shopStore: 0}, damaged: map[string]int64{},
			incoming: map[string]int64{}, transfers: map[string]*engine.Transfer{}}
		mustSet(t, e, whStore, "sofa", 50)
		mustSet(t, e, shopStore, "sofa", 0)
		rnd := rand.New(rand.NewSource(7))
		var ids []string
		pick := func() string { return ids[rnd.Intn(len(ids))] }
		for step := 0; step < 300; step++ {
			var (
				what string
				err  error
			)
			switch k := rnd.Intn(8); {
			case k == 0:
				what = "sale"
				q := int64(1 + rnd.Intn(3))
				_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: whStore, Lines: lines("sofa", int(q))}, engine.Op{})
				if m.onHand[whStore] >= q {
					require.NoError(t, err, what)
					m.onHand[whStore] -= q
				} else {
					var ise *engine.InsufficientStockError
					require.ErrorAs(t, err, &ise, what)
				}
			case k == 1:
				what = "adjust"
				_, err = e.Adjust(ctx, engine.AdjustRequest{Store: whStore, SKU: "sofa", Delta: 2}, engine.Op{})
				require.NoError(t, err)
				m.onHand[whStore] += 2
			case k <= 3 || len(ids) == 0:
				what = "create"
				from := whStore
				if k == 2 && rnd.Intn(2) == 0 {
					from = ""
				}
				q := int64(1 + rnd.Intn(6))
				r, err := e.CreateTransfer(ctx, engine.TransferRequest{From: from, To: shopStore, Lines: lines("sofa", int(q))}, engine.Op{})
				if from != "" && m.onHand[whStore] < q {
					var ise *engine.InsufficientStockError
					require.ErrorAs(t, err, &ise, what)
					break
				}
				require.NoError(t, err, what)
				tr := r.Transfer
				m.transfers[tr.ID] = &tr
				ids = append(ids, tr.ID)
				if from != "" {
					m.onHand[whStore] -= q
				}
				m.incoming[shopStore] += q
			case k <= 5:
				what = "receive"
				id := pick()
				mt := m.transfers[id]
				l := engine.ReceiveLine{SKU: "sofa"}
				switch rnd.Intn(3) {
				case 0:
					l.Received = int64(1 + rnd.Intn(3))
				case 1:
					l.Damaged = 1
				default:
					l.Missing = 1
				}
				n := l.Received + l.Damaged + l.Missing
				r, err := e.ReceiveTransfer(ctx, id, []engine.ReceiveLine{l}, engine.Op{})
				var tse *engine.TransferStateError
				var ore *engine.OverReceiptError
				switch {
				case mt.Status != engine.TransferInTransit:
					require.ErrorAs(t, err, &tse, what)
				case n > m.open(mt):
					require.ErrorAs(t, err, &ore, what)
				default:
					require.NoError(t, err, what)
					mt.Lines[0].Received += l.Received
					mt.Lines[0].Damaged += l.Damaged
					mt.Lines[0].Missing += l.Missing
					if m.open(mt) == 0 {
						mt.Status = engine.TransferReceived
					}
					m.onHand[shopStore] += l.Received + l.Damaged
					m.damaged[shopStore] += l.Damaged
					m.incoming[shopStore] -= n
					require.Equal(t, mt.Lines, r.Transfer.Lines)
					require.Equal(t, mt.Status, r.Transfer.Status)
				}
			default:
				what = "cancel"
				id := pick()
				mt := m.transfers[id]
				_, err := e.CancelTransfer(ctx, id, engine.Op{})
				var tse *engine.TransferStateError
				if mt.Status != engine.TransferInTransit || m.open(mt) != mt.Lines[0].Qty {
					require.ErrorAs(t, err, &tse, what)
					break
				}
				require.NoError(t, err, what)
				mt.Status = engine.TransferCancelled
				m.incoming[shopStore] -= mt.Lines[0].Qty
				if mt.From != nil {
					m.onHand[whStore] += mt.Lines[0].Qty
				}
			}
			for _, s := range []string{whStore, shopStore} {
				it := mustGet(t, e, s, "sofa")
				require.Equal(t, m.onHand[s], it.OnHand, "step %d (%s): %s on_hand", step, what, s)
				require.Equal(t, m.damaged[s], it.Damaged, "step %d (%s): %s damaged", step, what, s)
				require.Equal(t, m.incoming[s], it.Incoming, "step %d (%s): %s incoming", step, what, s)
			}
		}
		for id, mt := range m.transfers {
			got, err := e.GetTransfer(ctx, id)
			require.NoError(t, err)
			require.Equal(t, mt.Status, got.Status, id)
			require.Equal(t, mt.Lines, got.Lines, id)
		}
		checkItemLedger(t, e, whStore, "sofa")
		checkItemLedger(t, e, shopStore, "sofa")
	})
}
