package persist

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shelfline/inventory/engine"
)

// Repairs of an item: the ledger's state back into Redis and inventory_items.

const fixItemsRowSQL = `UPDATE inventory_items SET on_hand = $4, reserved = $5, reorder_point = $6, max_per_customer = $7,
	committed = $8, damaged = $9, quality_control = $10, display = $11, incoming = $12, safety_stock = $13
WHERE store_id = $1 AND sku = $2 AND version = $3`

func (r *Reconciler) fixItemsRow(ctx context.Context, ref engine.ItemRef, s *ItemSnapshot) error {
	if _, err := r.pool.Exec(ctx, fixItemsRowSQL, ref.Store, ref.SKU, s.Version, s.OnHand, s.Reserved, s.ReorderPoint, s.MaxPerCustomer,
		s.Committed, s.Damaged, s.QualityControl, s.Display, s.Incoming, s.SafetyStock); err != nil {
		return fmt.Errorf("fix inventory_items %s/%s: %w", ref.Store, ref.SKU, err)
	}
	return nil
}

// itemCustomerUnitsSQL is customerUnitsSQL for one item.
const itemCustomerUnitsSQL = `SELECT e.customer,
	sum(CASE e.type WHEN 'SALE' THEN e.delta_committed - e.delta_on_hand ELSE e.delta_reserved END)::bigint
FROM inventory_events e
WHERE e.store_id = $1 AND e.sku = $2 AND e.customer <> '' AND (
	(e.type IN ('SALE', 'RESERVE') AND e.max_per_customer IS NOT NULL)
	OR (e.type IN ('RELEASE', 'EXPIRE') AND e.reservation_id <> '' AND EXISTS (
		SELECT 1 FROM inventory_events r
		WHERE r.store_id = e.store_id AND r.reservation_id = e.reservation_id AND r.sku = e.sku
			AND r.type = 'RESERVE' AND r.max_per_customer IS NOT NULL)))
GROUP BY e.customer`

// restoreRedis records f and, in repair mode, overwrites the Redis item with
// f.After (the ledger's state, with its customer units), guarded by the
// version Redis had (expect; 0 for absent).
func (r *Reconciler) restoreRedis(ctx context.Context, rep *Report, f Finding, expect int64) error {
	f.Action = "none (check mode)"
	if rep.Mode == ModeRepair {
		s := engine.ItemState{Store: f.Store, SKU: f.SKU, OnHand: f.After.OnHand, Reserved: f.After.Reserved,
			States: f.After.States, SafetyStock: f.After.SafetyStock,
			Version: f.After.Version, ReorderPoint: -1, MaxPerCustomer: -1, UpdatedAt: r.cfg.Clock()}
		if f.After.ReorderPoint != nil {
			s.ReorderPoint = *f.After.ReorderPoint
		}
		if f.After.MaxPerCustomer != nil {
			s.MaxPerCustomer = *f.After.MaxPerCustomer
		}
		// customer units are kept when a limit is cleared, so they are restored either way
		rows, err := r.pool.Query(ctx, itemCustomerUnitsSQL, f.Store, f.SKU)
		if err != nil {
			return fmt.Errorf("customer units of %s/%s: %w", f.Store, f.SKU, err)
		}
		var (
			c string
			n int64
		)
		s.CustomerUnits = map[string]int64{}
		if _, err := pgx.ForEachRow(rows, []any{&c, &n}, func() error {
			if n > 0 {
				s.CustomerUnits[c] = n
			}
			return nil
		}); err != nil {
			return fmt.Errorf("customer units of %s/%s: %w", f.Store, f.SKU, err)
		}
		err = r.e.RestoreItem(ctx, s, expect)
		var vm *engine.VersionMismatchError
		switch {
		case err == nil:
			f.Action = "restored Redis from the ledger"
			n, err := r.restoreHolds(ctx, engine.ItemRef{Store: f.Store, SKU: f.SKU})
			if err != nil {
				return err
			}
			if n > 0 {
				f.Action += fmt.Sprintf(", with %d open reservations", n)
			}
			if f.Before != nil {
				r.repaired(ctx, restoreEvent(rep.RunID, f, r.cfg.Clock()))
			}
		case errors.As(err, &vm):
			f.Action = fmt.Sprintf("none: the item changed meanwhile (now version %d); the next run decides", vm.Current)
		default:
			return err
		}
	}
	rep.Findings = append(rep.Findings, f)
	return nil
}

// itemOpenHoldsSQL lists the lines of every open reservation (as
// openHoldsSQL finds them) with a line on one item.
const itemOpenHoldsSQL = `SELECT e.reservation_id, e.store_id, e.customer, e.sku, e.delta_reserved, e.expires_at,
	CASE WHEN e.max_per_customer IS NOT NULL AND e.customer <> '' THEN e.delta_reserved ELSE 0 END
FROM inventory_events e
WHERE e.store_id = $1 AND e.type = 'RESERVE' AND e.reservation_id IN (
		SELECT reservation_id FROM inventory_events
		WHERE store_id = $1 AND sku = $2 AND type = 'RESERVE' AND reservation_id <> '')
	AND NOT EXISTS (SELECT 1 FROM inventory_events f
		WHERE f.store_id = e.store_id AND f.reservation_id = e.reservation_id
			AND f.reservation_id <> '' AND f.type <> 'RESERVE')
ORDER BY e.reservation_id, e.stream_id`

// restoreHolds puts back in Redis every open reservation of the ledger with
// a line on ref that Redis lacks (lost with the writes restoreRedis just
// restored), so its units can be committed, released or expire. It returns
// how many it put back.
func (r *Reconciler) restoreHolds(ctx context.Context, ref engine.ItemRef) (int, error) {
	rows, err := r.pool.Query(ctx, itemOpenHoldsSQL, ref.Store, ref.SKU)
	if err != nil {
		return 0, fmt.Errorf("open reservations of %s/%s: %w", ref.Store, ref.SKU, err)
	}
	holds, err := collectHolds(rows)
	if err != nil {
		return 0, fmt.Errorf("open reservations of %s/%s: %w", ref.Store, ref.SKU, err)
	}
	n := 0
	for _, h := range holds {
		_, err := r.e.GetReservation(ctx, h.ID)
		if err == nil {
			continue
		}
		if !errors.Is(err, engine.ErrNotFound) {
			return n, err
		}
		if err := r.e.RestoreReservation(ctx, h); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// restoreEvent is the change a restore of Redis from the ledger made, as
// Repaired hears of it: a RECONCILE event of the ledger's version from
// Redis' state before (f.Before) to the ledger's (f.After). It is not
// written anywhere: the ledger already holds that version's event.
func restoreEvent(runID int64, f Finding, now time.Time) engine.Event {
	b, a := f.Before, f.After
	ev := engine.Event{Store: f.Store, SKU: f.SKU, Version: a.Version, Type: engine.EventReconcile,
		DeltaOnHand: a.OnHand - b.OnHand, DeltaReserved: a.Reserved - b.Reserved, StateDeltas: stateDeltas(b.States, a.States),
		OnHand: a.OnHand, Reserved: a.Reserved, States: a.States,
		ReorderPoint: a.ReorderPoint, MaxPerCustomer: a.MaxPerCustomer, SafetyStock: a.SafetyStock,
		IdempotencyKey: "reconcile:" + strconv.FormatInt(runID, 10), Principal: "reconciler", Time: now.UTC(),
		Reason: fmt.Sprintf("reconciliation run %d: Redis restored from the ledger", runID)}
	return ev
}
