package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgTarget is a PostgreSQL-only inventory, the design the engine replaces,
// in one of two forms:
//
//   - optimistic (baseline a): read the rows, then in one transaction
//     UPDATE … WHERE version = $v per line and INSERT the events; a lost race
//     (an UPDATE that matched no row) rolls back and retries the whole
//     operation after an exponential backoff with full jitter.
//   - guarded (baseline b): in one transaction, per line one
//     UPDATE … SET on_hand = on_hand - $n … WHERE … AND on_hand - reserved >= $n
//     and the event INSERT.
//
// Both keep the product's ledger shape (inventory_items with a version,
// inventory_events keyed by store, sku, version) in a schema of their own,
// so the same ledger checks apply. Lines are locked in SKU order, so
// multi-line transactions cannot deadlock. A sweeper expires holds.
type pgTarget struct {
	optimistic bool
	pool       *pgxpool.Pool
	ledger     *pgLedger
	stop       context.CancelFunc
	wg         sync.WaitGroup
	retries    retryPolicy
}

// retryPolicy is the optimistic baseline's backoff: attempt n waits a random
// time in [0, min(Max, Base·2^n)).
type retryPolicy struct {
	Attempts  int
	Base, Max time.Duration
}

var defaultRetry = retryPolicy{Attempts: 16, Base: time.Millisecond, Max: 100 * time.Millisecond}

const pgSchemaSQL = `
CREATE TABLE inventory_items (
    store_id text   NOT NULL,
    sku      text   NOT NULL,
    on_hand  bigint NOT NULL CHECK (on_hand >= 0),
    reserved bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= on_hand),
    version  bigint NOT NULL,
    PRIMARY KEY (store_id, sku)
);
CREATE TABLE inventory_events (
    store_id       text        NOT NULL,
    sku            text        NOT NULL,
    version        bigint      NOT NULL,
    type           text        NOT NULL,
    delta_on_hand  bigint      NOT NULL,
    delta_reserved bigint      NOT NULL,
    on_hand        bigint      NOT NULL,
    reserved       bigint      NOT NULL,
    reservation_id text        NOT NULL DEFAULT '',
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, sku, version)
);
CREATE TABLE reservations (
    id         text        PRIMARY KEY,
    store_id   text        NOT NULL,
    lines      jsonb       NOT NULL,
    status     text        NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX reservations_due ON reservations (expires_at) WHERE status = 'held';
`

func newPGTarget(ctx context.Context, cfg Config, schema string, optimistic bool) (*pgTarget, error) {
	if err := execAdmin(ctx, cfg.DatabaseURL, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return nil, err
	}
	l := &pgLedger{schema: schema, owned: true, admin: cfg.DatabaseURL}
	pool, err := newPool(ctx, cfg.DatabaseURL, schema, cfg.PGConns)
	if err != nil {
		_ = l.drop(ctx)
		return nil, err
	}
	l.pool = pool
	if _, err := pool.Exec(ctx, pgSchemaSQL); err != nil {
		_ = l.drop(ctx)
		return nil, fmt.Errorf("baseline schema: %w", err)
	}
	bg, stop := context.WithCancel(context.Background())
	t := &pgTarget{optimistic: optimistic, pool: pool, ledger: l, stop: stop, retries: defaultRetry}
	t.wg.Add(1)
	go func() { defer t.wg.Done(); t.sweep(bg) }()
	return t, nil
}

