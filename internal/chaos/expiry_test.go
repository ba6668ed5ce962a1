package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// offsetClock is time.Now plus an offset that tests move forward.
type offsetClock struct{ d atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.d.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.d.Add(int64(d)) }

// Scenario 9: a reservation's expiry races its commit. Holds are moved to
// within a few milliseconds of expires_at, then committed while sweepers
// expire due holds in a tight loop. Exactly one wins each race: a commit
// that succeeded left the hold committed and sold its units; a refused one
// left it expired and gave them back. The ledger agrees to the unit.
func TestExpiryRacesCommit(t *testing.T) {
	t.Parallel()
	clk := &offsetClock{}
	w := newWorld(t, worldOpts{engine: func(c *engine.Config) { c.Clock = clk.Now }})
	ctx := context.Background()
	_, _ = w.startPersister(w.dpool, persist.PersisterConfig{})
	skus := []string{"sofa", "lamp", "rug", "bed"}
	const stock = 100000
	for _, k := range skus {
		_, err := w.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: k, OnHand: stock}, engine.Op{})
		require.NoError(t, err)
	}
	rounds := pick(15, 300)
	const perRound = 24
	var committed, expired, expiredBySweep atomic.Int64
	soldBy := map[string]int64{}
	var mu sync.Mutex
	deadline := time.Now().Add(pick(20*time.Second, 10*time.Minute))
	for r := 0; r < rounds && time.Now().Before(deadline); r++ {
		type hold struct {
			id, sku string
			qty     int64
		}
		holds := make([]hold, perRound)
		for i := range holds {
			sku := skus[i%len(skus)]
			qty := int64(1 + i%3)
			res, err := w.e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Lines: []engine.Line{{SKU: sku, Qty: qty}}, TTL: time.Second}, engine.Op{})
			require.NoError(t, err)
			holds[i] = hold{res.Reservation.ID, sku, qty}
		}
		// expires_at is now 1s away: bring it to within a few ms.
		clk.Advance(time.Second - time.Duration(1+(r%8)*4)*time.Millisecond)
		var wg sync.WaitGroup
		stopSweep := make(chan struct{})
		for s := 0; s < 2; s++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 10000; i++ { // bounded
					select {
					case <-stopSweep:
						return
					default:
					}
					n, err := w.e.ExpireDue(ctx, w.e.Partition("s1"), 8)
					if err != nil {
						t.Errorf("expire: %v", err)
						return
					}
					expiredBySweep.Add(int64(n))
				}
			}()
		}
		results := make([]error, len(holds))
		var cw sync.WaitGroup
		for i := range holds {
			cw.Add(1)
			go func(i int) {
				defer cw.Done()
				_, results[i] = w.e.Commit(ctx, holds[i].id, op(fmt.Sprintf("commit-%d-%d", r, i)))
			}(i)
		}
		cw.Wait()
		// Let the sweepers take whatever is left.
		clk.Advance(10 * time.Millisecond)
		testsupport.WaitFor(t, 5*time.Second, "every hold finished", func() bool {
			for _, h := range holds {
				rs, err := w.e.GetReservation(ctx, h.id)
				if err != nil || rs.Status == engine.StatusHeld {
					return false
				}
			}
			return true
		})
		close(stopSweep)
		wg.Wait()
		for i, h := range holds {
			rs, err := w.e.GetReservation(ctx, h.id)
			require.NoError(t, err)
			switch {
			case results[i] == nil:
				require.Equal(t, engine.StatusCommitted, rs.Status, "a commit that succeeded won: %s", h.id)
				committed.Add(1)
				mu.Lock()
				soldBy[h.sku] += h.qty
				mu.Unlock()
			case errors.Is(results[i], engine.ErrReservationNotHeld):
				require.Equal(t, engine.StatusExpired, rs.Status, "a refused commit lost to the expiry: %s", h.id)
				expired.Add(1)
			default:
				t.Fatalf("commit %s: %v", h.id, results[i])
			}
		}
	}
	t.Logf("races: %d commits won, %d expiries won (%d expired by the sweepers)", committed.Load(), expired.Load(), expiredBySweep.Load())
	require.Positive(t, committed.Load(), "some commits won")
	require.Positive(t, expired.Load(), "some expiries won")
	require.Equal(t, expired.Load(), expiredBySweep.Load(), "every lost race was one expiry")
	for _, k := range skus {
		it, err := w.e.GetItem(ctx, "s1", k)
		require.NoError(t, err)
		require.Equal(t, int64(stock)-soldBy[k], it.OnHand, "%s: exactly the committed units sold", k)
		require.Zero(t, it.Reserved, "%s: every hold gave its units back or sold them", k)
	}
	w.waitDrained(30 * time.Second)
	w.checkLedger()
	// One ending per hold in the ledger: COMMIT or EXPIRE, never both.
	require.Zero(t, w.count(`SELECT count(*) FROM (SELECT reservation_id FROM inventory_events
WHERE type IN ('COMMIT', 'EXPIRE', 'RELEASE') GROUP BY reservation_id, sku HAVING count(*) > 1) d`))
	require.Equal(t, committed.Load(), w.count(`SELECT count(DISTINCT reservation_id) FROM inventory_events WHERE type = 'COMMIT'`))
	require.Equal(t, expired.Load(), w.count(`SELECT count(DISTINCT reservation_id) FROM inventory_events WHERE type = 'EXPIRE'`))
}
