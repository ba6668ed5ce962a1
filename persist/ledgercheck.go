package persist

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shelfline/inventory/engine"
)

// The ledger's invariants, checked in one place for the tests (through
// internal/testsupport) and for the benchmark's checker (bench): per item,
// the events carry versions 1..N without a gap or a duplicate, and
// inventory_items is at version N with on_hand and reserved equal to the
// sums of the events' delta_on_hand and delta_reserved; given the state the
// ledger must end at (Redis', or a benchmark target's), N and those sums
// equal it too. A ledger with the states of docs/design.md §10 (migration
// 00006) is checked per state as well: each state's deltas sum to it.

// LedgerState is an item's state as the ledger must end at.
type LedgerState struct {
	Store, SKU                string
	OnHand, Reserved, Version int64
	// States are checked when the ledger has them.
	States engine.States
}

// LedgerCheck says what CheckLedger compares the ledger with. The zero
// value checks the ledger on its own, every item of it, once.
type LedgerCheck struct {
	// Stores limits the check to these stores; empty checks every store.
	Stores []string
	// State, when not nil, is the state the ledger must end at, per item:
	// its events run up to the state's version and their deltas sum to the
	// state's counts, and inventory_items equals the state.
	State []LedgerState
	// Complete says State holds every item of the checked stores: an item
	// of the ledger missing from it is a violation.
	Complete bool
	// NoOversell also checks that nothing was ever oversold: no event
	// records on_hand < 0, reserved < 0 or reserved > on_hand (nor a
	// negative state, nor reserved + committed + damaged + quality_control +
	// display > on_hand), and no state of State does.
	NoOversell bool
	// Wait is how long to wait for the ledger to catch up with State before
	// checking (the persister may still be draining); 0 reads once.
	Wait time.Duration
}

// LedgerViolation is one broken invariant of one item.
type LedgerViolation struct {
	Store, SKU string
	Problem    string
}

func (v LedgerViolation) String() string { return v.Store + "/" + v.SKU + ": " + v.Problem }

// ledgerSums is one item's events, summed, beside its inventory_items row.
type ledgerSums struct {
	events, minV, maxV, sumOnHand, sumReserved, oversold int64
	hasRow                                               bool
	onHand, reserved, version                            int64
	// sumStates and states (the row's): zero in a ledger without states
	sumStates, states engine.States
}

type ledgerItemID struct{ store, sku string }

// The queries use only the columns every ledger of this shape has (the
// benchmark's PostgreSQL baselines keep the same two tables, leaner); the
// states' queries run where the ledger has them (hasStatesSQL).
const (
	hasStatesSQL = `SELECT EXISTS (SELECT 1 FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = 'inventory_events' AND column_name = 'delta_committed')`
	ledgerStateSumsSQL = `SELECT store_id, sku, count(*), min(version), max(version),
	coalesce(sum(delta_on_hand), 0)::bigint, coalesce(sum(delta_reserved), 0)::bigint,
	count(*) FILTER (WHERE on_hand < 0 OR reserved < 0 OR reserved > on_hand
		OR committed < 0 OR damaged < 0 OR quality_control < 0 OR display < 0 OR incoming < 0
		OR reserved + committed + damaged + quality_control + display > on_hand),
	coalesce(sum(delta_committed), 0)::bigint, coalesce(sum(delta_damaged), 0)::bigint,
	coalesce(sum(delta_quality_control), 0)::bigint, coalesce(sum(delta_display), 0)::bigint,
	coalesce(sum(delta_incoming), 0)::bigint
FROM inventory_events WHERE cardinality($1::text[]) = 0 OR store_id = ANY($1)
GROUP BY store_id, sku`
	ledgerStateRowsSQL = `SELECT store_id, sku, on_hand, reserved, version,
	committed, damaged, quality_control, display, incoming
FROM inventory_items WHERE cardinality($1::text[]) = 0 OR store_id = ANY($1)`
	ledgerSumsSQL = `SELECT store_id, sku, count(*), min(version), max(version),
	coalesce(sum(delta_on_hand), 0)::bigint, coalesce(sum(delta_reserved), 0)::bigint,
	count(*) FILTER (WHERE on_hand < 0 OR reserved < 0 OR reserved > on_hand)
FROM inventory_events WHERE cardinality($1::text[]) = 0 OR store_id = ANY($1)
GROUP BY store_id, sku`
	ledgerRowsSQL = `SELECT store_id, sku, on_hand, reserved, version
FROM inventory_items WHERE cardinality($1::text[]) = 0 OR store_id = ANY($1)`
)

