package webhook_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
	"github.com/shelfline/inventory/webhook"
)

const secret = "a-secret-of-16-bytes-or-more"

func TestSignAndVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"x"}`)
	now := time.Unix(1700000000, 0)
	h := webhook.Sign(secret, now, body)
	require.Regexp(t, `^t=1700000000,v1=[0-9a-f]{64}$`, h)
	require.NoError(t, webhook.Verify(secret, h, body, now, time.Minute))
	require.ErrorIs(t, webhook.Verify("another-secret-16b", h, body, now, time.Minute), webhook.ErrBadSignature)
	require.ErrorIs(t, webhook.Verify(secret, h, []byte(`{"id":"y"}`), now, time.Minute), webhook.ErrBadSignature)
	require.ErrorIs(t, webhook.Verify(secret, h, body, now.Add(time.Hour), time.Minute), webhook.ErrBadSignature)
	require.ErrorIs(t, webhook.Verify(secret, "v1=00", body, now, 0), webhook.ErrBadSignature)
}

func TestNames(t *testing.T) {
	t.Parallel()
	rp := func(n int64) *int64 { return &n }
	for _, c := range []struct {
		name string
		ev   engine.Event
		want []string
	}{
		{"created with stock", engine.Event{Type: "SET", Version: 1, OnHand: 5, DeltaOnHand: 5}, []string{"stock_changed"}},
		{"created empty", engine.Event{Type: "SET", Version: 1}, []string{"stock_changed"}},
		{"sale to zero", engine.Event{Type: "SALE", Version: 3, OnHand: 0, DeltaOnHand: -2}, []string{"stock_changed", "out_of_stock"}},
		{"sale above zero", engine.Event{Type: "SALE", Version: 3, OnHand: 1, DeltaOnHand: -2}, []string{"stock_changed"}},
		{"hold takes the last", engine.Event{Type: "RESERVE", Version: 2, OnHand: 4, Reserved: 4, DeltaReserved: 3}, []string{"stock_changed", "out_of_stock"}},
		{"expiry gives back", engine.Event{Type: "EXPIRE", Version: 3, OnHand: 4, Reserved: 0, DeltaReserved: -4}, []string{"stock_changed", "back_in_stock"}},
		{"restock", engine.Event{Type: "ADJUST", Version: 9, OnHand: 10, DeltaOnHand: 10}, []string{"stock_changed", "back_in_stock"}},
		{"crosses reorder point", engine.Event{Type: "SALE", Version: 4, OnHand: 3, DeltaOnHand: -2, ReorderPoint: rp(3)}, []string{"stock_changed", "low_stock"}},
		{"already below reorder point", engine.Event{Type: "SALE", Version: 4, OnHand: 2, DeltaOnHand: -1, ReorderPoint: rp(3)}, []string{"stock_changed"}},
		{"low and out at once", engine.Event{Type: "SALE", Version: 4, OnHand: 0, DeltaOnHand: -9, ReorderPoint: rp(3)}, []string{"stock_changed", "low_stock", "out_of_stock"}},
		{"zero reorder point", engine.Event{Type: "SALE", Version: 4, OnHand: 0, DeltaOnHand: -1, ReorderPoint: rp(0)}, []string{"stock_changed", "low_stock", "out_of_stock"}},
		{"reconcile to zero", engine.Event{Type: "RECONCILE", Version: 7, OnHand: 0, DeltaOnHand: -3}, []string{"stock_changed", "out_of_stock"}},
		{"transfer out of the last units", engine.Event{Type: "TRANSFER_OUT", Version: 7, OnHand: 0, DeltaOnHand: -3}, []string{"stock_changed", "out_of_stock", "transfer"}},
		{"transfer expected", engine.Event{Type: "TRANSFER_EXPECTED", Version: 1, States: engine.States{Incoming: 4}, StateDeltas: engine.StateDeltas{DeltaIncoming: 4}}, []string{"stock_changed", "transfer"}},
		{"transfer received into an empty item", engine.Event{Type: "TRANSFER_IN", Version: 2, OnHand: 4, DeltaOnHand: 4, StateDeltas: engine.StateDeltas{DeltaIncoming: -4}}, []string{"stock_changed", "back_in_stock", "transfer"}},
		{"move of the last units to damaged", engine.Event{Type: "MOVE", Version: 5, OnHand: 4, States: engine.States{Damaged: 4},
			StateDeltas: engine.StateDeltas{DeltaDamaged: 2}}, []string{"stock_changed", "out_of_stock"}},
		{"move back from display", engine.Event{Type: "MOVE", Version: 5, OnHand: 4, States: engine.States{Display: 1},
			StateDeltas: engine.StateDeltas{DeltaDisplay: -3}}, []string{"stock_changed", "back_in_stock"}},
		{"later fulfilment takes the last", engine.Event{Type: "SALE", Version: 5, OnHand: 4, States: engine.States{Committed: 4},
			StateDeltas: engine.StateDeltas{DeltaCommitted: 1}}, []string{"stock_changed", "out_of_stock"}},
		{"a fulfilment leaves available alone", engine.Event{Type: "FULFIL", Version: 6, OnHand: 3, DeltaOnHand: -1, States: engine.States{Committed: 3},
			StateDeltas: engine.StateDeltas{DeltaCommitted: -1}}, []string{"stock_changed"}},
		{"safety stock counts", engine.Event{Type: "SALE", Version: 5, OnHand: 2, DeltaOnHand: -1, SafetyStock: rp(2)}, []string{"stock_changed", "out_of_stock"}},
		{"incoming is not available", engine.Event{Type: "SET", Version: 5, OnHand: 0, States: engine.States{Incoming: 5}, StateDeltas: engine.StateDeltas{DeltaIncoming: 5}}, []string{"stock_changed"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, webhook.Names(&c.ev))
		})
	}
}

func TestCreateRefusesBadInput(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	strict := webhook.NewStore(v.pool, webhook.StoreConfig{})
	for _, c := range []struct {
		name, field string
		n           webhook.NewSubscription
		store       *webhook.Store
	}{
		{"not http", "url", webhook.NewSubscription{URL: "ftp://example.com/x", Events: []string{"stock_changed"}}, v.store},
		{"no url", "url", webhook.NewSubscription{Events: []string{"stock_changed"}}, v.store},
		{"relative", "url", webhook.NewSubscription{URL: "/hook", Events: []string{"stock_changed"}}, v.store},
		{"unknown event", "events", webhook.NewSubscription{URL: "https://example.com/x", Events: []string{"sold"}}, v.store},
		{"no events", "events", webhook.NewSubscription{URL: "https://example.com/x"}, v.store},
		{"short secret", "secret", webhook.NewSubscription{URL: "https://example.com/x", Events: []string{"low_stock"}, Secret: "fifteen-bytes.."}, v.store},
		{"bad store", "stores", webhook.NewSubscription{URL: "https://example.com/x", Events: []string{"low_stock"}, Stores: []string{"a b"}}, v.store},
		{"loopback", "url", webhook.NewSubscription{URL: "http://127.0.0.1:9/x", Events: []string{"low_stock"}}, strict},
		{"localhost", "url", webhook.NewSubscription{URL: "http://localhost/x", Events: []string{"low_stock"}}, strict},
		{"private", "url", webhook.NewSubscription{URL: "http://10.1.2.3/x", Events: []string{"low_stock"}}, strict},
		{"link-local", "url", webhook.NewSubscription{URL: "http://169.254.169.254/latest", Events: []string{"low_stock"}}, strict},
		{"ipv6 loopback", "url", webhook.NewSubscription{URL: "http://[::1]:80/x", Events: []string{"low_stock"}}, strict},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.store.Create(t.Context(), c.n)
			var ve *engine.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, c.field, ve.Field)
		})
	}
	require.Zero(t, testsupport.Count(t, v.pool, `SELECT count(*) FROM webhooks`))

	// A public address passes the strict store; the secret is made.
	s, err := strict.Create(t.Context(), webhook.NewSubscription{URL: "https://93.184.215.14/hook", Events: []string{"low_stock", "low_stock"}, Stores: []string{}})
	require.NoError(t, err)
	require.Len(t, s.Secret, 64)
	require.Equal(t, []string{"low_stock"}, s.Events)
	require.Nil(t, s.Stores)
	got, err := strict.Get(t.Context(), s.ID)
	require.NoError(t, err)
	require.Empty(t, got.Secret, "reads never show the secret")
	require.Equal(t, s.URL, got.URL)
	require.NoError(t, strict.Delete(t.Context(), s.ID))
	require.ErrorIs(t, strict.Delete(t.Context(), s.ID), webhook.ErrNotFound)
	_, err = strict.Get(t.Context(), s.ID)
	require.ErrorIs(t, err, webhook.ErrNotFound)
}

// TestDeliversSignedInVersionOrder: every change reaches a subscriber once,
// signed, with its id in the header, each item's in version order; a store
// filter keeps other stores' events out.
func TestDeliversSignedInVersionOrder(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	all := newReceiver(t, secret, nil)
	onlyS2 := newReceiver(t, secret, nil)
	v.subscribe(t, all.srv.URL+"/hook", "stock_changed")
	_, err := v.store.Create(t.Context(), webhook.NewSubscription{URL: onlyS2.srv.URL, Events: []string{"stock_changed"}, Stores: []string{"s2"}, Secret: secret})
	require.NoError(t, err)
	v.start(t, webhook.Config{})

	const n = 30
	for _, store := range []string{"s1", "s2"} {
		for _, sku := range []string{"a", "b"} {
			v.set(t, store, sku, 1000, nil)
		}
	}
	for i := range n {
		for _, store := range []string{"s1", "s2"} {
			require.NoError(t, v.sell(t, store, []string{"a", "b"}[i%2], 1))
		}
	}
	want := 4 + 2*n
	testsupport.WaitFor(t, 20*time.Second, "deliveries", func() bool { return len(all.accepted()) >= want && len(onlyS2.accepted()) >= want/2 })
	require.Len(t, all.accepted(), want)
	require.Len(t, onlyS2.accepted(), want/2)
	require.Zero(t, all.badRequests())
	last := map[string]int64{}
	ids := map[string]bool{}
	for _, g := range all.accepted() {
		p := g.payload
		key := p.Item.Store + "/" + p.Item.SKU
		require.Equal(t, last[key]+1, p.Event.Version, "%s in version order", key)
		last[key] = p.Event.Version
		require.False(t, ids[g.id], "one delivery per event")
		ids[g.id] = true
		require.Equal(t, "stock_changed", p.Type)
		require.Equal(t, p.Item.OnHand-p.Item.Reserved, p.Item.Available)
	}
	for _, g := range onlyS2.accepted() {
		require.Equal(t, "s2", g.payload.Item.Store)
	}
}

// TestRetriesUntilSuccess: an endpoint that answers 500 three times, then
// 200, gets the event four times, with the same id, and then no more.
func TestRetriesUntilSuccess(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	var fails atomic.Int32
	r := newReceiver(t, secret, func(_ int, g got) int {
		if g.payload.Type == "out_of_stock" && fails.Add(1) <= 3 {
			return 500
		}
		return 200
	})
	sub := v.subscribe(t, r.srv.URL, "out_of_stock")
	d, _ := v.start(t, webhook.Config{})
	v.set(t, "s1", "lamp", 1, nil)
	require.NoError(t, v.sell(t, "s1", "lamp", 1))
	testsupport.WaitFor(t, 20*time.Second, "the fourth attempt", func() bool {
		return d.Stats().Attempts[sub.ID][webhook.OutcomeDelivered] == 1
	})
	reqs := r.requests()
	require.Len(t, reqs, 4)
	for _, g := range reqs {
		require.Equal(t, "s1/lamp/2/out_of_stock", g.id)
	}
	log, err := v.store.Deliveries(t.Context(), sub.ID, 10)
	require.NoError(t, err)
	require.Len(t, log, 1)
	require.Equal(t, webhook.StatusDelivered, log[0].Status)
	require.Equal(t, 4, log[0].Attempts)
	require.Equal(t, 200, *log[0].StatusCode)
	require.NotNil(t, log[0].DeliveredAt)
	st := d.Stats().Attempts[sub.ID]
	require.Equal(t, int64(3), st[webhook.OutcomeRetry])
	require.Equal(t, int64(1), st[webhook.OutcomeDelivered])
	// the metrics say the same
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(d.Collector()))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					name += "/" + l.GetValue()
				}
			}
			got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	require.Equal(t, 3.0, got["inventory_webhook_deliveries_total/retry"])
	require.Equal(t, 1.0, got["inventory_webhook_deliveries_total/delivered"])
	require.Equal(t, 0.0, got["inventory_webhook_retry_queue_length"])
	require.Equal(t, 0.0, got["inventory_webhook_pending_deliveries"])
	require.Contains(t, got, "inventory_webhook_oldest_undelivered_seconds")
	require.Contains(t, got, "inventory_webhook_intake_lag_events")
	// and no more: the next event is the only next request
	require.NoError(t, v.setErr(t, "s1", "lamp", 3))
	require.NoError(t, v.sell(t, "s1", "lamp", 3))
	testsupport.WaitFor(t, 20*time.Second, "the next event", func() bool { return len(r.accepted()) == 2 })
	require.Len(t, r.requests(), 5)
}

func (v *env) setErr(t *testing.T, store, sku string, onHand int64) error {
	_, err := v.e.Set(t.Context(), engine.SetRequest{Store: store, SKU: sku, OnHand: onHand}, engine.Op{})
	return err
}

// TestFailsAfterMaxAge: a delivery an endpoint keeps refusing is retried
// with growing waits and marked failed once its retry window is over.
func TestFailsAfterMaxAge(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	r := newReceiver(t, secret, func(int, got) int { return 503 })
	sub := v.subscribe(t, r.srv.URL, "stock_changed")
	d, _ := v.start(t, webhook.Config{MaxAge: 500 * time.Millisecond})
	v.set(t, "s1", "lamp", 1, nil)
	testsupport.WaitFor(t, 20*time.Second, "failed", func() bool { return d.Stats().Attempts[sub.ID][webhook.OutcomeFailed] == 1 })
	log, err := v.store.Deliveries(t.Context(), sub.ID, 10)
	require.NoError(t, err)
	require.Greater(t, log[0].Attempts, 1)
	require.Equal(t, 503, *log[0].StatusCode)
	require.Contains(t, log[0].LastError, "HTTP 503")
	require.Nil(t, log[0].NextAttemptAt)
	n := len(r.requests())
	require.Equal(t, log[0].Attempts, n)
	require.Equal(t, int64(1), d.Stats().Attempts[sub.ID][webhook.OutcomeFailed])
}

// TestHangingEndpointDelaysNoOther: while one endpoint never answers, the
// other endpoint gets every event of a run of sales, and every sale
// succeeds. Invariant, not timing: the healthy endpoint's deliveries equal
// the sales, while the hanging one has completed none.
func TestHangingEndpointDelaysNoOther(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	release := make(chan struct{})
	hang := newReceiver(t, secret, func(int, got) int { <-release; return 200 })
	t.Cleanup(func() { close(release) })
	ok := newReceiver(t, secret, nil)
	v.subscribe(t, hang.srv.URL, "stock_changed")
	v.subscribe(t, ok.srv.URL, "stock_changed")
	v.start(t, webhook.Config{Timeout: time.Hour, Lease: 2 * time.Hour})
	const skus, sales = 20, 200
	for i := range skus {
		v.set(t, "s1", fmt.Sprint("sku", i), 1000, nil)
	}
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range sales {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := v.sell(t, "s1", fmt.Sprint("sku", i%skus), 1); err != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	require.Zero(t, failed.Load())
	testsupport.WaitFor(t, 30*time.Second, "the healthy endpoint's deliveries", func() bool { return len(ok.accepted()) == skus+sales })
	require.Empty(t, hang.accepted())
	require.LessOrEqual(t, len(hang.requests()), 8, "the hanging endpoint holds at most its concurrency of requests")
}

// TestFlashSaleFiresOneOutOfStock: a crowd buys an item out; exactly one
// out_of_stock goes out, and after a restock exactly one back_in_stock.
func TestFlashSaleFiresOneOutOfStock(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	r := newReceiver(t, secret, nil)
	v.subscribe(t, r.srv.URL, "out_of_stock", "back_in_stock", "low_stock")
	v.start(t, webhook.Config{})
	const stock, buyers = 50, 200
	v.set(t, "s1", "tv", stock, ptr(int64(10)))
	var wg sync.WaitGroup
	var sold, refused atomic.Int32
	for range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := v.sell(t, "s1", "tv", 1)
			var ise *engine.InsufficientStockError
			switch {
			case err == nil:
				sold.Add(1)
			case errors.As(err, &ise):
				refused.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int32(stock), sold.Load())
	require.Equal(t, int32(buyers-stock), refused.Load())
	_, err := v.e.Adjust(t.Context(), engine.AdjustRequest{Store: "s1", SKU: "tv", Delta: 20, Reason: "restock"}, engine.Op{})
	require.NoError(t, err)
	testsupport.WaitFor(t, 20*time.Second, "the crossings", func() bool { return len(r.accepted()) >= 3 })
	// every event is in (the receiver keeps up), so no late crossing can come
	testsupport.WaitFor(t, 20*time.Second, "settled", func() bool { return settled(t, v) })
	require.Len(t, r.ofType("out_of_stock"), 1)
	require.Len(t, r.ofType("back_in_stock"), 1)
	require.Len(t, r.ofType("low_stock"), 1)
	require.Equal(t, int64(stock+1), r.ofType("out_of_stock")[0].payload.Event.Version)
	require.Equal(t, int64(0), r.ofType("out_of_stock")[0].payload.Item.Available)
	require.Equal(t, int64(20), r.ofType("back_in_stock")[0].payload.Item.Available)
	require.Equal(t, int64(10), r.ofType("low_stock")[0].payload.Item.Available)
}

// settled reports whether every entry was read and every delivery made.
// (A delivery is recorded after the receiver took it.)
func settled(t *testing.T, v *env) bool {
	return drained(t, v) && testsupport.Count(t, v.pool, `SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'`) == 0
}

