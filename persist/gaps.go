package persist

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/shelfline/inventory/engine"
)

// KindLedgerGap: versions of an item are missing from the ledger while
// higher ones are there, and their events are not in the stream either
// (lost before they were persisted while later ones made it, or
// dead-lettered by the persister because PostgreSQL refused them; the
// detail says which). Repair writes RECONCILE events for the missing
// versions so the history chains again.
const KindLedgerGap = "ledger_gap"

const (
	openGapsSQL = `SELECT store_id, sku, from_version, to_version FROM ledger_gaps
WHERE store_id = ANY($1) ORDER BY store_id, sku, from_version`
	presentVersionsSQL = `SELECT version FROM inventory_events
WHERE store_id = $1 AND sku = $2 AND version BETWEEN $3 AND $4`
	deleteGapSQL  = `DELETE FROM ledger_gaps WHERE store_id = $1 AND sku = $2 AND from_version = $3`
	eventStateSQL = `SELECT delta_on_hand, delta_reserved, on_hand, reserved, reorder_point, max_per_customer,
	committed, damaged, quality_control, display, incoming, safety_stock,
	delta_committed, delta_damaged, delta_quality_control, delta_display, delta_incoming
FROM inventory_events WHERE store_id = $1 AND sku = $2 AND version = $3`
)

type gap struct {
	ref      engine.ItemRef
	from, to int64
	missing  []int64
}