func (t *pgTarget) Seed(ctx context.Context, items []SeedItem) error {
	now := time.Now()
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer tx.Rollback(ctx)
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"inventory_items"}, []string{"store_id", "sku", "on_hand", "reserved", "version"},
		pgx.CopyFromSlice(len(items), func(i int) ([]any, error) {
			return []any{items[i].Store, items[i].SKU, items[i].OnHand, int64(0), int64(1)}, nil
		}))
	if err != nil {
		return fmt.Errorf("seed items: %w", err)
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"inventory_events"},
		[]string{"store_id", "sku", "version", "type", "delta_on_hand", "delta_reserved", "on_hand", "reserved", "occurred_at"},
		pgx.CopyFromSlice(len(items), func(i int) ([]any, error) {
			it := items[i]
			return []any{it.Store, it.SKU, int64(1), "SET", it.OnHand, int64(0), it.OnHand, int64(0), now}, nil
		}))
	if err != nil {
		return fmt.Errorf("seed events: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	_, err = t.pool.Exec(ctx, "ANALYZE inventory_items")
	return err
}

// change is one item's change in one operation.
type change struct {
	sku                string
	dOnHand, dReserved int64
}

const guardedSQL = `UPDATE inventory_items
SET on_hand = on_hand + $3, reserved = reserved + $4, version = version + 1
WHERE store_id = $1 AND sku = $2 AND on_hand + $3 >= reserved + $4 AND reserved + $4 >= 0
RETURNING on_hand, reserved, version`

const readSQL = `SELECT sku, on_hand, reserved, version FROM inventory_items WHERE store_id = $1 AND sku = ANY($2)`

const versionedSQL = `UPDATE inventory_items SET on_hand = $3, reserved = $4, version = $5 + 1
WHERE store_id = $1 AND sku = $2 AND version = $5`

const eventSQL = `INSERT INTO inventory_events
(store_id, sku, version, type, delta_on_hand, delta_reserved, on_hand, reserved, reservation_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

// errLostRace: an optimistic UPDATE matched no row; retry.
var errLostRace = errors.New("lost the race for the row's version")

// apply runs one operation: pre (if any) then every change, with one event
// each, in one transaction. It returns errRefused when a change would break
// 0 <= reserved <= on_hand, and pre's error unchanged.
func (t *pgTarget) apply(ctx context.Context, store, typ, rid string, changes []change, pre func(pgx.Tx) error) error {
	sort.Slice(changes, func(i, j int) bool { return changes[i].sku < changes[j].sku })
	if !t.optimistic {
		return pgErr(t.tx(ctx, func(tx pgx.Tx) error {
			if pre != nil {
				if err := pre(tx); err != nil {
					return err
				}
			}
			for _, c := range changes {
				var oh, rs, v int64
				err := tx.QueryRow(ctx, guardedSQL, store, c.sku, c.dOnHand, c.dReserved).Scan(&oh, &rs, &v)
				if errors.Is(err, pgx.ErrNoRows) {
					return errRefused
				}
				if err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, eventSQL, store, c.sku, v, typ, c.dOnHand, c.dReserved, oh, rs, rid); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	skus := make([]string, len(changes))
	for i, c := range changes {
		skus[i] = c.sku
	}
	for attempt := 0; ; attempt++ {
		type row struct{ oh, rs, v int64 }
		cur := make(map[string]row, len(changes))
		rows, err := t.pool.Query(ctx, readSQL, store, skus)
		if err != nil {
			return pgErr(err)
		}
		for rows.Next() {
			var s string
			var r row
			if err := rows.Scan(&s, &r.oh, &r.rs, &r.v); err != nil {
				rows.Close()
				return pgErr(err)
			}
			cur[s] = r
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return pgErr(err)
		}
		for _, c := range changes {
			r, ok := cur[c.sku]
			if !ok || r.oh+c.dOnHand < r.rs+c.dReserved || r.rs+c.dReserved < 0 {
				return errRefused
			}
		}
		err = t.tx(ctx, func(tx pgx.Tx) error {
			if pre != nil {
				if err := pre(tx); err != nil {
					return err
				}
			}
			for _, c := range changes {
				r := cur[c.sku]
				oh, rs := r.oh+c.dOnHand, r.rs+c.dReserved
				tag, err := tx.Exec(ctx, versionedSQL, store, c.sku, oh, rs, r.v)
				if err != nil {
					return err
				}
				if tag.RowsAffected() == 0 {
					return errLostRace
				}
				if _, err := tx.Exec(ctx, eventSQL, store, c.sku, r.v+1, typ, c.dOnHand, c.dReserved, oh, rs, rid); err != nil {
					return err
				}
			}
			return nil
		})
		if !errors.Is(err, errLostRace) {
			return pgErr(err)
		}
		if attempt+1 >= t.retries.Attempts {
			return &opError{Kind: kindRetries, Err: fmt.Errorf("%d attempts: %w", attempt+1, err)}
		}
		ceil := t.retries.Base << attempt
		if ceil > t.retries.Max || ceil <= 0 {
			ceil = t.retries.Max
		}
		select {
		case <-ctx.Done():
			return &opError{Kind: kindTimeout, Err: ctx.Err()}
		case <-time.After(rand.N(ceil)):
		}
	}
}

// tx runs f in a transaction and commits when it returns nil.
func (t *pgTarget) tx(ctx context.Context, f func(pgx.Tx) error) error {
	tx, err := t.pool.Begin(ctx)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	return tx.Commit(ctx)
}

// pgErr maps a PostgreSQL error to the harness's kinds.
func pgErr(err error) error {
	var pe *pgconn.PgError
	switch {
	case err == nil, errors.Is(err, errRefused), errors.Is(err, errNotHeld):
		return err
	case errors.As(err, &pe):
		return &opError{Kind: "pg_" + pe.Code, Err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// A COMMIT cut short may or may not have landed.
		return &opError{Kind: kindTimeout, Unknown: true, Err: err}
	}
	var oe *opError
	if errors.As(err, &oe) {
		return err
	}
	return &opError{Kind: kindTransport, Unknown: true, Err: err}
}

func (t *pgTarget) Checkout(ctx context.Context, store string, lines []Line) error {
	ch := make([]change, len(lines))
	for i, l := range lines {
		ch[i] = change{sku: l.SKU, dOnHand: -l.Qty}
	}
	return t.apply(ctx, store, "SALE", "", ch, nil)
}

func (t *pgTarget) Adjust(ctx context.Context, store, sku string, delta int64) error {
	return t.apply(ctx, store, "ADJUST", "", []change{{sku: sku, dOnHand: delta}}, nil)
}

func (t *pgTarget) Get(ctx context.Context, store, sku string) error {
	var oh, rs, v int64
	err := t.pool.QueryRow(ctx, `SELECT on_hand, reserved, version FROM inventory_items WHERE store_id = $1 AND sku = $2`, store, sku).Scan(&oh, &rs, &v)
	if errors.Is(err, pgx.ErrNoRows) {
		return &opError{Kind: "not_found", Err: err}
	}
	return pgErr(err)
}

func (t *pgTarget) Reserve(ctx context.Context, store string, lines []Line, ttl int) (string, error) {
	id := "r" + randomHex(12)
	ch := make([]change, len(lines))
	for i, l := range lines {
		ch[i] = change{sku: l.SKU, dReserved: l.Qty}
	}
	b, _ := json.Marshal(lines)
	err := t.apply(ctx, store, "RESERVE", id, ch, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO reservations (id, store_id, lines, status, expires_at)
			VALUES ($1, $2, $3, 'held', now() + make_interval(secs => $4))`, id, store, b, ttl)
		return err
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// finish moves a held reservation to status, with its item changes.
func (t *pgTarget) finish(ctx context.Context, id, status, typ string) error {
	var store string
	var raw []byte
	err := t.pool.QueryRow(ctx, `SELECT store_id, lines FROM reservations WHERE id = $1`, id).Scan(&store, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return &opError{Kind: "not_found", Err: err}
	}
	if err != nil {
		return pgErr(err)
	}
	var lines []Line
	if err := json.Unmarshal(raw, &lines); err != nil {
		return &opError{Kind: kindOther, Err: err}
	}
	ch := make([]change, len(lines))
	for i, l := range lines {
		ch[i] = change{sku: l.SKU, dReserved: -l.Qty}
		if status == "committed" {
			ch[i].dOnHand = -l.Qty
		}
	}
	guard := "expires_at > now()"
	if status == "expired" {
		guard = "expires_at <= now()"
	}
	return t.apply(ctx, store, typ, id, ch, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE reservations SET status = $2 WHERE id = $1 AND status = 'held' AND `+guard, id, status)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errNotHeld
		}
		return nil
	})
}

func (t *pgTarget) Commit(ctx context.Context, id string) error {
	return t.finish(ctx, id, "committed", "COMMIT")
}

func (t *pgTarget) Release(ctx context.Context, id string) error {
	return t.finish(ctx, id, "released", "RELEASE")
}

// sweep expires due holds twice a second until ctx ends.
func (t *pgTarget) sweep(ctx context.Context) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t.sweepOnce(ctx)
	}
}

func (t *pgTarget) sweepOnce(ctx context.Context) int {
	n := 0
	for ctx.Err() == nil {
		rows, err := t.pool.Query(ctx, `SELECT id FROM reservations WHERE status = 'held' AND expires_at <= now() ORDER BY expires_at LIMIT 200`)
		if err != nil {
			return n
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(ids) == 0 {
			return n
		}
		for _, id := range ids {
			if t.finish(ctx, id, "expired", "EXPIRE") == nil {
				n++
			}
		}
		if len(ids) < 200 {
			return n
		}
	}
	return n
}

// BulkAdjust applies the chunk in one transaction, each line guarded on its
// own (a line that would go below reserved is skipped and reported), in the
// order given; the optimistic form applies them one by one.
func (t *pgTarget) BulkAdjust(ctx context.Context, updates []Update) ([]error, error) {
	out := make([]error, len(updates))
	if t.optimistic {
		for i, u := range updates {
			out[i] = t.Adjust(ctx, u.Store, u.SKU, u.Delta)
		}
		return out, nil
	}
	err := t.tx(ctx, func(tx pgx.Tx) error {
		for i, u := range updates {
			var oh, rs, v int64
			err := tx.QueryRow(ctx, guardedSQL, u.Store, u.SKU, u.Delta, int64(0)).Scan(&oh, &rs, &v)
			if errors.Is(err, pgx.ErrNoRows) {
				out[i] = errRefused
				continue
			}
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, eventSQL, u.Store, u.SKU, v, "ADJUST", u.Delta, int64(0), oh, rs, ""); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, pgErr(err)
	}
	return out, nil
}

func (t *pgTarget) Items(ctx context.Context, refs []SeedItem) ([]ItemState, error) {
	stores := map[string]bool{}
	for _, r := range refs {
		stores[r.Store] = true
	}
	list := make([]string, 0, len(stores))
	for s := range stores {
		list = append(list, s)
	}
	rows, err := t.pool.Query(ctx, `SELECT store_id, sku, on_hand, reserved, version FROM inventory_items WHERE store_id = ANY($1)`, list)
	if err != nil {
		return nil, fmt.Errorf("read items: %w", err)
	}
	defer rows.Close()
	got := map[[2]string]ItemState{}
	for rows.Next() {
		var s ItemState
		if err := rows.Scan(&s.Store, &s.SKU, &s.OnHand, &s.Reserved, &s.Version); err != nil {
			return nil, err
		}
		s.Found = true
		got[[2]string{s.Store, s.SKU}] = s
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]ItemState, len(refs))
	for i, r := range refs {
		s, ok := got[[2]string{r.Store, r.SKU}]
		if !ok {
			s = ItemState{Store: r.Store, SKU: r.SKU}
		}
		out[i] = s
	}
	return out, nil
}

func (t *pgTarget) CheckLedger(ctx context.Context, items []ItemState) ([]string, error) {
	return t.ledger.check(ctx, items, 5*time.Second)
}

// ExpireNow expires every due hold (the checker calls it before reading).
func (t *pgTarget) ExpireNow(ctx context.Context) { t.sweepOnce(ctx) }

func (t *pgTarget) Close(ctx context.Context) error {
	t.stop()
	t.wg.Wait()
	return t.ledger.drop(ctx)
}

// HasLedger reports whether there is a ledger to check.
func (t *pgTarget) HasLedger() bool { return true }