// drained reports whether the webhook group has acknowledged every entry
// of every partition.
func drained(t *testing.T, v *env) bool {
	for p := range v.e.Partitions() {
		st, ok, err := v.e.GroupState(t.Context(), p, webhook.DefaultGroup)
		require.NoError(t, err)
		if ok && st.Unacked > 0 {
			return false
		}
	}
	return true
}

// TestCrossingsThroughHoldsAndExpiry: holds take an item out of stock and
// below its reorder point; their release and expiry bring it back.
func TestCrossingsThroughHoldsAndExpiry(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	r := newReceiver(t, secret, nil)
	v.subscribe(t, r.srv.URL, "out_of_stock", "back_in_stock", "low_stock")
	v.start(t, webhook.Config{})
	ctx := t.Context()
	v.set(t, "s1", "sofa", 5, ptr(int64(2)))
	// a hold of 3: available 5 → 2, at the reorder point: low_stock
	h1, err := v.e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 3}}, TTL: time.Hour}, engine.Op{})
	require.NoError(t, err)
	// a hold of the last 2, expiring at once: out_of_stock
	_, err = v.e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 2}}, TTL: time.Second}, engine.Op{})
	require.NoError(t, err)
	testsupport.WaitFor(t, 20*time.Second, "low and out", func() bool { return len(r.ofType("out_of_stock")) == 1 })
	// its expiry: back_in_stock (available 2, still low: no new low_stock)
	testsupport.WaitFor(t, 20*time.Second, "the expiry", func() bool {
		n, err := v.e.ExpireDue(ctx, v.e.Partition("s1"), 10)
		require.NoError(t, err)
		return n == 1
	})
	testsupport.WaitFor(t, 20*time.Second, "back in stock", func() bool { return len(r.ofType("back_in_stock")) == 1 })
	// the release of the first hold: 2 → 5, above the reorder point again;
	// a sale of 3 crosses it once more
	_, err = v.e.Release(ctx, h1.Reservation.ID, engine.Op{})
	require.NoError(t, err)
	require.NoError(t, v.sell(t, "s1", "sofa", 3))
	testsupport.WaitFor(t, 20*time.Second, "the second low_stock", func() bool { return len(r.ofType("low_stock")) == 2 })
	testsupport.WaitFor(t, 20*time.Second, "settled", func() bool { return settled(t, v) })
	require.Len(t, r.ofType("out_of_stock"), 1)
	require.Len(t, r.ofType("back_in_stock"), 1)
	require.Len(t, r.ofType("low_stock"), 2)
	types := []string{}
	for _, g := range r.accepted() {
		types = append(types, g.payload.Event.Type+":"+g.payload.Type)
	}
	require.Equal(t, []string{"RESERVE:low_stock", "RESERVE:out_of_stock", "EXPIRE:back_in_stock", "SALE:low_stock"}, types)
}

