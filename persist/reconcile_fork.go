package persist

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/shelfline/inventory/engine"
)

const (
	// KindHeldBack: recorded by the persister (never by a run) for an event
	// it held back because an earlier event of its item forked. The
	// reconciler merges it with the item's forks.
	KindHeldBack = "held_back"
	// KindOversold: merging a fork found that both histories sold or
	// reserved the same units (the merged state breaks 0 <= reserved <=
	// on_hand). Repair clamps to the nearest valid state; a person must act
	// on the difference (Before is the merged state, After the clamped one).
	KindOversold = "oversold"
)

// forkColumns aggregate an item's unresolved fork records: the version
// after which the histories diverged, the held-back operation ids in
// version order, and the state after the last held-back event.
const forkColumns = `store_id, sku, min(version) - 1, array_agg(after->>'op_id' ORDER BY version, id),
	max(version),
	(array_agg((after->>'on_hand')::bigint ORDER BY version DESC, id DESC))[1],
	(array_agg((after->>'reserved')::bigint ORDER BY version DESC, id DESC))[1],
	(array_agg((after->>'reorder_point')::bigint ORDER BY version DESC, id DESC))[1],
	(array_agg((after->>'max_per_customer')::bigint ORDER BY version DESC, id DESC))[1],
	(array_agg(coalesce((after->>'committed')::bigint, 0) ORDER BY version DESC, id DESC))[1],
	(array_agg(coalesce((after->>'damaged')::bigint, 0) ORDER BY version DESC, id DESC))[1],
	(array_agg(coalesce((after->>'quality_control')::bigint, 0) ORDER BY version DESC, id DESC))[1],
	(array_agg(coalesce((after->>'display')::bigint, 0) ORDER BY version DESC, id DESC))[1],
	(array_agg(coalesce((after->>'incoming')::bigint, 0) ORDER BY version DESC, id DESC))[1],
	(array_agg((after->>'safety_stock')::bigint ORDER BY version DESC, id DESC))[1]`

const (
	// openForksSQL lists the items of the given stores with unresolved forks.
	openForksSQL = `SELECT ` + forkColumns + ` FROM drift_findings
WHERE kind IN ('fork', 'held_back') AND run_id IS NULL AND resolved_run_id IS NULL AND store_id = ANY($1)
GROUP BY store_id, sku ORDER BY store_id, sku`
	// itemForksSQL is openForksSQL for one item.
	itemForksSQL = `SELECT ` + forkColumns + ` FROM drift_findings
WHERE kind IN ('fork', 'held_back') AND run_id IS NULL AND resolved_run_id IS NULL AND store_id = $1 AND sku = $2
GROUP BY store_id, sku`
)

func scanFork(row pgx.Row, fi *forkedItem) error {
	return row.Scan(&fi.ref.Store, &fi.ref.SKU, &fi.base, &fi.ops,
		&fi.held.Version, &fi.held.OnHand, &fi.held.Reserved, &fi.held.ReorderPoint, &fi.held.MaxPerCustomer,
		&fi.held.Committed, &fi.held.Damaged, &fi.held.QualityControl, &fi.held.Display, &fi.held.Incoming,
		&fi.held.SafetyStock)
}

const (
	lockItemSQL  = `SELECT version FROM inventory_items WHERE store_id = $1 AND sku = $2 FOR UPDATE`
	lastEventSQL = `SELECT version, on_hand, reserved, reorder_point, max_per_customer, ` + snapStateColumns + `
FROM inventory_events WHERE store_id = $1 AND sku = $2 ORDER BY version DESC LIMIT 1`
	resolveForksSQL = `UPDATE drift_findings SET resolved_run_id = $3
WHERE kind IN ('fork', 'held_back') AND run_id IS NULL AND resolved_run_id IS NULL AND store_id = $1 AND sku = $2`
)

// forkedItem is an item with unresolved forks.
type forkedItem struct {
	ref  engine.ItemRef
	base int64        // the last version both histories share
	ops  []string     // the held-back operation ids
	held ItemSnapshot // the state after the last held-back event
}

// merge is the outcome of merging a forked item's two histories.
type merge struct {
	base, last ItemSnapshot // the ledger's state at the shared version and at its last
	merged     ItemSnapshot // last + (held - base), at last's version + 1
	unclamped  *ItemSnapshot
}

