package persist

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shelfline/inventory/engine"
)

// The staging table lives in the connection's temporary schema and is
// emptied at every COMMIT, so one table per connection serves every batch.
const stagingDDL = `CREATE TEMP TABLE IF NOT EXISTS persist_staging (
	store_id text, sku text, version bigint, type text,
	delta_on_hand bigint, delta_reserved bigint, on_hand bigint, reserved bigint,
	reorder_point bigint, max_per_customer bigint, reservation_id text, customer text,
	op_id text, reason text, principal text, occurred_at timestamptz, expires_at timestamptz,
	stream_id text
) ON COMMIT DELETE ROWS`

var stagingColumns = []string{"store_id", "sku", "version", "type",
	"delta_on_hand", "delta_reserved", "on_hand", "reserved",
	"reorder_point", "max_per_customer", "reservation_id", "customer",
	"op_id", "reason", "principal", "occurred_at", "expires_at", "stream_id"}

// insertEventsSQL appends the staged events. A row whose (store, sku,
// version) is already stored is skipped: that is a re-delivery, or a fork
// that forksSQL records. Sorted, so concurrent batches take locks in one order.
const insertEventsSQL = `INSERT INTO inventory_events (` + eventColumns + `)
SELECT ` + eventColumns + ` FROM persist_staging
ORDER BY store_id, sku, version
ON CONFLICT (store_id, sku, version) DO NOTHING`

// appendEventsSQL is insertEventsSQL without the conflict handling: the
// fast path when no staged event is in the ledger yet (the common case). A
// unique violation sends the batch down the ON CONFLICT path instead.
const appendEventsSQL = `INSERT INTO inventory_events (` + eventColumns + `)
SELECT ` + eventColumns + ` FROM persist_staging
ORDER BY store_id, sku, version`

// forksSQL records every staged event that meets a stored row of the same
// version carrying another operation id: two histories of one item (a Redis
// failover lost acknowledged writes and the same versions were issued
// again). Recorded once per stream entry.
const forksSQL = `INSERT INTO drift_findings (kind, store_id, sku, version, stream_id, before, after, action, detail)
SELECT 'fork', s.store_id, s.sku, s.version, s.stream_id,
	jsonb_build_object('op_id', e.op_id, 'type', e.type, 'on_hand', e.on_hand, 'reserved', e.reserved, 'stream_id', e.stream_id),
	jsonb_build_object('op_id', s.op_id, 'type', s.type, 'on_hand', s.on_hand, 'reserved', s.reserved, 'stream_id', s.stream_id),
	'kept the stored event; the incoming one is recorded here only',
	'an event of this version with another operation id is already in the ledger'
FROM persist_staging s
JOIN inventory_events e ON e.store_id = s.store_id AND e.sku = s.sku AND e.version = s.version
WHERE e.op_id <> s.op_id
ON CONFLICT (store_id, sku, version, stream_id) WHERE kind = 'fork' DO NOTHING`

// gapsSQL records, before the items move on, a version range to inspect
// for every item whose staged versions skip some: a hole among them, or a
// first one above the stored version + 1. One aggregate row per item keeps
// it cheap; the range may cover versions that are present (out-of-order
// batches, re-deliveries), and the reconciler inspects it version by
// version, clearing it when nothing is missing.
const gapsSQL = `INSERT INTO ledger_gaps AS l (store_id, sku, from_version, to_version)
SELECT g.store_id, g.sku, least(coalesce(i.version, 0) + 1, g.lo), g.hi - 1
FROM (SELECT store_id, sku, min(version) AS lo, max(version) AS hi, count(*) AS n
	FROM persist_staging GROUP BY store_id, sku) g
LEFT JOIN inventory_items i ON i.store_id = g.store_id AND i.sku = g.sku
WHERE g.hi - g.lo + 1 <> g.n OR g.lo > coalesce(i.version, 0) + 1
ON CONFLICT (store_id, sku, from_version) DO UPDATE SET to_version = greatest(l.to_version, EXCLUDED.to_version)`