// TestStoppedMidDeliveryLosesNothing: a worker that stops while an endpoint
// holds its request (as a killed one would: nothing recorded) leaves the
// delivery to the next worker, which sends it again with the same id.
func TestStoppedMidDeliveryLosesNothing(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	entered := make(chan struct{}, 1)
	var first atomic.Bool
	r := newReceiver(t, secret, func(int, got) int {
		if first.CompareAndSwap(false, true) {
			entered <- struct{}{}
			time.Sleep(300 * time.Millisecond) // cut off by the stop below
			return 500
		}
		return 200
	})
	sub := v.subscribe(t, r.srv.URL, "stock_changed")
	cfg := webhook.Config{Source: webhook.Source{Consumer: "w1"}, Lease: 1500 * time.Millisecond, Timeout: time.Second}
	_, stop := v.start(t, cfg)
	v.set(t, "s1", "lamp", 1, nil)
	<-entered
	stop()
	cfg.Consumer = "w2"
	v.start(t, cfg)
	testsupport.WaitFor(t, 20*time.Second, "the delivery again", func() bool {
		log, err := v.store.Deliveries(t.Context(), sub.ID, 10)
		require.NoError(t, err)
		return len(log) == 1 && log[0].Status == webhook.StatusDelivered
	})
	reqs := r.requests()
	require.Len(t, reqs, 2)
	require.Equal(t, reqs[0].id, reqs[1].id)
	require.Len(t, r.accepted(), 1)
}