// querier is what computeMerge reads through: the pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// computeMerge reads the ledger's state at the shared version and at its
// last one, and adds to the latter what the other history changed since the
// shared version: the state after its last held-back event minus the
// shared version's state. It clamps a merged state that breaks 0 <= reserved <=
// on_hand (and says so in unclamped).
func computeMerge(ctx context.Context, q querier, fi *forkedItem) (*merge, error) {
	tip := &fi.held
	m := &merge{}
	if err := q.QueryRow(ctx, lastEventSQL, fi.ref.Store, fi.ref.SKU).Scan(m.last.scanDest(&m.last.Version, &m.last.OnHand, &m.last.Reserved,
		&m.last.ReorderPoint, &m.last.MaxPerCustomer)...); err != nil {
		return nil, fmt.Errorf("last ledger event of %s/%s: %w", fi.ref.Store, fi.ref.SKU, err)
	}
	if fi.base > 0 {
		err := q.QueryRow(ctx, eventAtSQL, fi.ref.Store, fi.ref.SKU, fi.base).Scan(m.base.scanDest(&m.base.Version, &m.base.OnHand, &m.base.Reserved,
			&m.base.ReorderPoint, &m.base.MaxPerCustomer)...)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, errNoBase
		}
		if err != nil {
			return nil, fmt.Errorf("ledger event %s/%s v%d: %w", fi.ref.Store, fi.ref.SKU, fi.base, err)
		}
	}
	m.merged = ItemSnapshot{Version: m.last.Version + 1,
		OnHand:   m.last.OnHand + tip.OnHand - m.base.OnHand,
		Reserved: m.last.Reserved + tip.Reserved - m.base.Reserved,
		States: engine.States{
			Committed:      m.last.Committed + tip.Committed - m.base.Committed,
			Damaged:        m.last.Damaged + tip.Damaged - m.base.Damaged,
			QualityControl: m.last.QualityControl + tip.QualityControl - m.base.QualityControl,
			Display:        m.last.Display + tip.Display - m.base.Display,
			Incoming:       m.last.Incoming + tip.Incoming - m.base.Incoming,
		},
		ReorderPoint: tip.ReorderPoint, MaxPerCustomer: tip.MaxPerCustomer, SafetyStock: tip.SafetyStock}
	if !validCounts(&m.merged) {
		u := m.merged
		m.unclamped = &u
		clampCounts(&m.merged)
	}
	return m, nil
}

var (
	errNoBase      = errors.New("the ledger lacks the shared version's event")
	errRedisMoved  = errors.New("the item changed in Redis meanwhile")
	errLedgerMoved = errors.New("the ledger changed meanwhile")
)

