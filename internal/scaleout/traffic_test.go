package scaleout

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// traffic drives a mix of writes through an engine and records what the
// clients were told: every acknowledged write's item versions with its
// operation id (each write carries its own idempotency key).
type traffic struct {
	e      *engine.Engine
	stores []string
	skus   []string
	tag    string

	mu          sync.Mutex
	acked       map[string]map[int64]string // store/sku -> version -> op id
	ok, domain  int
	unavailable int
	timedOut    int
	firstErr    time.Time
	lastErr     time.Time
	unexpected  []error
	held        []string
}

func newTraffic(e *engine.Engine, stores, skus []string, tag string) *traffic {
	return &traffic{e: e, stores: stores, skus: skus, tag: tag, acked: map[string]map[int64]string{}}
}

func itemKey(store, sku string) string { return store + "/" + sku }

func (tr *traffic) success(op string, items ...engine.Item) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.ok++
	for _, it := range items {
		k := itemKey(it.Store, it.SKU)
		if tr.acked[k] == nil {
			tr.acked[k] = map[int64]string{}
		}
		tr.acked[k][it.Version] = op
	}
}

func (tr *traffic) failure(err error) {
	var ise *engine.InsufficientStockError
	tr.mu.Lock()
	defer tr.mu.Unlock()
	switch {
	case errors.As(err, &ise), errors.Is(err, engine.ErrNotFound), errors.Is(err, engine.ErrReservationNotHeld):
		tr.domain++ // a hold lost with a failed master is not found
	case engine.IsUnavailable(err), errors.Is(err, context.DeadlineExceeded):
		if engine.IsUnavailable(err) {
			tr.unavailable++
		} else {
			tr.timedOut++
		}
		now := time.Now()
		if tr.firstErr.IsZero() {
			tr.firstErr = now
		}
		tr.lastErr = now
	default:
		if len(tr.unexpected) < 20 {
			tr.unexpected = append(tr.unexpected, err)
		}
	}
}

func (tr *traffic) okCount() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.ok
}

// seed sets every item's on_hand.
func (tr *traffic) seed(t testing.TB, onHand int64) {
	t.Helper()
	ctx := context.Background()
	for _, s := range tr.stores {
		for _, k := range tr.skus {
			op := fmt.Sprintf("%s-seed-%s-%s", tr.tag, s, k)
			r, err := tr.e.Set(ctx, engine.SetRequest{Store: s, SKU: k, OnHand: onHand}, engine.Op{IdempotencyKey: op})
			require.NoError(t, err)
			tr.success(op, r.Item)
		}
	}
}

// run starts workers goroutines, each doing at most maxOps writes, until
// stop is closed; the returned function waits for them.
func (tr *traffic) run(workers, maxOps int, stop <-chan struct{}) (wait func()) {
	var wg sync.WaitGroup
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 11))
			for i := 0; i < maxOps; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tr.one(rng, fmt.Sprintf("%s-w%d-%d", tr.tag, g, i))
			}
		}(g)
	}
	return wg.Wait
}

func (tr *traffic) one(rng *rand.Rand, op string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s := tr.stores[rng.IntN(len(tr.stores))]
	k := tr.skus[rng.IntN(len(tr.skus))]
	o := engine.Op{IdempotencyKey: op}
	switch rng.IntN(5) {
	case 0, 1:
		k2 := tr.skus[rng.IntN(len(tr.skus))]
		lines := []engine.Line{{SKU: k, Qty: 1}}
		if k2 != k {
			lines = append(lines, engine.Line{SKU: k2, Qty: 2})
		}
		r, err := tr.e.Checkout(ctx, engine.CheckoutRequest{Store: s, Lines: lines}, o)
		if err != nil {
			tr.failure(err)
			return
		}
		tr.success(op, r.Items...)
	case 2:
		r, err := tr.e.Adjust(ctx, engine.AdjustRequest{Store: s, SKU: k, Delta: int64(1 + rng.IntN(3)), Reason: "restock"}, o)
		if err != nil {
			tr.failure(err)
			return
		}
		tr.success(op, r.Item)
	case 3:
		r, err := tr.e.Reserve(ctx, engine.ReserveRequest{Store: s, Lines: []engine.Line{{SKU: k, Qty: 1}}, TTL: time.Hour}, o)
		if err != nil {
			tr.failure(err)
			return
		}
		tr.success(op, r.Items...)
		tr.mu.Lock()
		tr.held = append(tr.held, r.Reservation.ID)
		tr.mu.Unlock()
	case 4:
		tr.mu.Lock()
		id := ""
		if n := len(tr.held); n > 0 {
			j := rng.IntN(n)
			id = tr.held[j]
			tr.held[j] = tr.held[n-1]
			tr.held = tr.held[:n-1]
		}
		tr.mu.Unlock()
		if id == "" {
			return
		}
		var r engine.ReservationResult
		var err error
		if rng.IntN(2) == 0 {
			r, err = tr.e.Commit(ctx, id, o)
		} else {
			r, err = tr.e.Release(ctx, id, o)
		}
		if err != nil {
			tr.failure(err)
			return
		}
		tr.success(op, r.Items...)
	}
}

// summary is one line about what the clients saw.
func (tr *traffic) summary() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	window := time.Duration(0)
	if !tr.firstErr.IsZero() {
		window = tr.lastErr.Sub(tr.firstErr)
	}
	return fmt.Sprintf("%d acknowledged, %d domain refusals, %d unavailable, %d past their 2s deadline (errors over %s)",
		tr.ok, tr.domain, tr.unavailable, tr.timedOut, window.Round(time.Millisecond))
}
