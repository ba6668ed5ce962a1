package bench

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/persist"
)

// pgLedger is the product's PostgreSQL ledger (persist/migrations) in one
// schema: one the run made and drops, or a server's that it only reads.
type pgLedger struct {
	pool   *pgxpool.Pool
	schema string
	owned  bool
	admin  string // database URL, to drop the schema
}

// newPGLedger connects to schema on databaseURL; with create it makes the
// schema, migrates it, and drops it on drop.
func newPGLedger(ctx context.Context, databaseURL, schema string, create bool) (*pgLedger, error) {
	if create {
		if err := execAdmin(ctx, databaseURL, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return nil, err
		}
	}
	l := &pgLedger{schema: schema, owned: create, admin: databaseURL}
	pool, err := newPool(ctx, databaseURL, schema, 8)
	if err != nil {
		_ = l.drop(ctx)
		return nil, err
	}
	l.pool = pool
	if create {
		if err := persist.Migrate(ctx, pool); err != nil {
			_ = l.drop(ctx)
			return nil, err
		}
	}
	return l, nil
}

// newPool opens a pool whose search_path is schema.
func newPool(ctx context.Context, databaseURL, schema string, conns int) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	pc.MaxConns = int32(conns)
	pc.ConnConfig.RuntimeParams["search_path"] = schema
	// Named after the schema, so the run can find its own backends
	// (pg_stat_activity) and measure their CPU.
	pc.ConnConfig.RuntimeParams["application_name"] = schema
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(pctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres at %s: %w", pc.ConnConfig.Host, err)
	}
	return pool, nil
}

// execAdmin runs one statement on its own connection.
func execAdmin(ctx context.Context, databaseURL, sql string) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(cctx, databaseURL)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(cctx, sql); err != nil {
		return fmt.Errorf("postgres %q: %w", sql, err)
	}
	return nil
}

func (l *pgLedger) drop(ctx context.Context) error {
	if l.pool != nil {
		l.pool.Close()
	}
	if !l.owned {
		return nil
	}
	return execAdmin(ctx, l.admin, "DROP SCHEMA IF EXISTS "+pgx.Identifier{l.schema}.Sanitize()+" CASCADE")
}

// check waits up to wait for the ledger to hold every item's current
// version, then verifies it (persist.CheckLedger): per item versions 1..N
// with no gap, the deltas summing to on_hand and reserved, and
// inventory_items equal to the state.
func (l *pgLedger) check(ctx context.Context, items []ItemState, wait time.Duration) ([]string, error) {
	storeSet := map[string]bool{}
	var state []persist.LedgerState
	for _, it := range items {
		storeSet[it.Store] = true
		if it.Found {
			state = append(state, persist.LedgerState{Store: it.Store, SKU: it.SKU, OnHand: it.OnHand, Reserved: it.Reserved, Version: it.Version,
				States: engine.States{Incoming: it.Incoming}})
		}
	}
	stores := make([]string, 0, len(storeSet))
	for s := range storeSet {
		stores = append(stores, s)
	}
	if len(stores) == 0 {
		return nil, nil // no items, nothing to check (and no store means every store)
	}
	sort.Strings(stores)
	if state == nil {
		state = []persist.LedgerState{}
	}
	found, err := persist.CheckLedger(ctx, l.pool, persist.LedgerCheck{Stores: stores, State: state, Wait: wait})
	if err != nil {
		return nil, err
	}
	var v []string
	for _, f := range found {
		if len(v) == 20 {
			v = append(v, "… more ledger violations left out")
			break
		}
		v = append(v, "ledger "+f.String())
	}
	return v, nil
}
