package persist

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/shelfline/inventory/engine"
)

// A batch read from a Redis that then lost its data can commit after the
// Rebuilder restored the partition from the ledger without it: the ledger
// then holds versions (acknowledged writes) that the rebuilt Redis lacks, and
// Redis could sell those units again. The persister notices it from the
// partition's readiness marker, which every rebuild sets anew: when the
// marker read before the batch differs from the one after its commit, it
// brings the batch's items in Redis up to the ledger at once (the
// reconciler's redis_behind repair, guarded by the version Redis has, open
// holds included). An item Redis has moved on meanwhile is a fork the
// reconciler merges.

// readyEpoch returns the partition's readiness marker, "" when absent or
// unreadable (then the batch is not checked).
func (p *Persister) readyEpoch(ctx context.Context, part int) string {
	v, err := p.e.ReadyEpoch(ctx, part)
	if err != nil {
		return ""
	}
	return v
}

// healAfterRebuild restores in Redis, from the ledger, the items of a batch
// committed after their partition was rebuilt without it.
func (p *Persister) healAfterRebuild(ctx context.Context, part int, events []engine.Event) error {
	p.healMu.Lock()
	defer p.healMu.Unlock()
	if p.healer == nil {
		r, err := NewReconciler(p.e, p.pool, ReconcilerConfig{Group: p.cfg.Group, Logger: p.log})
		if err != nil {
			return err
		}
		p.healer = r
	}
	seen := map[engine.ItemRef]bool{}
	var refs []engine.ItemRef
	var stores, skus []string
	for _, ev := range events {
		ref := engine.ItemRef{Store: ev.Store, SKU: ev.SKU}
		if !seen[ref] {
			seen[ref] = true
			refs = append(refs, ref)
			stores, skus = append(stores, ref.Store), append(skus, ref.SKU)
		}
	}
	led, err := p.healer.ledgerStates(ctx, stores, skus)
	if err != nil {
		return fmt.Errorf("heal partition %d: %w", part, err)
	}
	cur, err := p.e.LoadItems(ctx, refs)
	if err != nil {
		return fmt.Errorf("heal partition %d: %w", part, err)
	}
	rep := &Report{Mode: ModeRepair}
	for i, ref := range refs {
		l := led[ref]
		if l == nil {
			continue
		}
		var have int64
		if cur[i] != nil {
			have = cur[i].Version
		}
		if have >= l.Version {
			continue
		}
		f := Finding{Kind: KindRedisBehind, Store: ref.Store, SKU: ref.SKU, After: l,
			Detail: "a batch from the Redis that lost its data committed after the partition was rebuilt"}
		if err := p.healer.restoreRedis(ctx, rep, f, have); err != nil {
			return fmt.Errorf("heal %s/%s: %w", ref.Store, ref.SKU, err)
		}
	}
	for _, f := range rep.Findings {
		p.log.Warn("restored an item the rebuild missed", zap.Int(logPartition, part),
			zap.String("store", f.Store), zap.String("sku", f.SKU), zap.String("action", f.Action))
	}
	return nil
}
