// Package engine is the hot path of the inventory: every stock operation is
// one atomic Lua script in Redis that validates, dedupes by operation id,
// changes the items and appends one event per changed item to the partition's
// stream.
//
// An Engine is safe for concurrent use by many goroutines and many processes
// sharing one Redis or Redis Cluster.
package engine

import (
	"context"
	"fmt"
	"hash/crc32"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Engine runs the stock operations. Construct it with New.
type Engine struct {
	cfg      Config
	rdb      redis.UniversalClient
	scripts  *Scripts
	log      *zap.Logger
	batchers []*batcher
	// afterShip, when set (tests), runs between the two halves of a
	// transfer step; an error stops the caller there, as a crash would.
	afterShip func(id string) error
}

// New returns an Engine for cfg. It does not talk to Redis; call Init or
// LoadScripts before serving.
func New(cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s, err := newScripts()
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, rdb: cfg.Client, scripts: s, log: cfg.Logger, afterShip: cfg.BetweenTransferSteps}
	e.batchers = make([]*batcher, cfg.Partitions)
	for p := range e.batchers {
		e.batchers[p] = &batcher{e: e, p: p}
	}
	return e, nil
}

// Partitions returns the number of partitions.
func (e *Engine) Partitions() int { return e.cfg.Partitions }

// Prefix returns the key prefix.
func (e *Engine) Prefix() string { return e.cfg.Prefix }

// Scripts returns the engine's scripts.
func (e *Engine) Scripts() *Scripts { return e.scripts }

// Now returns the engine clock's current time.
func (e *Engine) Now() time.Time { return e.cfg.Clock() }

// Partition returns the partition of a store: crc32(store) % Partitions.
func (e *Engine) Partition(store string) int {
	return int(crc32.ChecksumIEEE([]byte(store)) % uint32(e.cfg.Partitions))
}

// LoadScripts loads every script into Redis (every master of a cluster),
// and every script's function library, after which scripts run with FCALL
// (unless Config.NoFunctions, or Redis refuses the libraries: then EVALSHA).
func (e *Engine) LoadScripts(ctx context.Context) error {
	if err := e.scripts.load(ctx, e.rdb); err != nil {
		return err
	}
	if e.cfg.NoFunctions {
		return nil
	}
	if err := e.scripts.loadFunctions(ctx, e.rdb); err != nil {
		e.log.Info("scripts run with EVALSHA: Redis took no function library", zap.Error(err))
	}
	return nil
}

// Init loads the scripts and marks every partition that has no readiness
// marker ready. Use it only for a deployment without a ledger: with a ledger,
// a missing marker means Redis lost data and the partition must be rebuilt
// from PostgreSQL first.
func (e *Engine) Init(ctx context.Context) error {
	if err := e.LoadScripts(ctx); err != nil {
		return err
	}
	for p := 0; p < e.cfg.Partitions; p++ {
		if err := e.MarkReady(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// MarkReady sets partition p's readiness marker, so its scripts accept writes.
func (e *Engine) MarkReady(ctx context.Context, p int) error {
	if err := e.rdb.Set(ctx, e.ReadyKey(p), strconv.FormatInt(e.Now().UnixMilli(), 10), 0).Err(); err != nil {
		return fmt.Errorf("mark partition %d ready: %w", p, err)
	}
	return nil
}

// PartitionReady reports whether partition p has its readiness marker.
func (e *Engine) PartitionReady(ctx context.Context, p int) (bool, error) {
	n, err := e.rdb.Exists(ctx, e.ReadyKey(p)).Result()
	if err != nil {
		return false, fmt.Errorf("partition %d ready: %w", p, err)
	}
	return n == 1, nil
}

// StreamHighWatermark returns the number of entries in a partition's event
// stream at which writes are refused (Config.StreamHighWatermark); zero or
// less when there is none.
func (e *Engine) StreamHighWatermark() int64 { return e.cfg.StreamHighWatermark }
