package persist_test

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

// workload runs ops random operations over stores × skus from workers
// goroutines: sets, adjustments, sales, holds and their commits, releases
// and expiries. It returns the ids of reservations it left held.
func workload(t testing.TB, v *env, seed uint64, workers, ops int, stores, skus []string) []string {
	t.Helper()
	ctx := context.Background()
	for _, s := range stores {
		for i, k := range skus {
			req := engine.SetRequest{Store: s, SKU: k, OnHand: 500}
			if i%2 == 0 {
				rp := int64(100)
				req.ReorderPoint = &rp
			}
			if i%3 == 0 {
				mpc := int64(1000)
				req.MaxPerCustomer = &mpc
			}
			_, err := v.e.Set(ctx, req, engine.Op{})
			require.NoError(t, err)
		}
	}
	var (
		mu   sync.Mutex
		held []string
		wg   sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := 0; i < ops; i++ {
				store := stores[r.IntN(len(stores))]
				sku := skus[r.IntN(len(skus))]
				cust := fmt.Sprintf("c%d", r.IntN(5))
				var err error
				switch op := r.IntN(10); {
				case op == 0:
					_, err = v.e.Set(ctx, engine.SetRequest{Store: store, SKU: sku, OnHand: int64(200 + r.IntN(400))}, engine.Op{})
				case op <= 2:
					d := int64(r.IntN(20) - 8)
					if d == 0 {
						d = 1
					}
					_, err = v.e.Adjust(ctx, engine.AdjustRequest{Store: store, SKU: sku, Delta: d, Reason: "count"}, engine.Op{})
				case op <= 4:
					_, err = v.e.Checkout(ctx, engine.CheckoutRequest{Store: store, Customer: cust,
						Lines: []engine.Line{{SKU: sku, Qty: int64(1 + r.IntN(3))}}}, engine.Op{IdempotencyKey: fmt.Sprintf("k%d-%d-%d", seed, w, i)})
				case op <= 7:
					var res engine.ReservationResult
					res, err = v.e.Reserve(ctx, engine.ReserveRequest{Store: store, Customer: cust, TTL: time.Duration(1+r.IntN(3)) * time.Minute,
						Lines: []engine.Line{{SKU: sku, Qty: int64(1 + r.IntN(3))}}}, engine.Op{})
					if err == nil {
						mu.Lock()
						held = append(held, res.Reservation.ID)
						mu.Unlock()
					}
				default:
					mu.Lock()
					var id string
					if len(held) > 0 {
						j := r.IntN(len(held))
						id = held[j]
						held = append(held[:j], held[j+1:]...)
					}
					mu.Unlock()
					if id == "" {
						continue
					}
					if r.IntN(2) == 0 {
						_, err = v.e.Commit(ctx, id, engine.Op{})
					} else {
						_, err = v.e.Release(ctx, id, engine.Op{})
					}
				}
				var ise *engine.InsufficientStockError
				var ple *engine.PurchaseLimitError
				if err != nil && !errors.As(err, &ise) && !errors.As(err, &ple) &&
					!errors.Is(err, engine.ErrReservationNotHeld) && !errors.Is(err, engine.ErrNotFound) {
					t.Errorf("operation: %v", err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	// Expire some of what is left, through the engine's clock. (Holds last
	// minutes, so none expires by itself while a slow machine runs the
	// test: a hold past expires_at reads as expired.)
	v.clock.Advance(2 * time.Minute)
	for p := 0; p < v.e.Partitions(); p++ {
		_, err := v.e.ExpireDue(ctx, p, 1000)
		require.NoError(t, err)
	}
	return held
}
