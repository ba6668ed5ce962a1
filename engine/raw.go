package engine

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ItemRef names one item.
type ItemRef struct {
	Store, SKU string
}

// ParsePackedItem decodes an item as stored in its store's hash:
// "on_hand,reserved,version,updated_at_ms[,reorder_point,max_per_customer
// [,committed,damaged,quality_control,display,incoming,safety_stock]]", -1
// meaning unset.
func ParsePackedItem(store, sku, v string) (Item, error) {
	f := strings.Split(v, ",")
	if len(f) != 4 && len(f) != 6 && len(f) != 12 {
		return Item{}, fmt.Errorf("item %s/%s: malformed %q", store, sku, v)
	}
	n := make([]int64, 12)
	n[4], n[5], n[11] = -1, -1, -1
	for i, s := range f {
		x, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return Item{}, fmt.Errorf("item %s/%s: malformed %q", store, sku, v)
		}
		n[i] = x
	}
	it := Item{
		Store: store, SKU: sku, OnHand: n[0], Reserved: n[1], Version: n[2],
		UpdatedAt: time.UnixMilli(n[3]).UTC(), ReorderPoint: optional(n[4]), MaxPerCustomer: optional(n[5]),
		States:      States{Committed: n[6], Damaged: n[7], QualityControl: n[8], Display: n[9], Incoming: n[10]},
		SafetyStock: optional(n[11]),
	}
	it.Available = Available(it)
	return it, nil
}

// LoadItems reads many items straight from Redis in one pipeline (split per
// node on a cluster), ignoring readiness markers: for the reconciler, which
// must see what Redis holds. The result has one entry per ref, nil where
// Redis has no such item. It is not one atomic snapshot.
func (e *Engine) LoadItems(ctx context.Context, refs []ItemRef) ([]*Item, error) {
	cmds := make([]*redis.StringCmd, len(refs))
	_, err := e.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, r := range refs {
			cmds[i] = pipe.HGet(ctx, e.StoreKey(r.Store), r.SKU)
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		return nil, fmt.Errorf("load items: %w", err)
	}
	out := make([]*Item, len(refs))
	for i, c := range cmds {
		v, err := c.Result()
		if err == redis.Nil {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load item %s/%s: %w", refs[i].Store, refs[i].SKU, err)
		}
		it, err := ParsePackedItem(refs[i].Store, refs[i].SKU, v)
		if err != nil {
			return nil, err
		}
		out[i] = &it
	}
	return out, nil
}

// DeleteItem removes an item and its customer units from Redis without an
// event, ignoring readiness: for tests of the reconciler and for repairs.
func (e *Engine) DeleteItem(ctx context.Context, store, sku string) error {
	if err := validStoreSKU(store, sku); err != nil {
		return err
	}
	_, err := e.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.HDel(ctx, e.StoreKey(store), sku)
		pipe.Del(ctx, e.customerUnitsKey(store, sku))
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete %s/%s: %w", store, sku, err)
	}
	return nil
}

// ScanItems calls fn with the refs of every item Redis holds in partition p,
// in batches of up to batch refs, ignoring the readiness marker.
func (e *Engine) ScanItems(ctx context.Context, p, batch int, fn func([]ItemRef) error) error {
	stores, err := e.rdb.SMembers(ctx, e.storesKey(p)).Result()
	if err != nil {
		return fmt.Errorf("scan partition %d: %w", p, err)
	}
	sort.Strings(stores)
	refs := make([]ItemRef, 0, batch)
	for _, st := range stores {
		var cursor uint64
		for {
			kv, next, err := e.rdb.HScan(ctx, e.StoreKey(st), cursor, "", int64(batch)).Result()
			if err != nil {
				return fmt.Errorf("scan store %s: %w", st, err)
			}
			for i := 0; i+1 < len(kv); i += 2 {
				refs = append(refs, ItemRef{Store: st, SKU: kv[i]})
				if len(refs) == batch {
					if err := fn(refs); err != nil {
						return err
					}
					refs = make([]ItemRef, 0, batch)
				}
			}
			if next == 0 {
				break
			}
			cursor = next
		}
	}
	if len(refs) > 0 {
		return fn(refs)
	}
	return nil
}
