package engine

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ItemRef names one item.
type ItemRef struct {
	Store, SKU string
}

// LoadItems reads many items straight from Redis in one pipeline (split per
// node on a cluster), ignoring readiness markers: for the reconciler, which
// must see what Redis holds. The result has one entry per ref, nil where
// Redis has no such item. It is not one atomic snapshot.
func (e *Engine) LoadItems(ctx context.Context, refs []ItemRef) ([]*Item, error) {
	cmds := make([]*redis.SliceCmd, len(refs))
	_, err := e.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, r := range refs {
			cmds[i] = pipe.HMGet(ctx, e.ItemKey(r.Store, r.SKU), "oh", "rs", "v", "rp", "mpc", "ua")
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		return nil, fmt.Errorf("load items: %w", err)
	}
	out := make([]*Item, len(refs))
	for i, c := range cmds {
		vals, err := c.Result()
		if err != nil {
			return nil, fmt.Errorf("load item %s/%s: %w", refs[i].Store, refs[i].SKU, err)
		}
		if vals[2] == nil {
			continue
		}
		num := func(v any, d int64) int64 {
			s, ok := v.(string)
			if !ok {
				return d
			}
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return d
			}
			return n
		}
		it := &Item{Store: refs[i].Store, SKU: refs[i].SKU, OnHand: num(vals[0], 0), Reserved: num(vals[1], 0), Version: num(vals[2], 0)}
		it.Available = it.OnHand - it.Reserved
		it.ReorderPoint = optional(num(vals[3], -1))
		it.MaxPerCustomer = optional(num(vals[4], -1))
		it.UpdatedAt = time.UnixMilli(num(vals[5], 0)).UTC()
		out[i] = it
	}
	return out, nil
}

// ScanItems calls fn with the refs of every item Redis holds in partition p,
// in batches of up to batch refs, ignoring the readiness marker.
func (e *Engine) ScanItems(ctx context.Context, p, batch int, fn func([]ItemRef) error) error {
	base := e.KeyBase(p)
	stores, err := e.rdb.SMembers(ctx, base+"stores").Result()
	if err != nil {
		return fmt.Errorf("scan partition %d: %w", p, err)
	}
	refs := make([]ItemRef, 0, batch)
	for _, st := range stores {
		cursor := "-"
		for {
			skus, err := e.rdb.ZRangeByLex(ctx, base+"s:"+st, &redis.ZRangeBy{Min: cursor, Max: "+", Count: int64(batch)}).Result()
			if err != nil {
				return fmt.Errorf("scan store %s: %w", st, err)
			}
			for _, sku := range skus {
				refs = append(refs, ItemRef{Store: st, SKU: sku})
				if len(refs) == batch {
					if err := fn(refs); err != nil {
						return err
					}
					refs = make([]ItemRef, 0, batch)
				}
			}
			if len(skus) < batch {
				break
			}
			cursor = "(" + skus[len(skus)-1]
		}
	}
	if len(refs) > 0 {
		return fn(refs)
	}
	return nil
}
