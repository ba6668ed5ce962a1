package persist

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shelfline/inventory/engine"
)

// MaxHistoryLimit bounds one History call.
const MaxHistoryLimit = 1000

// ErrInvalidLimit is returned by History for a limit outside 1..MaxHistoryLimit.
var ErrInvalidLimit = errors.New("limit must be 1..1000")

// Ledger reads the ledger in PostgreSQL. It is safe for concurrent use.
type Ledger struct {
	pool *pgxpool.Pool
}

// NewLedger returns a Ledger over pool, whose search_path names the schema.
func NewLedger(pool *pgxpool.Pool) *Ledger { return &Ledger{pool: pool} }

// Ping checks that PostgreSQL answers.
func (l *Ledger) Ping(ctx context.Context) error {
	if err := l.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ledger ping: %w", err)
	}
	return nil
}

const eventColumns = `store_id, sku, version, type, delta_on_hand, delta_reserved, on_hand, reserved,
	reorder_point, max_per_customer, reservation_id, customer, op_id, reason, principal,
	occurred_at, expires_at, stream_id,
	committed, damaged, quality_control, display, incoming, safety_stock,
	delta_committed, delta_damaged, delta_quality_control, delta_display, delta_incoming,
	move_from, move_to, move_qty, transfer_id`

const historySQL = `SELECT ` + eventColumns + ` FROM inventory_events
WHERE store_id = $1 AND sku = $2 ORDER BY version DESC LIMIT $3`

// History returns up to limit events of one item, newest first; an empty
// slice (not an error) when the ledger has none. Errors: ErrInvalidLimit, or
// a wrapped PostgreSQL error.
func (l *Ledger) History(ctx context.Context, store, sku string, limit int) ([]engine.Event, error) {
	if limit < 1 || limit > MaxHistoryLimit {
		return nil, ErrInvalidLimit
	}
	rows, err := l.pool.Query(ctx, historySQL, store, sku, limit)
	if err != nil {
		return nil, fmt.Errorf("history of %s/%s: %w", store, sku, err)
	}
	evs, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("history of %s/%s: %w", store, sku, err)
	}
	if evs == nil {
		evs = []engine.Event{}
	}
	return evs, nil
}

// scanEvent reads one row of eventColumns.
func scanEvent(row pgx.CollectableRow) (engine.Event, error) {
	var (
		ev        engine.Event
		expiresAt *time.Time
	)
	err := row.Scan(&ev.Store, &ev.SKU, &ev.Version, &ev.Type, &ev.DeltaOnHand, &ev.DeltaReserved,
		&ev.OnHand, &ev.Reserved, &ev.ReorderPoint, &ev.MaxPerCustomer, &ev.ReservationID,
		&ev.Customer, &ev.IdempotencyKey, &ev.Reason, &ev.Principal, &ev.Time, &expiresAt, &ev.StreamID,
		&ev.Committed, &ev.Damaged, &ev.QualityControl, &ev.Display, &ev.Incoming, &ev.SafetyStock,
		&ev.DeltaCommitted, &ev.DeltaDamaged, &ev.DeltaQualityControl, &ev.DeltaDisplay, &ev.DeltaIncoming,
		&ev.From, &ev.To, &ev.Qty, &ev.TransferID)
	ev.Time = ev.Time.UTC()
	if expiresAt != nil {
		t := expiresAt.UTC()
		ev.ExpiresAt = &t
	}
	return ev, err
}

const lowStockSQL = `SELECT store_id, sku, on_hand, reserved, version, reorder_point, max_per_customer, updated_at,
	committed, damaged, quality_control, display, incoming, safety_stock
FROM inventory_items
WHERE store_id = $1 AND reorder_point IS NOT NULL
	AND on_hand - reserved - committed - damaged - quality_control - display - coalesce(safety_stock, 0) <= reorder_point
ORDER BY sku LIMIT $2`

// LowStock returns up to limit items of a store whose available units
// (engine.Available) are at or below their reorder point, as the ledger
// last persisted them, in SKU order. It reads the partial index
// inventory_items_low. Errors: ErrInvalidLimit, or a wrapped PostgreSQL
// error.
func (l *Ledger) LowStock(ctx context.Context, store string, limit int) ([]engine.Item, error) {
	if limit < 1 || limit > MaxHistoryLimit {
		return nil, ErrInvalidLimit
	}
	rows, err := l.pool.Query(ctx, lowStockSQL, store, limit)
	if err != nil {
		return nil, fmt.Errorf("low stock of %s: %w", store, err)
	}
	items, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (engine.Item, error) {
		var it engine.Item
		err := row.Scan(&it.Store, &it.SKU, &it.OnHand, &it.Reserved, &it.Version, &it.ReorderPoint, &it.MaxPerCustomer, &it.UpdatedAt,
			&it.Committed, &it.Damaged, &it.QualityControl, &it.Display, &it.Incoming, &it.SafetyStock)
		it.Available = engine.Available(it)
		it.UpdatedAt = it.UpdatedAt.UTC()
		return it, err
	})
	if err != nil {
		return nil, fmt.Errorf("low stock of %s: %w", store, err)
	}
	if items == nil {
		items = []engine.Item{}
	}
	return items, nil
}