// TestUnreadEntriesOfAStoppedWorkerAreTakenOver: entries one worker read
// but never turned into deliveries are taken over by another.
func TestUnreadEntriesOfAStoppedWorkerAreTakenOver(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	r := newReceiver(t, secret, nil)
	v.subscribe(t, r.srv.URL, "stock_changed")
	p := v.e.Partition("s1")
	// a worker that read the entries and died before writing them down
	require.NoError(t, v.e.CreateGroup(t.Context(), p, webhook.DefaultGroup))
	v.set(t, "s1", "lamp", 1, nil)
	v.set(t, "s1", "lamp", 2, nil)
	got, err := v.e.ReadNew(t.Context(), p, engine.Consumer{Group: webhook.DefaultGroup, Name: "dead"}, 10, 0)
	require.NoError(t, err)
	require.Len(t, got, 2)
	v.start(t, webhook.Config{Source: webhook.Source{Consumer: "alive", ClaimIdle: 100 * time.Millisecond}})
	testsupport.WaitFor(t, 20*time.Second, "the taken-over events", func() bool { return len(r.accepted()) == 2 })
	require.Equal(t, int64(1), r.accepted()[0].payload.Event.Version)
	require.Equal(t, int64(2), r.accepted()[1].payload.Event.Version)
}

