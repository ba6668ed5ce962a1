package persist

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/shelfline/inventory/engine"
)

// Redis ahead of the ledger: lag while the events are still in the stream,
// else RECONCILE events that bring the ledger to Redis' state.

// streamScanChunk is how many entries one XRANGE of the lag check reads.
const streamScanChunk = 5000

// ahead decides, for the items Redis has at a higher version than the
// ledger, whether that is persister lag (some of the missing versions are
// still in the stream) or lost events, and in repair mode brings the ledger
// to Redis' state for the latter.
func (r *Reconciler) ahead(ctx context.Context, p int, rep *Report, cands []candidate) error {
	// Fresh reads, ledger first: the persister may have caught up.
	refs := make([]engine.ItemRef, len(cands))
	ss, ks := make([]string, len(cands)), make([]string, len(cands))
	for i, c := range cands {
		refs[i] = c.ref
		ss[i], ks[i] = c.ref.Store, c.ref.SKU
	}
	led, err := r.ledgerStates(ctx, ss, ks)
	if err != nil {
		return fmt.Errorf("reconcile partition %d: %w", p, err)
	}
	red, err := r.e.LoadItems(ctx, refs)
	if err != nil {
		return err
	}
	// The versions of these items still in the stream, read after Redis:
	// an event of a version Redis had when read is there unless it was
	// persisted (then the ledger read below shows it) or lost.
	want := map[engine.ItemRef]bool{}
	for _, ref := range refs {
		want[ref] = true
	}
	inStream, err := r.streamVersions(ctx, p, want)
	if err != nil {
		return err
	}
	now, err := r.ledgerStates(ctx, ss, ks)
	if err != nil {
		return fmt.Errorf("reconcile partition %d: %w", p, err)
	}
	dead := r.deadLetteredOnce(ctx, p, want)
	for i, ref := range refs {
		it := red[i]
		l := led[ref]
		var lv int64
		if l != nil {
			lv = l.Version
		}
		if it == nil || it.Version <= lv {
			if it != nil {
				rep.Lagging++ // caught up meanwhile
			}
			continue
		}
		lag := false
		for v := lv + 1; v <= it.Version; v++ {
			if inStream[ref][v] {
				lag = true
				break
			}
		}
		if n := now[ref]; lag || (n != nil && n.Version > lv) {
			rep.Lagging++ // still in the stream, or persisted meanwhile
			continue
		}
		f := Finding{Kind: KindRedisAhead, Store: ref.Store, SKU: ref.SKU, Before: l, After: snapshotOf(it),
			Action: "none (check mode)",
			Detail: fmt.Sprintf("events of versions %d..%d are neither in the ledger nor in the stream", lv+1, it.Version)}
		if dl, err := dead(); err != nil {
			return err
		} else if note := deadNote(dl[ref], lv+1, it.Version); note != "" {
			f.Detail += "; " + note
		}
		if rep.Mode == ModeRepair {
			ok, err := r.reconcileLedger(ctx, rep.RunID, ref, l, it)
			if a, refused := refusedBy(err, "the RECONCILE events"); refused {
				f.Action = a
				rep.Findings = append(rep.Findings, f)
				continue
			}
			if err != nil {
				return err
			}
			if ok {
				f.Action = fmt.Sprintf("wrote %d RECONCILE events to the ledger", it.Version-lv)
			} else {
				f.Action = "none: the ledger changed meanwhile; the next run decides"
			}
		}
		rep.Findings = append(rep.Findings, f)
	}
	return nil
}

// reconcileLedger brings the ledger from state l (nil: no history) to Redis'
// state it with RECONCILE events, one per missing version so versions stay
// 1..N without a gap: versions l+1..N-1 carry no change (their real events
// are lost; we do not invent them) and version N carries the whole
// difference, so the sums of deltas still equal the state. It reports false,
// writing nothing, when some of those versions reached the ledger meanwhile.
func (r *Reconciler) reconcileLedger(ctx context.Context, runID int64, ref engine.ItemRef, l *ItemSnapshot, it *engine.Item) (bool, error) {
	base := ItemSnapshot{}
	if l != nil {
		base = *l
	}
	now := r.cfg.Clock().UTC()
	op := "reconcile:" + strconv.FormatInt(runID, 10)
	n := it.Version - base.Version
	rows := make([][]any, 0, n)
	var last engine.Event
	for v := base.Version + 1; v <= it.Version; v++ {
		ev := engine.Event{Store: ref.Store, SKU: ref.SKU, Version: v, Type: engine.EventReconcile,
			OnHand: base.OnHand, Reserved: base.Reserved, States: base.States,
			ReorderPoint: base.ReorderPoint, MaxPerCustomer: base.MaxPerCustomer, SafetyStock: base.SafetyStock,
			IdempotencyKey: op, Principal: "reconciler", Time: now,
			Reason: fmt.Sprintf("reconciliation run %d: event lost before it was persisted", runID)}
		if v == it.Version {
			ev.DeltaOnHand, ev.DeltaReserved = it.OnHand-base.OnHand, it.Reserved-base.Reserved
			ev.OnHand, ev.Reserved = it.OnHand, it.Reserved
			ev.StateDeltas = stateDeltas(base.States, it.States)
			ev.States = it.States
			ev.ReorderPoint, ev.MaxPerCustomer, ev.SafetyStock = it.ReorderPoint, it.MaxPerCustomer, it.SafetyStock
			ev.Reason = fmt.Sprintf("reconciliation run %d: brings the ledger to Redis' state", runID)
			last = ev
		}
		rows = append(rows, eventRow(&ev))
	}
	ok := false
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		inserted, err := insertRows(ctx, tx, rows)
		if err != nil {
			return err
		}
		if inserted != n {
			return errRace
		}
		if _, err := tx.Exec(ctx, upsertItemsSQL); err != nil {
			return err
		}
		ok = true
		return nil
	})
	if errors.Is(err, errRace) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reconcile ledger of %s/%s: %w", ref.Store, ref.SKU, err)
	}
	if ok {
		r.repaired(ctx, last)
	}
	return ok, nil
}

