package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// TransferWorkerConfig configures a TransferWorker.
type TransferWorkerConfig struct {
	// Interval between looks at the pending sets. Defaults to 250ms, so a
	// step left undone is finished within the engine's TransferGrace plus
	// about that.
	Interval time.Duration
	// Batch bounds the due steps taken from one partition per look.
	// Defaults to 100.
	Batch int
	// LockTTL is the lease a worker holds on one step while it runs it.
	// Defaults to 10s.
	LockTTL time.Duration
	// Principal names the worker in the events of the steps it runs.
	// Defaults to "transfer-worker".
	Principal string
	// Logger receives the worker's logs. Defaults to the engine's.
	Logger *zap.Logger
}

// TransferWorker finishes the steps of transfers that their caller left
// undone (a crash, a lost reply, a failover between the two halves of a
// step): every partition's pending set (TransferPendingKey) lists them, due
// from TransferGrace after the first half. Each step runs under a lease
// (lock.go), so two workers never run it at once, and is idempotent, so a
// step run again after a lost reply changes nothing. Many workers may run at
// once (one per process).
type TransferWorker struct {
	e   *Engine
	cfg TransferWorkerConfig
}

// NewTransferWorker returns a worker for e.
func NewTransferWorker(e *Engine, cfg TransferWorkerConfig) *TransferWorker {
	if cfg.Interval <= 0 {
		cfg.Interval = 250 * time.Millisecond
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = 10 * time.Second
	}
	if cfg.Principal == "" {
		cfg.Principal = "transfer-worker"
	}
	if cfg.Logger == nil {
		cfg.Logger = e.log
	}
	return &TransferWorker{e: e, cfg: cfg}
}

// Run finishes due steps until ctx is done, then returns nil.
func (w *TransferWorker) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		w.FinishDue(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// FinishDue runs every step due now and returns how many it finished. A
// step that fails stays pending for the next look.
func (w *TransferWorker) FinishDue(ctx context.Context) int {
	done := 0
	now := strconv.FormatInt(w.e.Now().UnixMilli(), 10)
	for p := 0; p < w.e.Partitions() && ctx.Err() == nil; p++ {
		due, err := w.e.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: w.e.TransferPendingKey(p), Start: "-inf", Stop: now,
			ByScore: true, Count: int64(w.cfg.Batch)}).Result()
		if err != nil {
			if ctx.Err() == nil {
				w.cfg.Logger.Warn("read pending transfer steps", zap.Int(logPartition, p), zap.Error(err))
			}
			continue
		}
		for _, m := range due {
			ok, err := w.finish(ctx, p, m)
			switch {
			case err != nil && ctx.Err() == nil:
				w.cfg.Logger.Warn("finish transfer step", zap.Int(logPartition, p), zap.String(logTransfer, m), zap.Error(err))
			case ok:
				done++
			}
		}
		w.pruneDue(ctx, p, now)
	}
	return done
}

// pruneDue deletes partition p's finished records whose retention has
// passed (Config.TransferRetention), with their sources' markers. Each
// deletion is idempotent, so two workers at it change nothing twice.
func (w *TransferWorker) pruneDue(ctx context.Context, p int, now string) {
	due, err := w.e.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: w.e.TransferDoneKey(p), Start: "-inf", Stop: now,
		ByScore: true, Count: int64(w.cfg.Batch)}).Result()
	if err != nil {
		if ctx.Err() == nil {
			w.cfg.Logger.Warn("read finished transfers", zap.Int(logPartition, p), zap.Error(err))
		}
		return
	}
	for _, id := range due {
		if err := w.e.pruneTransfer(ctx, p, id); err != nil && ctx.Err() == nil {
			w.cfg.Logger.Warn("delete finished transfer", zap.Int(logPartition, p), zap.String(logTransfer, id), zap.Error(err))
		}
	}
}

// pruneTransfer deletes a finished record of partition p: first the
// source's marker (transfer_forget), then the record and its index entries
// (transfer_prune), so a stop in between leaves the record to delete again.
// A cancelled transfer whose return is not done yet is put off by an hour.
func (e *Engine) pruneTransfer(ctx context.Context, p int, id string) error {
	t, err := e.loadTransferHash(ctx, e.transferKey(p, id), id)
	if err != nil {
		return err
	}
	later := func() error {
		return e.rdb.ZAdd(ctx, e.TransferDoneKey(p), redis.Z{Score: float64(e.Now().Add(time.Hour).UnixMilli()), Member: id}).Err()
	}
	if t != nil && t.From != "" && t.Status != TransferInTransit {
		if err := e.rdb.ZScore(ctx, e.TransferPendingKey(p), "return:"+id).Err(); err == nil {
			return later()
		} else if !errors.Is(err, redis.Nil) {
			return err
		}
		res, err := e.runTransfer(ctx, e.Partition(t.From), &transferRequest{Op: "transfer_forget", ID: id, Status: t.Status})
		if err != nil {
			return fmt.Errorf("delete transfer %s: forget the source's marker: %w", id, err)
		}
		if res.kept {
			return later()
		}
	}
	if _, err := e.runTransfer(ctx, p, &transferRequest{Op: "transfer_prune", ID: id}); err != nil {
		return fmt.Errorf("delete transfer %s: %w", id, err)
	}
	return nil
}