// TestPersisterTrimWaitsForWebhooks: the persister trims no entry the
// webhook group has not acknowledged.
func TestPersisterTrimWaitsForWebhooks(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	require.Contains(t, persist.DownstreamGroups, webhook.DefaultGroup)
	p := v.e.Partition("s1")
	other := "s2"
	for i := 2; v.e.Partition(other) == p; i++ {
		other = fmt.Sprint("s", i)
	}
	require.NoError(t, v.e.CreateGroup(t.Context(), p, webhook.DefaultGroup))
	for i := range 5 {
		v.set(t, "s1", "lamp", int64(i), nil)
		v.set(t, other, "lamp", int64(i), nil)
	}
	testsupport.StartPersister(t, v.e, v.pool, persist.PersisterConfig{RetentionWindow: time.Millisecond, RetentionCount: 1})
	// the other partition, without the group, is trimmed; this one is not
	q := v.e.Partition(other)
	testsupport.WaitFor(t, 20*time.Second, "the other partition trimmed", func() bool {
		n, err := v.e.StreamLen(t.Context(), q)
		require.NoError(t, err)
		return n <= 1
	})
	n, err := v.e.StreamLen(t.Context(), p)
	require.NoError(t, err)
	require.Equal(t, int64(5), n)
	// once the webhook workers acknowledged them, they go
	v.start(t, webhook.Config{})
	testsupport.WaitFor(t, 20*time.Second, "trimmed", func() bool {
		n, err := v.e.StreamLen(t.Context(), p)
		require.NoError(t, err)
		return n <= 1
	})
}

