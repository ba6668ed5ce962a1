package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// redisItems returns every item Redis holds, by "store/sku", read directly.
func (w *world) redisItems() map[string]engine.Item { return testsupport.RedisItems(w.t, w.ins) }

// pgItems returns every row of inventory_items, by "store/sku".
func (w *world) pgItems() map[string]testsupport.ItemRow { return testsupport.ItemRows(w.t, w.dpool) }

func (w *world) count(sql string, args ...any) int64 {
	w.t.Helper()
	return testsupport.Count(w.t, w.dpool, sql, args...)
}

// waitDrained waits until the persister has written everything to the
// ledger; it does not fail the test on a timeout (checkLedger then says
// what differs).
func (w *world) waitDrained(d time.Duration) bool {
	if testsupport.Poll(d, func() bool { return testsupport.LedgerCaughtUp(w.t, w.dpool, w.ins) }) {
		return true
	}
	w.t.Errorf("ledger did not catch up with Redis within %s", d)
	return false
}

// checkLedger asserts, once drained: nothing oversold in Redis or in any
// event; per item the ledger's versions run 1..N without gap; the sums of
// its deltas equal inventory_items and Redis.
func (w *world) checkLedger() {
	w.t.Helper()
	testsupport.CheckLedger(w.t, w.dpool, w.ins, persist.LedgerCheck{NoOversell: true})
}

// checkKeys asserts every keyed request of tr applied at most once, and
// exactly once when its client was told it succeeded (by the ledger's
// operation ids).
func (w *world) checkKeys(tr *traffic) { w.checkKeysLost(tr, -1) }

// checkKeysLost is checkKeys where Redis lost its state at time lost (a
// restart without persistence): a request called before then may be gone
// (acknowledged but never persisted) or, refused on its retry, still be in
// the ledger from its first try.
func (w *world) checkKeysLost(tr *traffic, lost int64) {
	w.t.Helper()
	tr.mu.Lock()
	keys := append([]keyed(nil), tr.keys...)
	tr.mu.Unlock()
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.key
	}
	rows, err := w.dpool.Query(context.Background(),
		`SELECT op_id, store_id || '/' || sku, count(*) FROM inventory_events WHERE op_id = ANY($1) GROUP BY 1, 2`, ids)
	require.NoError(w.t, err)
	defer rows.Close()
	got := map[string]int64{}
	for rows.Next() {
		var id, item string
		var n int64
		require.NoError(w.t, rows.Scan(&id, &item, &n))
		got[id+" "+item] = n
	}
	require.NoError(w.t, rows.Err())
	var okN, unknownApplied int
	for _, k := range keys {
		for _, item := range k.items {
			n := got[k.key+" "+item]
			outcome := k.outcome
			if k.call < lost {
				outcome = "unknown"
			}
			switch outcome {
			case "ok":
				okN++
				if k.kind == opSet {
					// a set to the current count changes nothing
					require.LessOrEqual(w.t, n, int64(1), "%s %s acknowledged: applied at most once", k.kind, k.key)
					break
				}
				require.Equal(w.t, int64(1), n, "%s %s acknowledged: applied exactly once", k.kind, k.key)
			case "refused":
				require.Zero(w.t, n, "%s %s refused: never applied", k.kind, k.key)
			default:
				require.LessOrEqual(w.t, n, int64(1), "%s %s outcome unknown: applied at most once", k.kind, k.key)
				unknownApplied += int(n)
			}
		}
	}
	w.t.Logf("keyed requests: %d acknowledged, each applied once; %d of unknown outcome applied", okN, unknownApplied)
}

// checkSold asserts no acknowledged sale is missing from the ledger: per
// item the units sold (SALE, COMMIT) lie between the acknowledged units and
// those plus the units of unknown outcome.
func (w *world) checkSold(tr *traffic) {
	w.t.Helper()
	for _, ref := range tr.items() {
		item := itemName(ref.Store, ref.SKU)
		sold := w.count(`SELECT coalesce(sum(-delta_on_hand), 0) FROM inventory_events
WHERE store_id = $1 AND sku = $2 AND type IN ('SALE', 'COMMIT')`, ref.Store, ref.SKU)
		tr.mu.Lock()
		lo, hi := tr.soldAcked[item], tr.soldAcked[item]+tr.soldUnknown[item]
		tr.mu.Unlock()
		require.True(w.t, sold >= lo && sold <= hi, "%s: ledger sold %d, clients were told %d (+%d unknown)", item, sold, lo, hi-lo)
	}
}

// checkAll runs every check of a scenario with a persister: drained, the
// ledger, exactly-once, sales, linearizability.
func (w *world) checkAll(tr *traffic) {
	w.t.Helper()
	tr.checkClients()
	w.waitDrained(pick(30*time.Second, 90*time.Second))
	w.checkLedger()
	w.checkKeys(tr)
	w.checkSold(tr)
	tr.rec.check(w.t)
}

var _ = testing.Verbose
