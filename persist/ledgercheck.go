package persist

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The ledger's invariants, checked in one place for the tests (through
// internal/testsupport) and for the benchmark's checker (bench): per item,
// the events carry versions 1..N without a gap or a duplicate, and
// inventory_items is at version N with on_hand and reserved equal to the
// sums of the events' delta_on_hand and delta_reserved; given the state the
// ledger must end at (Redis', or a benchmark target's), N and those sums
// equal it too.

// LedgerState is an item's state as the ledger must end at.
type LedgerState struct {
	Store, SKU                string
	OnHand, Reserved, Version int64
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
	// records on_hand < 0, reserved < 0 or reserved > on_hand, and no state
	// of State does.
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
}

type ledgerItemID struct{ store, sku string }

// The queries use only the columns every ledger of this shape has (the
// benchmark's PostgreSQL baselines keep the same two tables, leaner).
const (
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
	var items map[ledgerItemID]*ledgerSums
	for {
		var err error
		if items, err = readLedgerSums(ctx, pool, stores); err != nil {
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
		if c.NoOversell && (s.OnHand < 0 || s.Reserved < 0 || s.Reserved > s.OnHand) {
			add(id, "oversold in the state: on_hand %d reserved %d", s.OnHand, s.Reserved)
		}
		switch {
		case r.maxV < s.Version || r.version < s.Version:
			add(id, "behind the state: events up to version %d, inventory_items at version %d, the state at %d", r.maxV, r.version, s.Version)
		case r.maxV > s.Version:
			add(id, "version %d ahead of the state's %d", r.maxV, s.Version)
		case r.sumOnHand != s.OnHand || r.sumReserved != s.Reserved:
			add(id, "deltas sum to on_hand %d reserved %d, state has %d and %d", r.sumOnHand, r.sumReserved, s.OnHand, s.Reserved)
		}
		if r.hasRow && r.version == s.Version && (r.onHand != s.OnHand || r.reserved != s.Reserved) {
			add(id, "inventory_items has on_hand %d reserved %d at version %d, state has %d and %d", r.onHand, r.reserved, r.version, s.OnHand, s.Reserved)
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
func readLedgerSums(ctx context.Context, pool *pgxpool.Pool, stores []string) (map[ledgerItemID]*ledgerSums, error) {
	out := map[ledgerItemID]*ledgerSums{}
	rows, err := pool.Query(ctx, ledgerSumsSQL, stores)
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	for rows.Next() {
		var id ledgerItemID
		r := &ledgerSums{}
		if err := rows.Scan(&id.store, &id.sku, &r.events, &r.minV, &r.maxV, &r.sumOnHand, &r.sumReserved, &r.oversold); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read ledger: %w", err)
		}
		out[id] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	rows, err = pool.Query(ctx, ledgerRowsSQL, stores)
	if err != nil {
		return nil, fmt.Errorf("read ledger items: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id ledgerItemID
		var oh, rs, v int64
		if err := rows.Scan(&id.store, &id.sku, &oh, &rs, &v); err != nil {
			return nil, fmt.Errorf("read ledger items: %w", err)
		}
		r := out[id]
		if r == nil {
			r = &ledgerSums{}
			out[id] = r
		}
		r.hasRow, r.onHand, r.reserved, r.version = true, oh, rs, v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read ledger items: %w", err)
	}
	return out, nil
}
