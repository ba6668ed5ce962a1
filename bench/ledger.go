package bench

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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

// ledgerRow is one item's ledger, summed.
type ledgerRow struct {
	events, minV, maxV, sumOnHand, sumReserved int64
	// state is inventory_items' row; stateFound false when absent.
	onHand, reserved, version int64
	stateFound                bool
}

const ledgerSumSQL = `SELECT store_id, sku, count(*), min(version), max(version),
	coalesce(sum(delta_on_hand), 0)::bigint, coalesce(sum(delta_reserved), 0)::bigint
FROM inventory_events WHERE store_id = ANY($1) GROUP BY store_id, sku`

const ledgerStateSQL = `SELECT store_id, sku, on_hand, reserved, version
FROM inventory_items WHERE store_id = ANY($1)`

func (l *pgLedger) read(ctx context.Context, stores []string) (map[[2]string]*ledgerRow, error) {
	out := map[[2]string]*ledgerRow{}
	rows, err := l.pool.Query(ctx, ledgerSumSQL, stores)
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	for rows.Next() {
		var k [2]string
		r := &ledgerRow{}
		if err := rows.Scan(&k[0], &k[1], &r.events, &r.minV, &r.maxV, &r.sumOnHand, &r.sumReserved); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read ledger: %w", err)
		}
		out[k] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	rows, err = l.pool.Query(ctx, ledgerStateSQL, stores)
	if err != nil {
		return nil, fmt.Errorf("read ledger items: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k [2]string
		var oh, rs, v int64
		if err := rows.Scan(&k[0], &k[1], &oh, &rs, &v); err != nil {
			return nil, fmt.Errorf("read ledger items: %w", err)
		}
		r := out[k]
		if r == nil {
			r = &ledgerRow{}
			out[k] = r
		}
		r.onHand, r.reserved, r.version, r.stateFound = oh, rs, v, true
	}
	return out, rows.Err()
}

// check waits up to wait for the ledger to hold every item's current
// version, then verifies per item: versions 1..N with no gap, the deltas
// summing to on_hand and reserved, and inventory_items equal to the state.
func (l *pgLedger) check(ctx context.Context, items []ItemState, wait time.Duration) ([]string, error) {
	storeSet := map[string]bool{}
	for _, it := range items {
		storeSet[it.Store] = true
	}
	stores := make([]string, 0, len(storeSet))
	for s := range storeSet {
		stores = append(stores, s)
	}
	sort.Strings(stores)
	deadline := time.Now().Add(wait)
	var (
		rows   map[[2]string]*ledgerRow
		err    error
		behind int
	)
	for {
		rows, err = l.read(ctx, stores)
		if err != nil {
			return nil, err
		}
		behind = 0
		for _, it := range items {
			r := rows[[2]string{it.Store, it.SKU}]
			if it.Found && (r == nil || r.maxV < it.Version || !r.stateFound || r.version < it.Version) {
				behind++
			}
		}
		if behind == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	var v []string
	add := func(format string, a ...any) {
		if len(v) < 20 {
			v = append(v, fmt.Sprintf(format, a...))
		} else if len(v) == 20 {
			v = append(v, "… more ledger violations left out")
		}
	}
	if behind > 0 {
		add("ledger: %d items not drained into PostgreSQL after %s", behind, wait)
	}
	for _, it := range items {
		if !it.Found {
			continue
		}
		r := rows[[2]string{it.Store, it.SKU}]
		if r == nil {
			continue // counted as not drained
		}
		name := it.Store + "/" + it.SKU
		if r.minV != 1 || r.events != r.maxV {
			add("ledger %s: %d events over versions %d..%d: a gap or a missing start", name, r.events, r.minV, r.maxV)
		}
		if r.maxV > it.Version {
			add("ledger %s: version %d ahead of the state's %d", name, r.maxV, it.Version)
		}
		if r.maxV == it.Version && (r.sumOnHand != it.OnHand || r.sumReserved != it.Reserved) {
			add("ledger %s: deltas sum to on_hand %d reserved %d, state has %d and %d", name, r.sumOnHand, r.sumReserved, it.OnHand, it.Reserved)
		}
		if r.stateFound && r.version == it.Version && (r.onHand != it.OnHand || r.reserved != it.Reserved) {
			add("ledger %s: inventory_items has on_hand %d reserved %d at version %d, state has %d and %d", name, r.onHand, r.reserved, r.version, it.OnHand, it.Reserved)
		}
	}
	return v, nil
}
