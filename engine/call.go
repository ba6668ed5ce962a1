package engine

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// baseArgs returns ARGV[1..5] of every script (see prelude.lua).
func (e *Engine) baseArgs(extra ...any) []any {
	args := make([]any, 0, 5+len(extra))
	args = append(args,
		e.Now().UnixMilli(),
		e.cfg.IdempotencyTTL.Milliseconds(),
		e.cfg.OpTTL.Milliseconds(),
		e.cfg.StreamHighWatermark,
		e.cfg.ReservationRetention.Milliseconds(),
	)
	return append(args, extra...)
}

// maxAttempts bounds the engine's own retries of a script whose reply was
// lost. Writes are safe to retry: the script dedupes on the operation id.
const maxAttempts = 3

// run runs script sc on partition p (Scripts.call: FCALL, or EVALSHA with
// EVAL on NOSCRIPT), retrying a call whose reply was lost in transport.
func (e *Engine) run(ctx context.Context, sc *redis.Script, p int, extra ...any) (any, error) {
	keys := []string{e.StreamKey(p)}
	var err error
	for attempt := 1; ; attempt++ {
		var res any
		res, err = e.scripts.call(ctx, e.rdb, sc, keys, e.baseArgs(extra...)...).Result()
		if err == nil {
			return res, nil
		}
		e.refreshTopology(err)
		if !retryable(err) || attempt >= maxAttempts || ctx.Err() != nil {
			break
		}
		e.log.Debug("retrying script after transport error", zap.Int(logPartition, p), zap.Error(err))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
		}
	}
	return nil, interpretError(err)
}

const (
	logPartition = "partition"
	logError     = "error"
)

// retryable reports whether err is a transport failure after which the
// script may or may not have run, or a node that is loading or failing over.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrClosed) {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		for _, p := range []string{"LOADING", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	return true // io.EOF, a net.Error, a pool timeout: the reply was lost
}

// refreshTopology asks a cluster client to reload its slot map after an
// error that is not a Redis reply (connection refused, reset or timed out).
// go-redis reloads the map by itself only on MOVED/ASK, or every
// ClusterStateReloadInterval (60s by default); a master that died answers
// nothing, so without this its slots keep pointing at it for up to a minute
// after its replica has taken over. The reload is asynchronous and coalesced
// by go-redis: calling this on every such error is cheap.
func (e *Engine) refreshTopology(err error) {
	cc, ok := e.rdb.(*redis.ClusterClient)
	if !ok {
		return
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return
	}
	cc.ReloadState(context.Background())
}
