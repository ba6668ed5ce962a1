package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Refusals count, per item, the requests refused for insufficient stock:
// what a flash sale turned away, SKU by SKU. They are advisory numbers for
// people watching (the dashboard's flash-sale view), not stock: kept in a
// hash per store (`{p}:refusals:<store>`, field SKU) that expires a day
// after its last count, never rebuilt, and counted outside the scripts, so
// a sale never waits on them.

// RefusalsTTL is how long a store's refusal counts outlive their last
// change.
const RefusalsTTL = 24 * time.Hour

// RefusalsKey returns the key of the hash of a store's refusal counts.
func (e *Engine) RefusalsKey(store string) string {
	return e.KeyBase(e.Partition(store)) + "refusals:" + store
}

// CountRefusals adds counts to the items' refusal counts, in one round trip
// (one pipeline over every partition involved).
func (e *Engine) CountRefusals(ctx context.Context, counts map[ItemRef]int64) error {
	if len(counts) == 0 {
		return nil
	}
	stores := map[string]bool{}
	_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for it, n := range counts {
			if !ValidID(it.Store) || !ValidID(it.SKU) || n <= 0 {
				continue
			}
			p.HIncrBy(ctx, e.RefusalsKey(it.Store), it.SKU, n)
			stores[it.Store] = true
		}
		for s := range stores {
			p.PExpire(ctx, e.RefusalsKey(s), RefusalsTTL)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("count refusals: %w", err)
	}
	return nil
}

// Refusals returns an item's refusal count: 0 when none was counted (or
// the counts expired).
func (e *Engine) Refusals(ctx context.Context, store, sku string) (int64, error) {
	if !ValidID(store) {
		return 0, invalid("store", "must match %s", idRE)
	}
	if !ValidID(sku) {
		return 0, invalid("sku", "must match %s", idRE)
	}
	n, err := e.rdb.HGet(ctx, e.RefusalsKey(store), sku).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read refusals: %w", err)
	}
	return n, nil
}
