package engine

import (
	"context"
	"fmt"
)

// CheckRedisConfig returns warnings about Redis settings that put stock at
// risk: an eviction policy other than noeviction (Redis could silently drop
// items, reservations or unpersisted events) and, informationally, running
// without AOF. A Redis that refuses CONFIG GET (managed services) yields a
// warning saying the settings could not be checked.
func (e *Engine) CheckRedisConfig(ctx context.Context) []string {
	var warn []string
	pol, err := e.rdb.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		return []string{fmt.Sprintf("could not read Redis settings (%v): make sure maxmemory-policy is noeviction", err)}
	}
	if p := pol["maxmemory-policy"]; p != "" && p != "noeviction" {
		warn = append(warn, fmt.Sprintf("Redis maxmemory-policy is %q: it must be noeviction, or Redis may evict stock and unpersisted events", p))
	}
	aof, err := e.rdb.ConfigGet(ctx, "appendonly").Result()
	if err == nil && aof["appendonly"] == "no" {
		warn = append(warn, "Redis runs without AOF: a Redis crash loses what the persister had not yet written to PostgreSQL (the partitions are then rebuilt from the ledger)")
	}
	return warn
}