// upsertItemsSQL moves each item to its newest staged state, only where
// that is newer than the stored one (batches may land out of order).
const upsertItemsSQL = `INSERT INTO inventory_items AS i
	(store_id, sku, on_hand, reserved, version, reorder_point, max_per_customer, updated_at)
SELECT DISTINCT ON (store_id, sku) store_id, sku, on_hand, reserved, version, reorder_point, max_per_customer, occurred_at
FROM persist_staging
ORDER BY store_id, sku, version DESC
ON CONFLICT (store_id, sku) DO UPDATE SET
	on_hand = EXCLUDED.on_hand, reserved = EXCLUDED.reserved, version = EXCLUDED.version,
	reorder_point = EXCLUDED.reorder_point, max_per_customer = EXCLUDED.max_per_customer,
	updated_at = EXCLUDED.updated_at
WHERE i.version < EXCLUDED.version`

// batchResult is what one written batch did.
type batchResult struct {
	inserted int64 // new ledger rows
	forks    int64 // fork findings recorded
}

// hookFunc is the shape of the persister's failure-injection hooks.
type hookFunc = func(ctx context.Context, partition int, events []engine.Event) error

// writeBatch writes events in one transaction: COPY into staging, insert the
// events, record forks and skipped versions, upsert the items, then beforeCommit (may be nil),
// then COMMIT. Nothing is written when it returns an error.
func writeBatch(ctx context.Context, pool *pgxpool.Pool, p int, events []engine.Event, beforeCommit hookFunc) (batchResult, error) {
	var res batchResult
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, stagingDDL); err != nil {
			return fmt.Errorf("staging table: %w", err)
		}
		rows := make([][]any, len(events))
		for i := range events {
			rows[i] = eventRow(&events[i])
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"persist_staging"}, stagingColumns, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("copy into staging: %w", err)
		}
		inserted, err := insertEvents(ctx, tx)
		if err != nil {
			return err
		}
		res.inserted = inserted
		if res.inserted < int64(len(events)) {
			// Some rows were there already: re-delivered, or forks.
			tag, err := tx.Exec(ctx, forksSQL)
			if err != nil {
				return fmt.Errorf("record forks: %w", err)
			}
			res.forks = tag.RowsAffected()
		}
		if _, err := tx.Exec(ctx, gapsSQL); err != nil {
			return fmt.Errorf("record gaps: %w", err)
		}
		if _, err := tx.Exec(ctx, upsertItemsSQL); err != nil {
			return fmt.Errorf("upsert items: %w", err)
		}
		if beforeCommit != nil {
			if err := beforeCommit(ctx, p, events); err != nil {
				return &hookError{err: err}
			}
		}
		return nil
	})
	if err != nil {
		return batchResult{}, err
	}
	return res, nil
}

// insertEvents appends the staged events to the ledger and returns how many
// rows are new. It tries a plain INSERT under a savepoint first: speculative
// insertion (ON CONFLICT) costs about a third more per row, and conflicts
// only come with re-deliveries and forks.
func insertEvents(ctx context.Context, tx pgx.Tx) (int64, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("insert events: %w", err)
	}
	tag, err := sp.Exec(ctx, appendEventsSQL)
	if err == nil {
		if err := sp.Commit(ctx); err != nil {
			return 0, fmt.Errorf("insert events: %w", err)
		}
		return tag.RowsAffected(), nil
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		return 0, fmt.Errorf("insert events: %w", err)
	}
	if err := sp.Rollback(ctx); err != nil {
		return 0, fmt.Errorf("insert events: %w", err)
	}
	tag, err = tx.Exec(ctx, insertEventsSQL)
	if err != nil {
		return 0, fmt.Errorf("insert events: %w", err)
	}
	return tag.RowsAffected(), nil
}

func eventRow(ev *engine.Event) []any {
	var x any
	if ev.ExpiresAt != nil {
		x = *ev.ExpiresAt
	}
	return []any{ev.Store, ev.SKU, ev.Version, ev.Type,
		ev.DeltaOnHand, ev.DeltaReserved, ev.OnHand, ev.Reserved,
		ev.ReorderPoint, ev.MaxPerCustomer, ev.ReservationID, ev.Customer,
		ev.IdempotencyKey, ev.Reason, ev.Principal, ev.Time, x, ev.StreamID}
}

// hookError marks an error returned by a failure-injection hook.
type hookError struct{ err error }

func (e *hookError) Error() string { return "injected failure: " + e.err.Error() }
func (e *hookError) Unwrap() error { return e.err }