// forks settles partition p's items with unresolved forks and returns
// them, so the other phases leave them alone. Check mode reports each one
// (with the merge a repair would make). Repair merges an item's two
// histories when none of its events is waiting in the stream: a RECONCILE
// event at the ledger's next version carries what the other history changed
// since the shared version (from its recorded events, not from Redis'
// state, which may have been rebuilt from the ledger since), inventory_items and Redis move to the merged
// state, and the item's fork findings are marked resolved by this run, all
// in one PostgreSQL transaction committed after Redis was restored (guarded
// by the version Redis had; an item that moved meanwhile is lag, retried by
// the next run).
func (r *Reconciler) forks(ctx context.Context, p int, stores []string, rep *Report) (map[engine.ItemRef]bool, error) {
	if len(stores) == 0 {
		return nil, nil
	}
	rows, err := r.pool.Query(ctx, openForksSQL, stores)
	if err != nil {
		return nil, fmt.Errorf("reconcile partition %d: open forks: %w", p, err)
	}
	items, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (forkedItem, error) {
		var fi forkedItem
		err := scanFork(row, &fi)
		return fi, err
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile partition %d: open forks: %w", p, err)
	}
	if len(items) == 0 {
		return nil, nil
	}
	skip := make(map[engine.ItemRef]bool, len(items))
	refs := make([]engine.ItemRef, len(items))
	for i := range items {
		skip[items[i].ref] = true
		refs[i] = items[i].ref
	}
	// Redis first, then the stream, then (in the merge) the fork records:
	// every event of a version Redis has is then either still in the
	// stream (lag) or recorded.
	red, err := r.e.LoadItems(ctx, refs)
	if err != nil {
		return nil, err
	}
	var inStream map[engine.ItemRef]map[int64]bool
	if rep.Mode == ModeRepair {
		if inStream, err = r.streamVersions(ctx, p, skip); err != nil {
			return nil, err
		}
	}
	for i := range items {
		fi := &items[i]
		rep.ItemsChecked++
		if rep.Mode == ModeRepair && lagsAfter(inStream[fi.ref], fi.base) {
			rep.Lagging++
			continue
		}
		var vR int64
		if red[i] != nil {
			vR = red[i].Version
		}
		f := Finding{Kind: KindFork, Store: fi.ref.Store, SKU: fi.ref.SKU, Before: snapshotOf(red[i]), Action: "none (check mode)"}
		var m *merge
		if rep.Mode == ModeRepair {
			m, err = r.mergeFork(ctx, rep.RunID, fi, vR)
		} else {
			m, err = computeMerge(ctx, r.pool, fi)
		}
		switch {
		case errors.Is(err, errRedisMoved), errors.Is(err, errLedgerMoved):
			rep.Lagging++
			continue
		case errors.Is(err, errNoBase):
			f.Action = "none: the ledger lacks the version both histories share; a person must merge them"
			f.Detail = fmt.Sprintf("histories diverged after version %d; held-back operations %s", fi.base, opList(fi.ops))
			rep.Findings = append(rep.Findings, f)
			continue
		case err != nil:
			a, refused := refusedBy(err, "the merge")
			if !refused {
				return nil, err
			}
			f.Action = a
			f.Detail = fmt.Sprintf("histories diverged after version %d; held-back operations %s", fi.base, opList(fi.ops))
			rep.Findings = append(rep.Findings, f)
			continue
		}
		f.After = &m.merged
		f.Detail = fmt.Sprintf("histories diverged after version %d: the ledger's runs to version %d, the other (Redis') to version %d (operations %s); merged: the ledger's state plus the other's change since version %d",
			fi.base, m.last.Version, fi.held.Version, opList(fi.ops), fi.base)
		if vR != fi.held.Version {
			f.Detail += fmt.Sprintf("; Redis is at version %d, not at the last held-back event's", vR)
		}
		if rep.Mode == ModeRepair {
			f.Action = fmt.Sprintf("merged into the ledger: RECONCILE event at version %d, Redis restored to it", m.merged.Version)
		}
		rep.Findings = append(rep.Findings, f)
		if m.unclamped != nil {
			o := Finding{Kind: KindOversold, Store: fi.ref.Store, SKU: fi.ref.SKU, Before: m.unclamped, After: &m.merged,
				Action: "none (check mode)",
				Detail: fmt.Sprintf("both histories sold or reserved the same units: merged on_hand %d reserved %d (ledger at version %d: %d/%d, the other history's change since version %d: %+d/%+d)",
					m.unclamped.OnHand, m.unclamped.Reserved, m.last.Version, m.last.OnHand, m.last.Reserved, fi.base,
					fi.held.OnHand-m.base.OnHand, fi.held.Reserved-m.base.Reserved)}
			if rep.Mode == ModeRepair {
				o.Action = "clamped to the nearest valid state; a person must act on the units sold twice"
			}
			rep.Findings = append(rep.Findings, o)
		}
	}
	return skip, nil
}

// lagsAfter reports whether some version above base is still in the stream.
func lagsAfter(vs map[int64]bool, base int64) bool {
	for v := range vs {
		if v > base {
			return true
		}
	}
	return false
}

func opList(ops []string) string {
	const most = 20
	if len(ops) > most {
		return strings.Join(ops[:most], ", ") + fmt.Sprintf(" and %d more", len(ops)-most)
	}
	return strings.Join(ops, ", ")
}