// missingVersions returns the versions of from..to the ledger lacks.
func (r *Reconciler) missingVersions(ctx context.Context, g *gap) ([]int64, error) {
	rows, err := r.pool.Query(ctx, presentVersionsSQL, g.ref.Store, g.ref.SKU, g.from, g.to)
	if err != nil {
		return nil, err
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	present := make(map[int64]bool, len(have))
	for _, v := range have {
		present[v] = true
	}
	var out []int64
	for v := g.from; v <= g.to; v++ {
		if !present[v] {
			out = append(out, v)
		}
	}
	return out, nil
}

// gaps settles the version ranges the persister saw skipped in partition
// p's stores: closed ones are cleared, ones whose events are still in the
// stream are lag, the rest are findings (repaired in repair mode).
func (r *Reconciler) gaps(ctx context.Context, p int, stores []string, rep *Report) error {
	if len(stores) == 0 {
		return nil
	}
	rows, err := r.pool.Query(ctx, openGapsSQL, stores)
	if err != nil {
		return fmt.Errorf("reconcile partition %d: gaps: %w", p, err)
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (gap, error) {
		var g gap
		err := row.Scan(&g.ref.Store, &g.ref.SKU, &g.from, &g.to)
		return g, err
	})
	if err != nil {
		return fmt.Errorf("reconcile partition %d: gaps: %w", p, err)
	}
	var open []gap
	want := map[engine.ItemRef]bool{}
	for _, g := range all {
		miss, err := r.missingVersions(ctx, &g)
		if err != nil {
			return fmt.Errorf("reconcile partition %d: gaps: %w", p, err)
		}
		if len(miss) == 0 {
			if _, err := r.pool.Exec(ctx, deleteGapSQL, g.ref.Store, g.ref.SKU, g.from); err != nil {
				return fmt.Errorf("reconcile partition %d: clear gap: %w", p, err)
			}
			continue
		}
		open = append(open, g)
		want[g.ref] = true
	}
	if len(open) == 0 {
		return nil
	}
	inStream, err := r.streamVersions(ctx, p, want)
	if err != nil {
		return err
	}
	dead := r.deadLetteredOnce(ctx, p, want)
	for i := range open {
		g := &open[i]
		// Read the ledger again after the stream: a version persisted
		// meanwhile left the stream's unpersisted part but is here now.
		g.missing, err = r.missingVersions(ctx, g)
		if err != nil {
			return fmt.Errorf("reconcile partition %d: gaps: %w", p, err)
		}
		if len(g.missing) == 0 {
			if _, err := r.pool.Exec(ctx, deleteGapSQL, g.ref.Store, g.ref.SKU, g.from); err != nil {
				return fmt.Errorf("reconcile partition %d: clear gap: %w", p, err)
			}
			continue
		}
		lag := false
		for _, v := range g.missing {
			lag = lag || inStream[g.ref][v]
		}
		if lag {
			rep.Lagging++
			continue
		}
		dl, err := dead()
		if err != nil {
			return err
		}
		if err := r.fillGap(ctx, rep, g, dl[g.ref]); err != nil {
			return err
		}
	}
	return nil
}

// fillGap records the finding for g and, in repair mode, writes one
// RECONCILE event per missing version. For each run a..b of missing
// versions, a..b-1 carry no change and b carries the difference between the
// state after a-1 and the state before b+1 (its after-state minus its
// deltas), so the sums of deltas chain again; their real events are lost
// (or dead-lettered: dead maps those versions to why) and we do not invent
// them.
func (r *Reconciler) fillGap(ctx context.Context, rep *Report, g *gap, dead map[int64]string) error {
	f := Finding{Kind: KindLedgerGap, Store: g.ref.Store, SKU: g.ref.SKU, Action: "none (check mode)",
		Detail: fmt.Sprintf("%d versions of %d..%d are neither in the ledger nor in the stream", len(g.missing), g.from, g.to)}
	missing := make(map[int64]string, len(dead))
	for _, v := range g.missing {
		if why, ok := dead[v]; ok {
			missing[v] = why
		}
	}
	if note := deadNote(missing, g.from, g.to); note != "" {
		f.Detail += "; " + note
	}
	type state struct {
		dh, dr, oh, rs int64
		rp, mpc, ss    *int64
		st             engine.States
		sd             engine.StateDeltas
	}
	get := func(v int64) (*state, error) {
		if v == 0 {
			return &state{}, nil
		}
		var s state
		err := r.pool.QueryRow(ctx, eventStateSQL, g.ref.Store, g.ref.SKU, v).Scan(&s.dh, &s.dr, &s.oh, &s.rs, &s.rp, &s.mpc,
			&s.st.Committed, &s.st.Damaged, &s.st.QualityControl, &s.st.Display, &s.st.Incoming, &s.ss,
			&s.sd.DeltaCommitted, &s.sd.DeltaDamaged, &s.sd.DeltaQualityControl, &s.sd.DeltaDisplay, &s.sd.DeltaIncoming)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil
		}
		return &s, err
	}
	now := r.cfg.Clock().UTC()
	var rows [][]any
	for i := 0; i < len(g.missing); {
		a := g.missing[i]
		b := a
		for i++; i < len(g.missing) && g.missing[i] == b+1; i++ {
			b++
		}
		prev, err := get(a - 1)
		if err != nil {
			return fmt.Errorf("gap of %s/%s: %w", g.ref.Store, g.ref.SKU, err)
		}
		next, err := get(b + 1)
		if err != nil {
			return fmt.Errorf("gap of %s/%s: %w", g.ref.Store, g.ref.SKU, err)
		}
		if prev == nil || next == nil {
			f.Action = "none: the events around the gap are not in the ledger"
			rep.Findings = append(rep.Findings, f)
			return nil
		}
		beforeNext := ItemSnapshot{Version: b, OnHand: next.oh - next.dh, Reserved: next.rs - next.dr,
			States: statesBefore(next.st, next.sd), ReorderPoint: prev.rp, MaxPerCustomer: prev.mpc, SafetyStock: prev.ss}
		if f.Before == nil {
			f.Before = &ItemSnapshot{Version: a - 1, OnHand: prev.oh, Reserved: prev.rs, States: prev.st,
				ReorderPoint: prev.rp, MaxPerCustomer: prev.mpc, SafetyStock: prev.ss}
		}
		f.After = &beforeNext
		for v := a; v <= b; v++ {
			ev := engine.Event{Store: g.ref.Store, SKU: g.ref.SKU, Version: v, Type: engine.EventReconcile,
				OnHand: prev.oh, Reserved: prev.rs, States: prev.st,
				ReorderPoint: prev.rp, MaxPerCustomer: prev.mpc, SafetyStock: prev.ss,
				IdempotencyKey: fmt.Sprintf("reconcile:%d", rep.RunID), Principal: "reconciler", Time: now,
				Reason: fmt.Sprintf("reconciliation run %d: event lost before it was persisted", rep.RunID)}
			if _, ok := missing[v]; ok {
				ev.Reason = fmt.Sprintf("reconciliation run %d: event dead-lettered, PostgreSQL refused it", rep.RunID)
			}
			if v == b {
				ev.DeltaOnHand, ev.DeltaReserved = beforeNext.OnHand-prev.oh, beforeNext.Reserved-prev.rs
				ev.OnHand, ev.Reserved = beforeNext.OnHand, beforeNext.Reserved
				ev.StateDeltas = stateDeltas(prev.st, beforeNext.States)
				ev.States = beforeNext.States
				ev.Reason = fmt.Sprintf("reconciliation run %d: chains the ledger to version %d", rep.RunID, b+1)
				if _, ok := missing[v]; ok {
					ev.Reason += " (this version's event was dead-lettered: PostgreSQL refused it)"
				}
			}
			rows = append(rows, eventRow(&ev))
		}
	}
	if rep.Mode == ModeRepair {
		err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
			n, err := insertRows(ctx, tx, rows)
			if err != nil {
				return err
			}
			if n != int64(len(rows)) {
				return errRace
			}
			_, err = tx.Exec(ctx, deleteGapSQL, g.ref.Store, g.ref.SKU, g.from)
			return err
		})
		a, refused := refusedBy(err, "the RECONCILE events")
		switch {
		case err == nil:
			f.Action = fmt.Sprintf("wrote %d RECONCILE events to the ledger", len(rows))
		case errors.Is(err, errRace):
			f.Action = "none: the ledger changed meanwhile; the next run decides"
		case refused:
			f.Action = a
		default:
			return fmt.Errorf("fill gap of %s/%s: %w", g.ref.Store, g.ref.SKU, err)
		}
	}
	rep.Findings = append(rep.Findings, f)
	return nil
}

// statesBefore returns the states an event with states st and deltas d
// started from.
func statesBefore(st engine.States, d engine.StateDeltas) engine.States {
	return engine.States{Committed: st.Committed - d.DeltaCommitted, Damaged: st.Damaged - d.DeltaDamaged,
		QualityControl: st.QualityControl - d.DeltaQualityControl, Display: st.Display - d.DeltaDisplay,
		Incoming: st.Incoming - d.DeltaIncoming}
}