// CheckLedger checks the ledger's invariants in the schema pool works on
// (inventory_items and inventory_events as persist/migrations makes them,
// or tables of their shape) and returns the violations, ordered by item.
// An error means the ledger could not be read.
func CheckLedger(ctx context.Context, pool *pgxpool.Pool, c LedgerCheck) ([]LedgerViolation, error) {
	stores := c.Stores
	if stores == nil {
		stores = []string{}
	}
	deadline := time.Now().Add(c.Wait)
	var withStates bool
	if err := pool.QueryRow(ctx, hasStatesSQL).Scan(&withStates); err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	var items map[ledgerItemID]*ledgerSums
	for {
		var err error
		if items, err = readLedgerSums(ctx, pool, stores, withStates); err != nil {
			return nil, err
		}
		if ledgerBehind(items, c.State) == 0 || !time.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond): // polling interval
		}
	}

	var out []LedgerViolation
	add := func(id ledgerItemID, format string, a ...any) {
		out = append(out, LedgerViolation{Store: id.store, SKU: id.sku, Problem: fmt.Sprintf(format, a...)})
	}
	state := make(map[ledgerItemID]LedgerState, len(c.State))
	for _, s := range c.State {
		state[ledgerItemID{s.Store, s.SKU}] = s
	}
	ids := make([]ledgerItemID, 0, len(items)+len(state))
	for id := range items {
		ids = append(ids, id)
	}
	for id := range state {
		if items[id] == nil {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool {
		if ids[i].store != ids[j].store {
			return ids[i].store < ids[j].store
		}
		return ids[i].sku < ids[j].sku
	})
	for _, id := range ids {
		r := items[id]
		if r == nil {
			r = &ledgerSums{}
		}
		// The ledger on its own.
		if r.events > 0 && (r.minV != 1 || r.events != r.maxV) {
			add(id, "%d events over versions %d..%d: a gap or a missing start", r.events, r.minV, r.maxV)
		}
		switch {
		case r.events > 0 && !r.hasRow:
			add(id, "%d events up to version %d, but no inventory_items row", r.events, r.maxV)
		case r.hasRow && (r.version != r.maxV || r.onHand != r.sumOnHand || r.reserved != r.sumReserved):
			add(id, "inventory_items has on_hand %d reserved %d at version %d, the events' deltas sum to %d and %d up to version %d",
				r.onHand, r.reserved, r.version, r.sumOnHand, r.sumReserved, r.maxV)
		case r.hasRow && r.states != r.sumStates:
			add(id, "inventory_items has states %+v at version %d, the events' state deltas sum to %+v",
				r.states, r.version, r.sumStates)
		}
		if c.NoOversell && r.oversold > 0 {
			add(id, "%d events record an oversold state", r.oversold)
		}
		if c.State == nil {
			continue
		}
		// The ledger against the state.
		s, ok := state[id]
		if !ok {
			if c.Complete {
				add(id, "in the ledger (version %d) but not in the state", max(r.maxV, r.version))
			}
			continue
		}
		if c.NoOversell && (s.OnHand < 0 || s.Reserved < 0 || s.Reserved+s.States.Held() > s.OnHand ||
			s.States.Committed < 0 || s.States.Damaged < 0 || s.States.QualityControl < 0 || s.States.Display < 0) {
			add(id, "oversold in the state: on_hand %d reserved %d states %+v", s.OnHand, s.Reserved, s.States)
		}
		switch {
		case r.maxV < s.Version || r.version < s.Version:
			add(id, "behind the state: events up to version %d, inventory_items at version %d, the state at %d", r.maxV, r.version, s.Version)
		case r.maxV > s.Version:
			add(id, "version %d ahead of the state's %d", r.maxV, s.Version)
		case r.sumOnHand != s.OnHand || r.sumReserved != s.Reserved:
			add(id, "deltas sum to on_hand %d reserved %d, state has %d and %d", r.sumOnHand, r.sumReserved, s.OnHand, s.Reserved)
		case withStates && r.sumStates != s.States:
			add(id, "state deltas sum to %+v, state has %+v", r.sumStates, s.States)
		}
		if r.hasRow && r.version == s.Version && (r.onHand != s.OnHand || r.reserved != s.Reserved ||
			(withStates && r.states != s.States)) {
			add(id, "inventory_items has on_hand %d reserved %d states %+v at version %d, state has %d and %d and %+v",
				r.onHand, r.reserved, r.states, r.version, s.OnHand, s.Reserved, s.States)
		}
	}
	return out, nil
}

// ledgerBehind counts the items of state the ledger has not caught up with.
func ledgerBehind(items map[ledgerItemID]*ledgerSums, state []LedgerState) int {
	n := 0
	for _, s := range state {
		r := items[ledgerItemID{s.Store, s.SKU}]
		if r == nil || r.maxV < s.Version || !r.hasRow || r.version < s.Version {
			n++
		}
	}
	return n
}

// readLedgerSums reads every item's events, summed, and inventory_items row
// of stores (all stores when empty).
func readLedgerSums(ctx context.Context, pool *pgxpool.Pool, stores []string, withStates bool) (map[ledgerItemID]*ledgerSums, error) {
	out := map[ledgerItemID]*ledgerSums{}
	sumsSQL, rowsSQL := ledgerSumsSQL, ledgerRowsSQL
	if withStates {
		sumsSQL, rowsSQL = ledgerStateSumsSQL, ledgerStateRowsSQL
	}
	rows, err := pool.Query(ctx, sumsSQL, stores)
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	for rows.Next() {
		var id ledgerItemID
		r := &ledgerSums{}
		dest := []any{&id.store, &id.sku, &r.events, &r.minV, &r.maxV, &r.sumOnHand, &r.sumReserved, &r.oversold}
		if withStates {
			st := &r.sumStates
			dest = append(dest, &st.Committed, &st.Damaged, &st.QualityControl, &st.Display, &st.Incoming)
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read ledger: %w", err)
		}
		out[id] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	rows, err = pool.Query(ctx, rowsSQL, stores)
	if err != nil {
		return nil, fmt.Errorf("read ledger items: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id ledgerItemID
		var oh, rs, v int64
		var st engine.States
		dest := []any{&id.store, &id.sku, &oh, &rs, &v}
		if withStates {
			dest = append(dest, &st.Committed, &st.Damaged, &st.QualityControl, &st.Display, &st.Incoming)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read ledger items: %w", err)
		}
		r := out[id]
		if r == nil {
			r = &ledgerSums{}
			out[id] = r
		}
		r.hasRow, r.onHand, r.reserved, r.version, r.states = true, oh, rs, v, st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read ledger items: %w", err)
	}
	return out, nil
}
