package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// Scenario 13: the stock states (docs/design.md §2.1) under faults. Tills,
// web and later sales, fulfilments, moves between states, adjusts in a
// state and safety stock changes run with idempotency keys and retries
// while Redis replies are lost or cut in bursts and PostgreSQL goes away
// for a while. Once drained, every state's deltas sum exactly to the state
// in the ledger, inventory_items and Redis (CheckLedger per state), nothing
// was oversold in any event, and every acknowledged keyed request applied
// exactly once, every refused one never.
func TestStatesUnderFaults(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{client: lossyClient, engine: func(c *engine.Config) { c.GroupTimeout = time.Second }})
	ctx := context.Background()
	_, _ = w.startPersister(w.pool, persist.PersisterConfig{})
	skus := []string{"sofa", "lamp"}
	for _, sku := range skus {
		_, err := w.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: sku, OnHand: 400, SafetyStock: i64p(3)}, engine.Op{})
		require.NoError(t, err)
	}

	stopFaults := background(t, "fault loop", func(ctx context.Context) error {
		rng := rand.New(rand.NewSource(13))
		for i := 0; i < 10000 && ctx.Err() == nil; i++ { // bounded; stops with the traffic
			sleepCtx(ctx, time.Duration(200+rng.Intn(300))*time.Millisecond)
			switch rng.Intn(3) {
			case 0:
				w.rproxy.Add("lost", "timeout", "downstream", `{"timeout":0}`)
			case 1:
				w.rproxy.Add("lost", "reset_peer", "downstream", `{"timeout":0}`)
			default:
				w.pproxy.Cut()
				sleepCtx(ctx, time.Duration(300+rng.Intn(500))*time.Millisecond)
				w.pproxy.Restore()
				continue
			}
			sleepCtx(ctx, time.Duration(300+rng.Intn(500))*time.Millisecond)
			w.rproxy.Remove("lost")
		}
		w.pproxy.Restore()
		return nil
	})

	type keyed struct {
		key, what string
		ok        bool // acknowledged; else refused
	}
	var (
		mu       sync.Mutex
		done     []keyed
		acked    atomic.Int64
		refused  atomic.Int64
		unknown  atomic.Int64
		retries  atomic.Int64
		failures []string
	)
	definite := func(err error) bool {
		var ise *engine.InsufficientStockError
		return err == nil || errors.As(err, &ise) || errors.Is(err, engine.ErrConflict)
	}
	deadline := time.Now().Add(pick(6*time.Second, 60*time.Second))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(g)))
			for i := 0; i < pick(600, 20000) && time.Now().Before(deadline); i++ { // bounded in count and time
				sku := skus[rng.Intn(len(skus))]
				key := fmt.Sprintf("st-%d-%d-%s", g, i, testsupport.RandomHex(4))
				line := []engine.Line{{SKU: sku, Qty: int64(1 + rng.Intn(2))}}
				states := []string{"available", "committed", "damaged", "quality_control", "display"}
				var what string
				var fn func(ctx context.Context) error
				switch rng.Intn(7) {
				case 0:
					what = "till"
					fn = func(ctx context.Context) error {
						_, err := w.e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: line, Channel: engine.ChannelPOS}, op(key))
						return err
					}
				case 1:
					what = "web"
					fn = func(ctx context.Context) error {
						_, err := w.e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: line}, op(key))
						return err
					}
				case 2:
					what = "later"
					fn = func(ctx context.Context) error {
						_, err := w.e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: line, Fulfilment: engine.FulfilmentLater}, op(key))
						return err
					}
				case 3:
					what = "fulfil"
					fn = func(ctx context.Context) error {
						_, err := w.e.Fulfil(ctx, engine.FulfilRequest{Store: "s1", Lines: line, Reference: key}, op(key))
						return err
					}
				case 4:
					from, to := states[rng.Intn(5)], states[rng.Intn(5)]
					for to == from || ((from == "committed" || to == "committed") && from != "available" && to != "available") {
						from, to = states[rng.Intn(5)], states[rng.Intn(5)]
					}
					what = "move " + from + ">" + to
					fn = func(ctx context.Context) error {
						_, err := w.e.Move(ctx, engine.MoveRequest{Store: "s1", SKU: sku, From: from, To: to, Qty: line[0].Qty}, op(key))
						return err
					}
				case 5:
					st := states[1+rng.Intn(4)]
					d := int64(rng.Intn(5) - 2)
					if d == 0 {
						d = 1
					}
					what = fmt.Sprintf("adjust %s %+d", st, d)
					fn = func(ctx context.Context) error {
						_, err := w.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: sku, Delta: d, State: st}, op(key))
						return err
					}
				default:
					what = "restock"
					fn = func(ctx context.Context) error {
						_, err := w.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: sku, Delta: 5}, op(key))
						return err
					}
				}
				var err error
				start := time.Now()
				for attempt := 0; ; attempt++ {
					actx, cancel := context.WithTimeout(ctx, 600*time.Millisecond)
					err = fn(actx)
					cancel()
					if definite(err) || errors.Is(err, engine.ErrIdempotencyMismatch) || errors.Is(err, engine.ErrCorrupt) ||
						time.Since(start) > 6*time.Second {
						break
					}
					retries.Add(1)
					time.Sleep(time.Duration(10+rng.Intn(40)) * time.Millisecond) // client backoff
				}
				mu.Lock()
				switch {
				case err == nil:
					acked.Add(1)
					done = append(done, keyed{key: key, what: what, ok: true})
				case definite(err):
					refused.Add(1)
					done = append(done, keyed{key: key, what: what})
				case errors.Is(err, engine.ErrIdempotencyMismatch) || errors.Is(err, engine.ErrCorrupt):
					failures = append(failures, fmt.Sprintf("%s %s: %v", what, key, err))
				default:
					unknown.Add(1)
				}
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	require.NoError(t, stopFaults())
	require.Empty(t, failures)
	t.Logf("states traffic: %d acknowledged, %d refused, %d of unknown outcome, %d retries", acked.Load(), refused.Load(), unknown.Load(), retries.Load())
	require.Positive(t, acked.Load())
	require.Positive(t, retries.Load(), "the faults forced retries")

	w.waitDrained(pick(30*time.Second, 90*time.Second))
	w.checkLedger() // per state: deltas sum to the state in the ledger, inventory_items and Redis; nothing oversold
	for _, it := range w.redisItems() {
		require.GreaterOrEqual(t, it.OnHand-it.Reserved-it.Held(), int64(0), "%s/%s", it.Store, it.SKU)
		require.Equal(t, engine.Available(it), it.Available)
	}
	// exactly once: an acknowledged keyed request has one event, a refused
	// one none
	ids := make([]string, len(done))
	for i, k := range done {
		ids[i] = k.key
	}
	rows, err := w.dpool.Query(ctx, `SELECT op_id, count(*) FROM inventory_events WHERE op_id = ANY($1) GROUP BY 1`, ids)
	require.NoError(t, err)
	got := map[string]int64{}
	for rows.Next() {
		var id string
		var n int64
		require.NoError(t, rows.Scan(&id, &n))
		got[id] = n
	}
	require.NoError(t, rows.Err())
	rows.Close()
	for _, k := range done {
		if k.ok {
			require.Equal(t, int64(1), got[k.key], "%s %s acknowledged: applied exactly once", k.what, k.key)
		} else {
			require.Zero(t, got[k.key], "%s %s refused: never applied", k.what, k.key)
		}
	}
}

func i64p(n int64) *int64 { return &n }
