package engine_test

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
)

// TestFlashSaleRace: 200 buyers race for one SKU until refused. Exactly the
// stock is sold, never more, with one event per version.
func TestFlashSaleRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		const stock = 600
		mustSet(t, e, "s1", "sofa", stock)
		var sold, refused atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for g := 0; g < 200; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i <= stock; i++ { // bounded: no buyer can buy more than the stock
					_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{})
					var ise *engine.InsufficientStockError
					switch {
					case err == nil:
						sold.Add(1)
					case errors.As(err, &ise):
						refused.Add(1)
						return
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
		require.Equal(t, int64(stock), sold.Load())
		require.Equal(t, int64(200), refused.Load())
		it := mustGet(t, e, "s1", "sofa")
		require.Equal(t, int64(0), it.OnHand)
		require.Equal(t, int64(stock+1), it.Version)
		checkItemLedger(t, e, "s1", "sofa")
	})
}

// TestMixedRace races multi-line checkouts, reservations, commits, releases,
// restocks and expiries on a few items, with readers checking the invariant
// all along; afterwards held reservations account for every reserved unit
// and every item's events sum to its state.
func TestMixedRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clock := newFakeClock()
		e := b.make(t, engine.Config{Clock: clock.Now})
		skus := []string{"sofa", "lamp", "rug", "bed"}
		for _, s := range skus {
			mustSet(t, e, "s1", s, 40)
		}
		var mu sync.Mutex
		var held []string
		var violations atomic.Int64
		stop := make(chan struct{})
		var readers sync.WaitGroup
		for r := 0; r < 4; r++ {
			readers.Add(1)
			go func() {
				defer readers.Done()
				for i := 0; i < 2000; i++ {
					select {
					case <-stop:
						return
					default:
					}
					it, err := e.GetItem(ctx, "s1", skus[i%len(skus)])
					if err != nil || it.Reserved < 0 || it.Reserved > it.OnHand || it.Available != it.OnHand-it.Reserved {
						violations.Add(1)
					}
				}
			}()
		}
		var wg sync.WaitGroup
		unexpected := make(chan error, 64)
		for g := 0; g < 32; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				rng := rand.New(rand.NewSource(int64(g)))
				for i := 0; i < 60; i++ {
					lines := []engine.Line{}
					for _, k := range rng.Perm(len(skus))[:1+rng.Intn(3)] {
						lines = append(lines, engine.Line{SKU: skus[k], Qty: int64(1 + rng.Intn(3))})
					}
					var err error
					switch rng.Intn(7) {
					case 0, 1:
						_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: lines}, engine.Op{})
					case 2, 3:
						var r engine.ReservationResult
						r, err = e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Lines: lines, TTL: time.Duration(1+rng.Intn(3)) * time.Second}, engine.Op{})
						if err == nil {
							mu.Lock()
							held = append(held, r.Reservation.ID)
							mu.Unlock()
						}
					case 4:
						mu.Lock()
						var id string
						if len(held) > 0 {
							id = held[rng.Intn(len(held))]
						}
						mu.Unlock()
						if id != "" {
							if rng.Intn(2) == 0 {
								_, err = e.Commit(ctx, id, engine.Op{})
							} else {
								_, err = e.Release(ctx, id, engine.Op{})
							}
						}
					case 5:
						_, err = e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: skus[rng.Intn(len(skus))], Delta: int64(rng.Intn(9) - 3)}, engine.Op{})
					case 6:
						clock.Advance(300 * time.Millisecond)
						_, err = e.ExpireDue(ctx, e.Partition("s1"), 50)
					}
					var (
						ise *engine.InsufficientStockError
						ve  *engine.ValidationError
					)
					if err != nil && !errors.As(err, &ise) && !errors.As(err, &ve) && !errors.Is(err, engine.ErrReservationNotHeld) {
						unexpected <- err
						return
					}
				}
			}(g)
		}
		wg.Wait()
		close(stop)
		readers.Wait()
		close(unexpected)
		for err := range unexpected {
			require.NoError(t, err)
		}
		require.Zero(t, violations.Load(), "a reader saw reserved outside 0..on_hand")

		// A hold reads expired from its expires_at on; the sweep gives its
		// units back. Settle what is due, then every unit still reserved
		// belongs to a hold that reads held.
		for sw := engine.NewSweeper(e, engine.SweeperConfig{}); sw.SweepOnce(ctx) > 0; {
		}
		heldUnits := map[string]int64{}
		for _, id := range held {
			r, err := e.GetReservation(ctx, id)
			require.NoError(t, err)
			if r.Status == engine.StatusHeld {
				for _, l := range r.Lines {
					heldUnits[l.SKU] += l.Qty
				}
			}
		}
		for _, s := range skus {
			it := mustGet(t, e, "s1", s)
			require.GreaterOrEqual(t, it.Reserved, int64(0))
			require.LessOrEqual(t, it.Reserved, it.OnHand)
			require.Equal(t, heldUnits[s], it.Reserved, "held reservations account for %s's reserved units", s)
			checkItemLedger(t, e, "s1", s)
		}
		// everything left expires
		clock.Advance(10 * time.Second)
		engine.NewSweeper(e, engine.SweeperConfig{Batch: 7}).SweepOnce(ctx)
		for _, s := range skus {
			require.Equal(t, int64(0), mustGet(t, e, "s1", s).Reserved)
			checkItemLedger(t, e, "s1", s)
		}
	})
}

// TestPurchaseLimitRace: 50 goroutines per customer race for an item with a
// limit of 2, by checkout and by reservation. No customer ever gets more.
func TestPurchaseLimitRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		_, err := e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "tv", OnHand: 1000, MaxPerCustomer: i64(2)}, engine.Op{})
		require.NoError(t, err)
		customers := []string{"ann", "bob", "cat", "dan"}
		got := make([]atomic.Int64, len(customers))
		var wg sync.WaitGroup
		errs := make(chan error, 400)
		for ci, c := range customers {
			for g := 0; g < 50; g++ {
				wg.Add(1)
				go func(ci int, c string, g int) {
					defer wg.Done()
					var err error
					if g%2 == 0 {
						_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Customer: c, Lines: []engine.Line{{SKU: "tv", Qty: int64(1 + g%3)}}}, engine.Op{})
					} else {
						_, err = e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Customer: c, Lines: []engine.Line{{SKU: "tv", Qty: 1}}}, engine.Op{})
					}
					var ple *engine.PurchaseLimitError
					switch {
					case err == nil:
						got[ci].Add(int64(1 + g%3*((g+1)%2)))
					case errors.As(err, &ple):
						if ple.Limit != 2 || ple.Already > 2 {
							errs <- fmt.Errorf("bad limit error %+v", ple)
						}
					default:
						errs <- err
					}
				}(ci, c, g)
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		it := mustGet(t, e, "s1", "tv")
		var total int64
		for ci := range customers {
			require.LessOrEqual(t, got[ci].Load(), int64(2), customers[ci])
			require.GreaterOrEqual(t, got[ci].Load(), int64(1), customers[ci])
			total += got[ci].Load()
		}
		require.Equal(t, total, (1000-it.OnHand)+it.Reserved)
		checkItemLedger(t, e, "s1", "tv")
	})
}