// mergeFork merges one forked item (see forks). It returns errRedisMoved
// or errLedgerMoved, having changed nothing, when Redis or the ledger moved
// meanwhile.
func (r *Reconciler) mergeFork(ctx context.Context, runID int64, fi *forkedItem, vR int64) (*merge, error) {
	var m *merge
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		var lv int64
		if err := tx.QueryRow(ctx, lockItemSQL, fi.ref.Store, fi.ref.SKU).Scan(&lv); err != nil {
			return fmt.Errorf("lock %s/%s: %w", fi.ref.Store, fi.ref.SKU, err)
		}
		// The records again, now that Redis and the stream were read (see
		// forks); the persister may have recorded more since the listing.
		if err := scanFork(tx.QueryRow(ctx, itemForksSQL, fi.ref.Store, fi.ref.SKU), fi); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return errLedgerMoved
			}
			return fmt.Errorf("fork records of %s/%s: %w", fi.ref.Store, fi.ref.SKU, err)
		}
		var err error
		if m, err = computeMerge(ctx, tx, fi); err != nil {
			return err
		}
		tip := &fi.held
		if m.last.Version != lv {
			return errLedgerMoved
		}
		reason := fmt.Sprintf("reconciliation run %d: merges the history Redis kept after a failover (operations %s) into the ledger's, diverged after version %d",
			runID, opList(fi.ops), fi.base)
		if m.unclamped != nil {
			reason += fmt.Sprintf("; oversold: merged on_hand %d reserved %d clamped", m.unclamped.OnHand, m.unclamped.Reserved)
		}
		ev := engine.Event{Store: fi.ref.Store, SKU: fi.ref.SKU, Version: m.merged.Version, Type: engine.EventReconcile,
			DeltaOnHand: m.merged.OnHand - m.last.OnHand, DeltaReserved: m.merged.Reserved - m.last.Reserved,
			OnHand: m.merged.OnHand, Reserved: m.merged.Reserved,
			StateDeltas: stateDeltas(m.last.States, m.merged.States), States: m.merged.States,
			ReorderPoint: m.merged.ReorderPoint, MaxPerCustomer: m.merged.MaxPerCustomer, SafetyStock: m.merged.SafetyStock,
			IdempotencyKey: "reconcile-fork:" + strconv.FormatInt(runID, 10), Principal: "reconciler",
			Time: r.cfg.Clock().UTC(), Reason: reason}
		inserted, err := insertRows(ctx, tx, [][]any{eventRow(&ev)})
		if err != nil {
			return err
		}
		if inserted != 1 {
			return errLedgerMoved
		}
		if _, err := tx.Exec(ctx, upsertItemsSQL); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, resolveForksSQL, fi.ref.Store, fi.ref.SKU, runID); err != nil {
			return err
		}
		s := engine.ItemState{Store: fi.ref.Store, SKU: fi.ref.SKU, OnHand: m.merged.OnHand, Reserved: m.merged.Reserved,
			States: m.merged.States, SafetyStock: m.merged.SafetyStock,
			Version: m.merged.Version, ReorderPoint: -1, MaxPerCustomer: -1, UpdatedAt: ev.Time, KeepCustomerUnits: true}
		if tip.ReorderPoint != nil {
			s.ReorderPoint = *tip.ReorderPoint
		}
		if tip.MaxPerCustomer != nil {
			s.MaxPerCustomer = *tip.MaxPerCustomer
		}
		if r.beforeForkRestore != nil {
			r.beforeForkRestore(fi.ref)
		}
		err = r.e.RestoreItem(ctx, s, vR)
		var vm *engine.VersionMismatchError
		if errors.As(err, &vm) {
			return errRedisMoved
		}
		return err
	})
	if err != nil {
		if errors.Is(err, errRedisMoved) || errors.Is(err, errLedgerMoved) || errors.Is(err, errNoBase) {
			return nil, err
		}
		return nil, fmt.Errorf("merge fork of %s/%s: %w", fi.ref.Store, fi.ref.SKU, err)
	}
	return m, nil
}

// validCounts reports whether s keeps the invariant of docs/design.md §10:
// every count >= 0 and reserved + committed + damaged + quality_control +
// display <= on_hand.
func validCounts(s *ItemSnapshot) bool {
	return s.OnHand >= 0 && s.Reserved >= 0 && s.Committed >= 0 && s.Damaged >= 0 && s.QualityControl >= 0 &&
		s.Display >= 0 && s.Incoming >= 0 && s.Reserved+s.Held() <= s.OnHand
}

// clampCounts brings s to the nearest state validCounts accepts: negative
// counts to 0, then reserved, committed, damaged, quality_control and
// display, in that order, each to what on_hand has left for it.
func clampCounts(s *ItemSnapshot) {
	s.OnHand = max(s.OnHand, 0)
	s.Incoming = max(s.Incoming, 0)
	left := s.OnHand
	for _, c := range []*int64{&s.Reserved, &s.Committed, &s.Damaged, &s.QualityControl, &s.Display} {
		*c = min(max(*c, 0), left)
		left -= *c
	}
}
