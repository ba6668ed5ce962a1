package persist

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/shelfline/inventory/engine"
)

// Comparing a partition's items in Redis with the ledger (docs/design.md §8).

// ledgerItem is an item as inventory_items holds it.
type ledgerItem struct {
	ref  engine.ItemRef
	snap ItemSnapshot
}

const pageItemsSQL = `SELECT store_id, sku, on_hand, reserved, version, reorder_point, max_per_customer, ` + snapStateColumns + `
FROM inventory_items
WHERE store_id = $1 AND sku > $2
ORDER BY sku LIMIT $3`

const absentItemsSQL = `SELECT r.store_id, r.sku FROM unnest($1::text[], $2::text[]) AS r(store_id, sku)
WHERE NOT EXISTS (SELECT 1 FROM inventory_items i WHERE i.store_id = r.store_id AND i.sku = r.sku)`

// candidate is an item Redis has at a higher version than the ledger.
type candidate struct {
	ref engine.ItemRef
}

// partition reconciles one partition: first the items with forks, then
// the gaps the persister saw, then every other ledger item (read from
// PostgreSQL before Redis, so a concurrent persist never looks like Redis
// being behind), then the Redis items the ledger lacks, then the items
// Redis has ahead of the ledger.
func (r *Reconciler) partition(ctx context.Context, p int, stores []string, rep *Report) error {
	ready, err := r.e.PartitionReady(ctx, p)
	if err != nil {
		return err
	}
	if !ready {
		part := p
		f := Finding{Kind: KindPartitionNotReady, Store: "", SKU: "", Partition: &part, Action: "none (check mode)",
			Detail: "partition " + strconv.Itoa(p) + " has no readiness marker"}
		if rep.Mode == ModeRepair {
			err := r.rb.RebuildPartition(ctx, p)
			switch {
			case err == nil:
				f.Action = "rebuilt the partition from the ledger"
			case errors.Is(err, ErrRebuildInProgress):
				f.Action = "none: a rebuild is in progress elsewhere"
			default:
				return err
			}
		}
		rep.Findings = append(rep.Findings, f)
		return nil
	}
	forked, err := r.forks(ctx, p, stores, rep)
	if err != nil {
		return err
	}
	if err := r.gaps(ctx, p, stores, rep); err != nil {
		return err
	}
	var cands []candidate
	// seen holds the ledger's items compared above, so that only the Redis
	// items outside it need asking the ledger about below.
	seen := map[engine.ItemRef]struct{}{}
	// One store at a time: a page is then one ordered index range of one
	// table partition, read up to its limit (a row comparison across
	// several stores made PostgreSQL read and sort the rest of the
	// partition for every page).
	after := engine.ItemRef{}
	for si := 0; si < len(stores); {
		rows, err := r.pool.Query(ctx, pageItemsSQL, stores[si], after.SKU, r.cfg.BatchSize)
		if err != nil {
			return fmt.Errorf("reconcile partition %d: %w", p, err)
		}
		page, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ledgerItem, error) {
			var li ledgerItem
			err := row.Scan(li.snap.scanDest(&li.ref.Store, &li.ref.SKU, &li.snap.OnHand, &li.snap.Reserved, &li.snap.Version, &li.snap.ReorderPoint, &li.snap.MaxPerCustomer)...)
			return li, err
		})
		if err != nil {
			return fmt.Errorf("reconcile partition %d: %w", p, err)
		}
		if len(page) == 0 {
			si, after = si+1, engine.ItemRef{}
			continue
		}
		refs := make([]engine.ItemRef, len(page))
		for i := range page {
			refs[i] = page[i].ref
		}
		red, err := r.e.LoadItems(ctx, refs)
		if err != nil {
			return err
		}
		for i := range page {
			seen[page[i].ref] = struct{}{}
			if forked[page[i].ref] {
				continue // settled by the fork phase
			}
			rep.ItemsChecked++
			c, err := r.compare(ctx, rep, &page[i], red[i])
			if err != nil {
				return err
			}
			if c != nil {
				cands = append(cands, *c)
			}
		}
		r.progress.addChecked(len(page))
		if r.afterPage != nil {
			r.afterPage(ctx, p)
		}
		after = page[len(page)-1].ref
		if len(page) < r.cfg.BatchSize {
			si, after = si+1, engine.ItemRef{}
		}
	}
	err = r.e.ScanItems(ctx, p, r.cfg.BatchSize, func(refs []engine.ItemRef) error {
		var ss, ks []string
		for _, ref := range refs {
			if _, ok := seen[ref]; !ok {
				ss, ks = append(ss, ref.Store), append(ks, ref.SKU)
			}
		}
		if len(ss) == 0 {
			return nil
		}
		rows, err := r.pool.Query(ctx, absentItemsSQL, ss, ks)
		if err != nil {
			return fmt.Errorf("reconcile partition %d: %w", p, err)
		}
		absent, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (engine.ItemRef, error) {
			var ref engine.ItemRef
			err := row.Scan(&ref.Store, &ref.SKU)
			return ref, err
		})
		if err != nil {
			return fmt.Errorf("reconcile partition %d: %w", p, err)
		}
		rep.ItemsChecked += int64(len(absent))
		for _, ref := range absent {
			cands = append(cands, candidate{ref: ref})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(cands) == 0 {
		return nil
	}
	return r.ahead(ctx, p, rep, cands)
}

// compare handles one item the ledger has; it returns a candidate when Redis
// is ahead (decided later, against the stream).
func (r *Reconciler) compare(ctx context.Context, rep *Report, li *ledgerItem, red *engine.Item) (*candidate, error) {
	led := li.snap
	rs := snapshotOf(red)
	switch {
	case red == nil:
		f := Finding{Kind: KindRedisMissing, Store: li.ref.Store, SKU: li.ref.SKU, After: &led}
		return nil, r.restoreRedis(ctx, rep, f, 0)
	case red.Version < led.Version:
		f := Finding{Kind: KindRedisBehind, Store: li.ref.Store, SKU: li.ref.SKU, Before: rs, After: &led}
		return nil, r.restoreRedis(ctx, rep, f, red.Version)
	case red.Version > led.Version:
		return &candidate{ref: li.ref}, nil
	case !rs.sameNumbers(&led):
		// Corruption on one side or the other: the ledger's event of this
		// version is the truth.
		ev, err := r.eventAt(ctx, li.ref, led.Version)
		if err != nil {
			return nil, err
		}
		if ev == nil {
			ev = &led
		}
		f := Finding{Kind: KindCorrupt, Store: li.ref.Store, SKU: li.ref.SKU, Before: rs, After: ev,
			Detail: "same version, different numbers"}
		if !led.sameNumbers(ev) {
			f.Detail += "; inventory_items also differs from the ledger's event"
		}
		if rs.sameNumbers(ev) {
			// Redis is right, inventory_items is not.
			f.Before = &led
			f.Detail = "inventory_items differs from the ledger's event of the same version"
			f.Action = "none (check mode)"
			if rep.Mode == ModeRepair {
				f.Action = "rewrote inventory_items from the ledger"
				if err := r.fixItemsRow(ctx, li.ref, ev); err != nil {
					a, ok := refusedBy(err, "the rewrite of inventory_items")
					if !ok {
						return nil, err
					}
					f.Action = a
				}
			}
			rep.Findings = append(rep.Findings, f)
			return nil, nil
		}
		if rep.Mode == ModeRepair && !led.sameNumbers(ev) {
			if err := r.fixItemsRow(ctx, li.ref, ev); err != nil {
				a, ok := refusedBy(err, "the rewrite of inventory_items")
				if !ok {
					return nil, err
				}
				f.Action = a
				rep.Findings = append(rep.Findings, f)
				return nil, nil
			}
		}
		return nil, r.restoreRedis(ctx, rep, f, red.Version)
	}
	return nil, nil
}

const eventAtSQL = `SELECT version, on_hand, reserved, reorder_point, max_per_customer, ` + snapStateColumns + `
FROM inventory_events WHERE store_id = $1 AND sku = $2 AND version = $3`

func (r *Reconciler) eventAt(ctx context.Context, ref engine.ItemRef, v int64) (*ItemSnapshot, error) {
	var s ItemSnapshot
	err := r.pool.QueryRow(ctx, eventAtSQL, ref.Store, ref.SKU, v).Scan(s.scanDest(&s.Version, &s.OnHand, &s.Reserved, &s.ReorderPoint, &s.MaxPerCustomer)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger event %s/%s v%d: %w", ref.Store, ref.SKU, v, err)
	}
	return &s, nil
}

const ledgerStatesSQL = `SELECT i.store_id, i.sku, i.on_hand, i.reserved, i.version, i.reorder_point, i.max_per_customer,
	i.committed, i.damaged, i.quality_control, i.display, i.incoming, i.safety_stock
FROM inventory_items i
JOIN unnest($1::text[], $2::text[]) AS r(store_id, sku) ON i.store_id = r.store_id AND i.sku = r.sku`

// ledgerStates reads inventory_items for the given items (parallel slices).
func (r *Reconciler) ledgerStates(ctx context.Context, stores, skus []string) (map[engine.ItemRef]*ItemSnapshot, error) {
	rows, err := r.pool.Query(ctx, ledgerStatesSQL, stores, skus)
	if err != nil {
		return nil, err
	}
	out := map[engine.ItemRef]*ItemSnapshot{}
	var (
		ref engine.ItemRef
		s   ItemSnapshot
	)
	if _, err := pgx.ForEachRow(rows, s.scanDest(&ref.Store, &ref.SKU, &s.OnHand, &s.Reserved, &s.Version, &s.ReorderPoint, &s.MaxPerCustomer), func() error {
		c := s
		out[ref] = &c
		return nil
	}); err != nil {
		return nil, err
	}
	return out, nil
}