// TestCrossingsThroughMoves: moving the last sellable units to damaged
// takes an item out of stock; moving one back brings it back.
func TestCrossingsThroughMoves(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	r := newReceiver(t, secret, nil)
	v.subscribe(t, r.srv.URL, "out_of_stock", "back_in_stock")
	v.start(t, webhook.Config{})
	ctx := t.Context()
	v.set(t, "s1", "chair", 3, nil)
	_, err := v.e.Move(ctx, engine.MoveRequest{Store: "s1", SKU: "chair", From: engine.StateAvailable, To: engine.StateDamaged, Qty: 3}, engine.Op{})
	require.NoError(t, err)
	_, err = v.e.Move(ctx, engine.MoveRequest{Store: "s1", SKU: "chair", From: engine.StateDamaged, To: engine.StateAvailable, Qty: 1}, engine.Op{})
	require.NoError(t, err)
	testsupport.WaitFor(t, 20*time.Second, "settled", func() bool { return len(r.accepted()) == 2 && settled(t, v) })
	got := r.accepted()
	require.Equal(t, "out_of_stock", got[0].payload.Type)
	require.Equal(t, "MOVE", got[0].payload.Event.Type)
	require.Equal(t, int64(3), got[0].payload.Item.Damaged)
	require.Equal(t, "back_in_stock", got[1].payload.Type)
	require.Equal(t, int64(1), got[1].payload.Item.Available)
}

