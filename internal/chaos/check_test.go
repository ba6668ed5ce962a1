package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// redisItems returns every item Redis holds, by "store/sku", read directly.
func (w *world) redisItems() map[string]engine.Item {
	w.t.Helper()
	ctx := context.Background()
	out := map[string]engine.Item{}
	for p := 0; p < w.parts; p++ {
		require.NoError(w.t, w.ins.ScanItems(ctx, p, 500, func(refs []engine.ItemRef) error {
			items, err := w.ins.LoadItems(ctx, refs)
			if err != nil {
				return err
			}
			for _, it := range items {
				if it != nil {
					out[itemName(it.Store, it.SKU)] = *it
				}
			}
			return nil
		}))
	}
	return out
}

type pgItem struct{ OnHand, Reserved, Version int64 }

func (w *world) pgItems() map[string]pgItem {
	w.t.Helper()
	rows, err := w.dpool.Query(context.Background(), `SELECT store_id, sku, on_hand, reserved, version FROM inventory_items`)
	require.NoError(w.t, err)
	defer rows.Close()
	out := map[string]pgItem{}
	for rows.Next() {
		var s, k string
		var it pgItem
		require.NoError(w.t, rows.Scan(&s, &k, &it.OnHand, &it.Reserved, &it.Version))
		out[itemName(s, k)] = it
	}
	require.NoError(w.t, rows.Err())
	return out
}

func (w *world) count(sql string, args ...any) int64 {
	w.t.Helper()
	var n int64
	require.NoError(w.t, w.dpool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// caughtUp reports whether the ledger holds every version Redis has.
func (w *world) caughtUp() bool {
	r, g := w.redisItems(), w.pgItems()
	if len(r) != len(g) {
		return false
	}
	var sum int64
	for k, it := range r {
		if g[k].Version != it.Version {
			return false
		}
		sum += it.Version
	}
	return w.count(`SELECT count(*) FROM inventory_events`) == sum
}

// waitDrained waits until the persister has written everything to the
// ledger; it does not fail the test on a timeout (checkLedger then says
// what differs).
func (w *world) waitDrained(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !w.caughtUp() {
		if time.Now().After(deadline) {
			w.t.Errorf("ledger did not catch up with Redis within %s", d)
			return false
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	return true
}

// checkLedger asserts, once drained: nothing oversold in Redis or in any
// event; per item the ledger's versions run 1..N without gap; the sums of
// its deltas equal inventory_items and Redis.
func (w *world) checkLedger() {
	w.t.Helper()
	t := w.t
	red := w.redisItems()
	for k, it := range red {
		require.True(t, it.Reserved >= 0 && it.Reserved <= it.OnHand, "%s oversold in Redis: %+v", k, it)
	}
	require.Zero(t, w.count(`SELECT count(*) FROM inventory_events WHERE on_hand < 0 OR reserved < 0 OR reserved > on_hand`),
		"no event records an oversold state")
	items := w.pgItems()
	rows, err := w.dpool.Query(context.Background(), `
SELECT store_id, sku, count(*), min(version), max(version), sum(delta_on_hand), sum(delta_reserved)
FROM inventory_events GROUP BY store_id, sku`)
	require.NoError(t, err)
	defer rows.Close()
	n := 0
	for rows.Next() {
		var s, k string
		var cnt, lo, hi, soh, srs int64
		require.NoError(t, rows.Scan(&s, &k, &cnt, &lo, &hi, &soh, &srs))
		key := itemName(s, k)
		require.Equal(t, int64(1), lo, "%s: first version", key)
		require.Equal(t, hi, cnt, "%s: versions 1..%d without gap or duplicate", key, hi)
		it, ok := items[key]
		require.True(t, ok, "%s in inventory_items", key)
		if (pgItem{soh, srs, hi}) != it {
			w.explain(s, k)
		}
		require.Equal(t, pgItem{soh, srs, hi}, it, "%s: inventory_items equals the sums of the ledger's deltas", key)
		ri, ok := red[key]
		require.True(t, ok, "%s in Redis", key)
		require.Equal(t, pgItem{ri.OnHand, ri.Reserved, ri.Version}, it, "%s: Redis equals the ledger", key)
		n++
	}
	require.NoError(t, rows.Err())
	require.Equal(t, len(red), n, "every Redis item has a history")
}

// explain logs the ledger events of an item whose delta does not lead
// from the previous event's counts to its own.
func (w *world) explain(store, sku string) {
	rows, err := w.dpool.Query(context.Background(), `SELECT version, type, delta_on_hand, delta_reserved, on_hand, reserved, op_id, stream_id, occurred_at
FROM inventory_events WHERE store_id = $1 AND sku = $2 ORDER BY version`, store, sku)
	if err != nil {
		return
	}
	defer rows.Close()
	var poh, prs int64
	for rows.Next() {
		var v, doh, drs, oh, rs int64
		var typ, opID, sid string
		var at time.Time
		if rows.Scan(&v, &typ, &doh, &drs, &oh, &rs, &opID, &sid, &at) != nil {
			return
		}
		if poh+doh != oh || prs+drs != rs {
			w.t.Logf("%s/%s v%d %s delta (%d,%d) after (%d,%d) does not follow (%d,%d): op %s stream %s at %s",
				store, sku, v, typ, doh, drs, oh, rs, poh, prs, opID, sid, at.Format(time.RFC3339Nano))
		}
		poh, prs = oh, rs
	}
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