// finish runs one pending step under its lease. ok is false when another
// worker holds the lease.
func (w *TransferWorker) finish(ctx context.Context, p int, member string) (ok bool, err error) {
	l, err := w.e.lock(ctx, w.e.transferStepLockKey(p, member), w.cfg.LockTTL)
	if errors.Is(err, ErrLockHeld) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if rerr := l.Release(rctx); rerr != nil && err == nil {
			err = rerr
		}
	}()
	// Another worker may have finished the step between our look and our
	// lease: only a step still pending is run.
	if err := w.e.rdb.ZScore(ctx, w.e.TransferPendingKey(p), member).Err(); errors.Is(err, redis.Nil) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	step, id, _ := strings.Cut(member, ":")
	switch step {
	case "expect":
		m, err := w.e.loadTransferHash(ctx, w.e.transferOutKey(p, id), id)
		if err != nil {
			return false, err
		}
		if m == nil {
			// The marker is gone with its partition's data: the rebuild
			// queues the step again from the ledger. While the partition
			// is being rebuilt, the marker may still come back: keep it.
			return false, w.dropStep(ctx, p, member)
		}
		_, err = w.e.finishExpect(ctx, p, *m, w.cfg.Principal)
		return err == nil, err
	case "return":
		t, err := w.e.loadTransferHash(ctx, w.e.transferKey(p, id), id)
		if err != nil {
			return false, err
		}
		if t == nil {
			return false, w.dropStep(ctx, p, member)
		}
		err = w.e.finishReturn(ctx, p, *t, w.cfg.Principal)
		return err == nil, err
	}
	return false, fmt.Errorf("unknown pending transfer step %q", member)
}

// dropStep drops a pending step whose first half's data partition p lacks,
// unless p is being rebuilt (the data may be on its way back).
func (w *TransferWorker) dropStep(ctx context.Context, p int, member string) error {
	ready, err := w.e.PartitionReady(ctx, p)
	if err != nil || !ready {
		return err
	}
	return w.e.rdb.ZRem(ctx, w.e.TransferPendingKey(p), member).Err()
}

// loadTransferHash reads a transfer record or outbound marker as stored
// (transfer.lua, "A record as stored"); nil when absent.
func (e *Engine) loadTransferHash(ctx context.Context, key, id string) (*TransferRecord, error) {
	h, err := e.rdb.HMGet(ctx, key, transferHashFields...).Result()
	if err != nil {
		return nil, fmt.Errorf("read transfer %s: %w", id, err)
	}
	return parseTransferHash(id, h)
}

// transferHashFields are a record's hash fields (transfer.lua T_FIELDS).
var transferHashFields = []string{"fr", "to", "s", "l", "ea", "ref", "ca", "ua"}

// parseTransferHash decodes an HMGET of transferHashFields; nil when the
// hash is absent.
func parseTransferHash(id string, h []any) (*TransferRecord, error) {
	if len(h) != len(transferHashFields) || h[1] == nil {
		return nil, nil
	}
	str := func(i int) string { s, _ := h[i].(string); return s }
	num := func(i int) int64 { n, _ := strconv.ParseInt(str(i), 10, 64); return n }
	var lines [][]json.RawMessage
	if err := json.Unmarshal([]byte(str(3)), &lines); err != nil {
		return nil, fmt.Errorf("read transfer %s: lines: %w", id, err)
	}
	arr := []any{id, str(0), str(1), str(2), json.RawMessage(str(3)), num(4), str(5), num(6), num(7)}
	b, err := json.Marshal(arr)
	if err != nil {
		return nil, err
	}
	t, err := ParseTransferRecord(string(b))
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// PendingTransferSteps returns, per partition, how many transfer steps wait
// for their second half, and how many of them are overdue (due more than
// TransferGrace ago: stuck). For metrics.
func (e *Engine) PendingTransferSteps(ctx context.Context) (pending, stuck []int64, err error) {
	late := strconv.FormatInt(e.Now().Add(-e.cfg.TransferGrace).UnixMilli(), 10)
	pipe := e.rdb.Pipeline()
	cards := make([]*redis.IntCmd, e.cfg.Partitions)
	counts := make([]*redis.IntCmd, e.cfg.Partitions)
	for p := 0; p < e.cfg.Partitions; p++ {
		cards[p] = pipe.ZCard(ctx, e.TransferPendingKey(p))
		counts[p] = pipe.ZCount(ctx, e.TransferPendingKey(p), "-inf", late)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, fmt.Errorf("pending transfer steps: %w", err)
	}
	pending = make([]int64, e.cfg.Partitions)
	stuck = make([]int64, e.cfg.Partitions)
	for p := range cards {
		pending[p], stuck[p] = cards[p].Val(), counts[p].Val()
	}
	return pending, stuck, nil
}