// TestCrossingsFromReconciliation: a change whose event was lost before
// anyone read it fires its crossing when a repair brings the ledger to
// Redis' state; a restore of Redis from the ledger announces its crossing
// under the ledger version's id, so an endpoint that heard it already does
// not hear it twice.
func TestCrossingsFromReconciliation(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	ctx := t.Context()
	r := newReceiver(t, secret, nil)
	v.subscribe(t, r.srv.URL, "out_of_stock", "back_in_stock")
	v.set(t, "s1", "c", 5, nil)
	v.set(t, "s1", "b", 3, nil)
	_, err := v.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "b", Delta: -3}, engine.Op{})
	require.NoError(t, err)
	_, err = v.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "b", Delta: 2}, engine.Op{})
	require.NoError(t, err)
	_, stopPersister := testsupport.StartPersister(t, v.e, v.pool, persist.PersisterConfig{})
	_, stopWorkers := v.start(t, webhook.Config{})
	testsupport.WaitFor(t, 20*time.Second, "b out and back", func() bool {
		return len(r.accepted()) == 2 && settled(t, v) && testsupport.LedgerCaughtUp(t, v.pool, v.e)
	})
	require.NoError(t, stopPersister())
	stopWorkers()

	// c sells out and its event vanishes before anyone read it
	p := v.e.Partition("s1")
	_, err = v.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "c", Delta: -5}, engine.Op{})
	require.NoError(t, err)
	last, err := v.rdb.XRevRangeN(ctx, v.e.StreamKey(p), "+", "-", 1).Result()
	require.NoError(t, err)
	require.NoError(t, v.rdb.XDel(ctx, v.e.StreamKey(p), last[0].ID).Err())
	// b goes back to version 2 in Redis (lost writes): out of stock again
	require.NoError(t, v.e.RestoreItem(ctx, engine.ItemState{Store: "s1", SKU: "b", OnHand: 0, Version: 2,
		ReorderPoint: -1, MaxPerCustomer: -1, KeepCustomerUnits: true}, 3))

	rec, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{Repaired: v.store.Enqueue})
	require.NoError(t, err)
	rep, err := rec.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	kinds := map[string]string{}
	for _, f := range rep.Findings {
		kinds[f.SKU] = f.Kind
	}
	require.Equal(t, map[string]string{"c": persist.KindRedisAhead, "b": persist.KindRedisBehind}, kinds)

	v.start(t, webhook.Config{})
	// (the group's lag counts the deleted entry: wait for the rows alone)
	testsupport.WaitFor(t, 20*time.Second, "c's crossing", func() bool {
		return len(r.ofType("out_of_stock")) == 2 &&
			testsupport.Count(t, v.pool, `SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'`) == 0
	})
	outs := r.ofType("out_of_stock")
	require.Equal(t, "s1/c/2/out_of_stock", outs[1].id)
	require.Equal(t, "RECONCILE", outs[1].payload.Event.Type)
	require.Len(t, r.ofType("back_in_stock"), 1, "b's restore is the crossing of version 3, heard already")
	require.Equal(t, int64(2), testsupport.Count(t, v.pool, `SELECT count(*) FROM webhook_deliveries WHERE store_id = 's1' AND sku = 'b'`))
}