var errRace = errors.New("ledger changed meanwhile")

// streamVersions returns, for the wanted items, the versions whose events
// are in p's stream at or above the persisted floor (everything below it is
// in the ledger).
func (r *Reconciler) streamVersions(ctx context.Context, p int, want map[engine.ItemRef]bool) (map[engine.ItemRef]map[int64]bool, error) {
	out := map[engine.ItemRef]map[int64]bool{}
	gs, _, err := r.e.GroupState(ctx, p, r.cfg.Group)
	if err != nil {
		return nil, fmt.Errorf("reconcile partition %d: %w", p, err)
	}
	// From the persisted floor on; from the start when the group is gone
	// (the zero floor).
	err = r.e.ScanStream(ctx, p, gs.Floor, streamScanChunk, func(msgs []engine.StreamEntry) error {
		for _, m := range msgs {
			ev, err := engine.ParseEvent(m.ID, m.Values)
			if err != nil {
				continue // a poison entry: the persister dead-letters it
			}
			ref := engine.ItemRef{Store: ev.Store, SKU: ev.SKU}
			if !want[ref] {
				continue
			}
			v := ev.Version
			if out[ref] == nil {
				out[ref] = map[int64]bool{}
			}
			out[ref][v] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile partition %d: %w", p, err)
	}
	return out, nil
}

// deadLetters returns, for the wanted items, the versions of their events
// in partition p's dead-letter stream, with why each was dead-lettered.
// Entries that do not parse as events are passed over.
func (r *Reconciler) deadLetters(ctx context.Context, p int, want map[engine.ItemRef]bool) (map[engine.ItemRef]map[int64]string, error) {
	out := map[engine.ItemRef]map[int64]string{}
	err := r.e.ScanDeadLetters(ctx, p, streamScanChunk, func(dls []engine.DeadLetter) error {
		for _, d := range dls {
			ev, err := engine.ParseEvent(d.EntryID, d.Values)
			if err != nil {
				continue
			}
			ref := engine.ItemRef{Store: ev.Store, SKU: ev.SKU}
			if !want[ref] {
				continue
			}
			if out[ref] == nil {
				out[ref] = map[int64]string{}
			}
			out[ref][ev.Version] = d.Error
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile partition %d: dead letters: %w", p, err)
	}
	return out, nil
}

// deadLetteredOnce returns a function that reads deadLetters on its first
// call and returns the same on later ones.
func (r *Reconciler) deadLetteredOnce(ctx context.Context, p int, want map[engine.ItemRef]bool) func() (map[engine.ItemRef]map[int64]string, error) {
	var (
		done bool
		dl   map[engine.ItemRef]map[int64]string
		err  error
	)
	return func() (map[engine.ItemRef]map[int64]string, error) {
		if !done {
			dl, err = r.deadLetters(ctx, p, want)
			done = true
		}
		return dl, err
	}
}

// deadNote says which of the versions lo..hi the persister dead-lettered,
// and why; "" when none.
func deadNote(vs map[int64]string, lo, hi int64) string {
	var in []int64
	for v := range vs {
		if v >= lo && v <= hi {
			in = append(in, v)
		}
	}
	if len(in) == 0 {
		return ""
	}
	sort.Slice(in, func(i, j int) bool { return in[i] < in[j] })
	const most = 5
	parts := make([]string, 0, min(len(in), most))
	for _, v := range in[:min(len(in), most)] {
		parts = append(parts, fmt.Sprintf("version %d: %s", v, vs[v]))
	}
	note := "dead-lettered by the persister: " + strings.Join(parts, "; ")
	if len(in) > most {
		note += fmt.Sprintf("; and %d more", len(in)-most)
	}
	return note
}

// stateDeltas returns the deltas that take the states from a to b.
func stateDeltas(a, b engine.States) engine.StateDeltas {
	return engine.StateDeltas{DeltaCommitted: b.Committed - a.Committed, DeltaDamaged: b.Damaged - a.Damaged,
		DeltaQualityControl: b.QualityControl - a.QualityControl, DeltaDisplay: b.Display - a.Display,
		DeltaIncoming: b.Incoming - a.Incoming}
}
