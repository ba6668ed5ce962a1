package testsupport

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/persist"
)

// ItemKey names an item "store/sku", the key of RedisItems and ItemRows.
func ItemKey(store, sku string) string { return store + "/" + sku }

// RedisItems returns every item e holds in Redis, by ItemKey.
func RedisItems(t testing.TB, e *engine.Engine) map[string]engine.Item {
	t.Helper()
	ctx := context.Background()
	out := map[string]engine.Item{}
	for p := 0; p < e.Partitions(); p++ {
		require.NoError(t, e.ScanItems(ctx, p, 500, func(refs []engine.ItemRef) error {
			items, err := e.LoadItems(ctx, refs)
			if err != nil {
				return err
			}
			for _, it := range items {
				if it != nil {
					out[ItemKey(it.Store, it.SKU)] = *it
				}
			}
			return nil
		}))
	}
	return out
}

// ItemRow is an item's row of inventory_items.
type ItemRow struct {
	OnHand, Reserved, Version    int64
	ReorderPoint, MaxPerCustomer *int64
	// States and SafetyStock: docs/design.md §10.
	States      engine.States
	SafetyStock *int64
}

// ItemRows returns every row of inventory_items, by ItemKey.
func ItemRows(t testing.TB, pool *pgxpool.Pool) map[string]ItemRow {
	t.Helper()
	rows, err := pool.Query(context.Background(),
		`SELECT store_id, sku, on_hand, reserved, version, reorder_point, max_per_customer,
			committed, damaged, quality_control, display, incoming, safety_stock FROM inventory_items`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]ItemRow{}
	for rows.Next() {
		var s, k string
		var it ItemRow
		require.NoError(t, rows.Scan(&s, &k, &it.OnHand, &it.Reserved, &it.Version, &it.ReorderPoint, &it.MaxPerCustomer,
			&it.States.Committed, &it.States.Damaged, &it.States.QualityControl, &it.States.Display, &it.States.Incoming, &it.SafetyStock))
		out[ItemKey(s, k)] = it
	}
	require.NoError(t, rows.Err())
	return out
}

// LedgerCaughtUp reports whether the ledger in pool's schema has caught up
// with Redis: inventory_items holds every item of e at its Redis version
// and inventory_events as many events as those versions add up to.
func LedgerCaughtUp(t testing.TB, pool *pgxpool.Pool, e *engine.Engine) bool {
	t.Helper()
	r, g := RedisItems(t, e), ItemRows(t, pool)
	if len(r) != len(g) {
		return false
	}
	var sum int64
	for k, it := range r {
		row, ok := g[k]
		if !ok || row.Version != it.Version {
			return false
		}
		sum += it.Version
	}
	return Count(t, pool, `SELECT count(*) FROM inventory_events`) == sum
}

// CheckLedger fails the test unless the ledger in pool's schema keeps its
// invariants (LedgerViolations).
func CheckLedger(t testing.TB, pool *pgxpool.Pool, e *engine.Engine, c persist.LedgerCheck) {
	t.Helper()
	v := LedgerViolations(t, pool, e, c)
	require.Empty(t, v, "the ledger's invariants")
}

// LedgerViolations checks the ledger in pool's schema (persist.CheckLedger
// with c): per item, versions 1..N without gap or duplicate, and
// inventory_items at N equal to the sums of the deltas. With e it compares
// the ledger with Redis: every item e holds there is c.State, complete (an
// item of the ledger Redis lacks is a violation), and inventory_items'
// reorder point and purchase limit equal Redis' too. It returns one line
// per violation, and logs the events of an item whose history does not add
// up.
func LedgerViolations(t testing.TB, pool *pgxpool.Pool, e *engine.Engine, c persist.LedgerCheck) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second+c.Wait)
	defer cancel()
	var red map[string]engine.Item
	if e != nil {
		red = RedisItems(t, e)
		c.State, c.Complete = make([]persist.LedgerState, 0, len(red)), true
		for _, it := range red {
			c.State = append(c.State, persist.LedgerState{Store: it.Store, SKU: it.SKU, OnHand: it.OnHand, Reserved: it.Reserved, Version: it.Version, States: it.States})
		}
	}
	found, err := persist.CheckLedger(ctx, pool, c)
	require.NoError(t, err)
	var out []string
	explained := map[string]bool{}
	for _, v := range found {
		out = append(out, v.String())
		if k := ItemKey(v.Store, v.SKU); !explained[k] {
			explained[k] = true
			logTrail(t, pool, v.Store, v.SKU)
		}
	}
	if e != nil {
		rows := ItemRows(t, pool)
		for k, it := range red {
			row, ok := rows[k]
			if !ok {
				continue // a violation above already
			}
			if !equalPtr(row.ReorderPoint, it.ReorderPoint) {
				out = append(out, k+": reorder point "+ptrString(row.ReorderPoint)+" in inventory_items, "+ptrString(it.ReorderPoint)+" in Redis")
			}
			if !equalPtr(row.MaxPerCustomer, it.MaxPerCustomer) {
				out = append(out, k+": max per customer "+ptrString(row.MaxPerCustomer)+" in inventory_items, "+ptrString(it.MaxPerCustomer)+" in Redis")
			}
			if !equalPtr(row.SafetyStock, it.SafetyStock) {
				out = append(out, k+": safety stock "+ptrString(row.SafetyStock)+" in inventory_items, "+ptrString(it.SafetyStock)+" in Redis")
			}
		}
	}
	return out
}

func equalPtr(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func ptrString(p *int64) string {
	if p == nil {
		return "none"
	}
	return strconv.FormatInt(*p, 10)
}

// logTrail logs the ledger events of an item whose delta does not lead from
// the previous event's counts to its own, or whose version does not follow.
func logTrail(t testing.TB, pool *pgxpool.Pool, store, sku string) {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT version, type, delta_on_hand, delta_reserved, on_hand, reserved, op_id, stream_id, occurred_at
FROM inventory_events WHERE store_id = $1 AND sku = $2 ORDER BY version`, store, sku)
	if err != nil {
		return
	}
	defer rows.Close()
	var pv, poh, prs int64
	for rows.Next() {
		var v, doh, drs, oh, rs int64
		var typ, opID, sid string
		var at time.Time
		if rows.Scan(&v, &typ, &doh, &drs, &oh, &rs, &opID, &sid, &at) != nil {
			return
		}
		if v != pv+1 || poh+doh != oh || prs+drs != rs {
			t.Logf("%s/%s v%d (after v%d) %s delta (%d,%d) after (%d,%d) does not follow (%d,%d): op %s stream %s at %s",
				store, sku, v, pv, typ, doh, drs, oh, rs, poh, prs, opID, sid, at.Format(time.RFC3339Nano))
		}
		pv, poh, prs = v, oh, rs
	}
}

// AddFinding records a finding as a reconciliation run of its own would
// (a reconciliation_runs row and a drift_findings row of kind about
// store/sku at version, with the before and after states as JSON) and
// returns the finding's id, for tests of the conflict inbox.
func AddFinding(t testing.TB, pool *pgxpool.Pool, kind, store, sku string, version int64, before, after any) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := json.Marshal(before)
	require.NoError(t, err)
	a, err := json.Marshal(after)
	require.NoError(t, err)
	var run, id int64
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO reconciliation_runs (mode, started_at, finished_at, findings) VALUES ('repair', now(), now(), 1) RETURNING id`).Scan(&run))
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO drift_findings (run_id, kind, store_id, sku, version, before, after, action, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, 'none: a person must decide', 'made by a test') RETURNING id`, run, kind, store, sku, version, b, a).Scan(&id))
	return id
}
