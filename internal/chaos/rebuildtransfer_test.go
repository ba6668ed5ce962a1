package chaos

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// A persister batch holds one step of a transfer (the ship at the source,
// or the expect at the destination), read from a Redis that then restarts
// empty, and waits before its transaction; the other step is in the
// ledger. The rebuild finds the ledger
// with one step and not the other, and makes that one up (docs/design.md
// §20.6, §20.8). The batch must never bring the original into the ledger
// after the rebuild read it: the step would then be there twice (shipped
// twice, incoming counted twice). Afterwards each step is in the ledger
// once, every item's ledger sums equal Redis, DESIGN §11's invariant
// holds, and the reconciler finds nothing.
func TestRebuildRacingAnInFlightTransferStep(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"TRANSFER_OUT", "TRANSFER_EXPECTED"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, worldOpts{client: failFastClient})
			ctx := context.Background()
			require.NotEqual(t, w.ins.Partition(chainFrom), w.ins.Partition(chainTo), "the two ends in two partitions")
			h := newBatchHold(step)
			_, _ = w.startPersister(w.dpool, persist.PersisterConfig{BeforeWrite: h.hook})
			for store, n := range map[string]int64{chainFrom: 100, chainTo: 10} {
				_, err := w.e.Set(ctx, engine.SetRequest{Store: store, SKU: "sofa", OnHand: n}, engine.Op{})
				require.NoError(t, err)
			}
			w.waitDrained(10 * time.Second)

			h.arm()
			r, err := w.e.CreateTransfer(ctx, engine.TransferRequest{From: chainFrom, To: chainTo,
				Lines: []engine.Line{{SKU: "sofa", Qty: 3}}}, op("transfer-before-crash"))
			require.NoError(t, err)
			id := r.Transfer.ID
			h.waitHeld(t)
			other := map[string]string{"TRANSFER_OUT": "TRANSFER_EXPECTED", "TRANSFER_EXPECTED": "TRANSFER_OUT"}[step]
			testsupport.WaitFor(t, 10*time.Second, "the other step in the ledger", func() bool {
				return w.count(`SELECT count(*) FROM inventory_events WHERE transfer_id = $1 AND type = $2`, id, other) == 1
			})

			w.restartRedis()
			rb, err := persist.NewRebuilder(w.ins, w.dpool, persist.RebuilderConfig{})
			require.NoError(t, err)
			for p := 0; p < w.parts; p++ {
				require.NoError(t, rb.RebuildPartition(ctx, p))
			}
			// A sale at each end moves the items on, so a step made up again
			// lands at another version than the held one.
			for _, store := range []string{chainFrom, chainTo} {
				_, err := w.e.Checkout(ctx, engine.CheckoutRequest{Store: store, Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{})
				require.NoError(t, err)
			}
			h.release() // the held batch goes on after the rebuild read the ledger

			w.settleTransfers(30 * time.Second)
			w.waitDrained(30 * time.Second)
			w.logTransferLedger(id)
			w.checkChainFrom(110 - 2)
			w.checkTransferLedger()
			require.Equal(t, int64(1), w.count(`SELECT count(*) FROM inventory_events WHERE transfer_id = $1 AND type = $2`, id, step),
				"the held step in the ledger once")
		})
	}
}

// batchHold holds, once armed, the first persister batch that carries an
// event of one type, until released.
type batchHold struct {
	typ      string
	mu       sync.Mutex
	armed    bool
	entered  chan struct{}
	released chan struct{}
	once     sync.Once
}

func newBatchHold(typ string) *batchHold {
	return &batchHold{typ: typ, entered: make(chan struct{}), released: make(chan struct{})}
}

func (h *batchHold) arm() {
	h.mu.Lock()
	h.armed = true
	h.mu.Unlock()
}

// hook is a persister hook (BeforeWrite).
func (h *batchHold) hook(ctx context.Context, _ int, evs []engine.Event) error {
	h.mu.Lock()
	hold := false
	if h.armed {
		for _, ev := range evs {
			if ev.Type == h.typ {
				hold = true
			}
		}
	}
	if hold {
		h.armed = false
	}
	h.mu.Unlock()
	if hold {
		close(h.entered)
		select {
		case <-h.released:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (h *batchHold) waitHeld(t testing.TB) {
	t.Helper()
	select {
	case <-h.entered:
	case <-time.After(20 * time.Second):
		t.Fatalf("no persister batch with a %s", h.typ)
	}
}

func (h *batchHold) release() { h.once.Do(func() { close(h.released) }) }

// logTransferLedger logs a transfer's events in the ledger.
func (w *world) logTransferLedger(id string) {
	w.t.Helper()
	rows, err := w.dpool.Query(context.Background(), `SELECT store_id, type, version, delta_on_hand, delta_incoming, principal, op_id
		FROM inventory_events WHERE transfer_id = $1 ORDER BY store_id, version`, id)
	require.NoError(w.t, err)
	defer rows.Close()
	for rows.Next() {
		var st, ty, pr, opID string
		var v, dh, di int64
		require.NoError(w.t, rows.Scan(&st, &ty, &v, &dh, &di, &pr, &opID))
		w.t.Logf("ledger of %s: %s %s v%d on_hand%+d incoming%+d by %q op %q", id, st, ty, v, dh, di, pr, opID)
	}
	require.NoError(w.t, rows.Err())
}
