package engine_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// TestStatesRace: tills (pos), web checkouts, later sales, fulfilments and
// moves hit one item at once while readers check the invariant of
// docs/design.md §2.1 on every read. Afterwards the counts of successes
// account exactly for every state, no web or later sale took the safety
// stock, and the item's events sum to its state per state.
func TestStatesRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		e := b.make(t, engine.Config{})
		const stock, safety = 300, 5
		_, err := e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: stock, SafetyStock: i64(safety)}, engine.Op{})
		require.NoError(t, err)

		var (
			tills, web, later, fulfilled, toDisplay, fromDisplay atomic.Int64
			reads, violations                                    atomic.Int64
			wg, readers                                          sync.WaitGroup
		)
		errs := make(chan error, 64)
		stop := make(chan struct{})
		for r := 0; r < 4; r++ {
			readers.Add(1)
			go func() {
				defer readers.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					it, err := e.GetItem(ctx, "s1", "sofa")
					if err != nil {
						errs <- err
						return
					}
					reads.Add(1)
					if it.OnHand < 0 || it.Reserved < 0 || it.Committed < 0 || it.Damaged < 0 || it.QualityControl < 0 ||
						it.Display < 0 || it.Reserved+it.Held() > it.OnHand || it.Available != engine.Available(it) || it.Available < 0 {
						violations.Add(1)
					}
				}
			}()
		}
		insufficient := func(err error) bool {
			var ise *engine.InsufficientStockError
			return errors.As(err, &ise)
		}
		// worker runs fn up to n times, stopping at the third refusal in a
		// row; ok counts successes.
		worker := func(n int, ok *atomic.Int64, fn func() error) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				refusals := 0
				for i := 0; i < n && refusals < 3; i++ {
					err := fn()
					switch {
					case err == nil:
						ok.Add(1)
						refusals = 0
					case insufficient(err):
						refusals++
					default:
						errs <- err
						return
					}
				}
			}()
		}
		line := []engine.Line{{SKU: "sofa", Qty: 1}}
		for g := 0; g < 6; g++ {
			worker(stock, &tills, func() error {
				_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: line, Channel: engine.ChannelPOS, Reason: "pos"}, engine.Op{})
				return err
			})
			worker(stock, &web, func() error {
				_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: line, Channel: engine.ChannelWeb, Reason: "web"}, engine.Op{})
				return err
			})
			worker(stock, &later, func() error {
				_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: line, Fulfilment: engine.FulfilmentLater, Reason: "later"}, engine.Op{})
				return err
			})
		}
		for g := 0; g < 3; g++ {
			worker(stock, &fulfilled, func() error {
				_, err := e.Fulfil(ctx, engine.FulfilRequest{Store: "s1", Lines: line}, engine.Op{})
				return err
			})
			worker(50, &toDisplay, func() error {
				_, err := e.Move(ctx, engine.MoveRequest{Store: "s1", SKU: "sofa", From: "available", To: "display", Qty: 1}, engine.Op{})
				return err
			})
			worker(50, &fromDisplay, func() error {
				_, err := e.Move(ctx, engine.MoveRequest{Store: "s1", SKU: "sofa", From: "display", To: "available", Qty: 1}, engine.Op{})
				return err
			})
		}
		wg.Wait()
		close(stop)
		readers.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Zero(t, violations.Load(), "reads that broke the invariant, of %d", reads.Load())
		require.Positive(t, reads.Load())

		it := mustGet(t, e, "s1", "sofa")
		requireInvariant(t, it)
		require.Equal(t, stock-tills.Load()-web.Load()-fulfilled.Load(), it.OnHand)
		require.Equal(t, later.Load()-fulfilled.Load(), it.Committed)
		require.Equal(t, toDisplay.Load()-fromDisplay.Load(), it.Display)
		require.Equal(t, int64(1+tills.Load()+web.Load()+later.Load()+fulfilled.Load()+toDisplay.Load()+fromDisplay.Load()), it.Version)
		// a web or later sale never dipped into the safety stock
		for _, ev := range itemEvents(t, e, "s1", "sofa") {
			if ev.Type == engine.EventSale && ev.Reason != "pos" {
				require.GreaterOrEqual(t, ev.OnHand-ev.Reserved-ev.Held(), int64(safety), "%s sale v%d", ev.Reason, ev.Version)
			}
		}
		checkItemLedger(t, e, "s1", "sofa")
	})
}
