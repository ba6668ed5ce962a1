package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Group commit: concurrent writes to one partition coalesce into one call of
// the batch script, which runs each request on its own (its own validation,
// idempotency record and result) in one atomic step. A partition has at most
// GroupInflight batches in flight; requests arriving meanwhile queue and go
// out together in the next batch, up to GroupMaxBatch. At low load a request
// goes out alone at once, so batching adds no latency; under load one round
// trip serves many buyers.

type pending struct {
	payload string
	res     *result
	err     error
	done    chan struct{}
}

type batcher struct {
	e     *Engine
	p     int
	mu    sync.Mutex
	queue []*pending
	// inflight counts the runners sending batches of this partition.
	inflight int
}

func (e *Engine) batcher(p int) *batcher { return e.batchers[p] }

// submit queues one request and waits for its result.
func (b *batcher) submit(ctx context.Context, payload string) (*result, error) {
	pd := &pending{payload: payload, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, pd)
	start := b.inflight < b.e.cfg.GroupInflight
	if start {
		b.inflight++
	}
	b.mu.Unlock()
	if start {
		b.runOnce()
	}
	select {
	case <-pd.done:
		return pd.res, pd.err
	case <-ctx.Done():
		// The request may still be applied, like a write whose reply was
		// lost; a retry with the same key replays it.
		return nil, ctx.Err()
	}
}

// runOnce sends one batch from the queue; if more requests wait afterwards it
// hands its slot to a new runner, so the caller gets its own result at once.
func (b *batcher) runOnce() {
	if b.e.cfg.GroupLinger > 0 {
		b.mu.Lock()
		short := len(b.queue) < b.e.cfg.GroupMaxBatch
		b.mu.Unlock()
		if short {
			time.Sleep(b.e.cfg.GroupLinger)
		}
	}
	b.mu.Lock()
	n := len(b.queue)
	if n > b.e.cfg.GroupMaxBatch {
		n = b.e.cfg.GroupMaxBatch
	}
	batch := make([]*pending, n)
	copy(batch, b.queue[:n])
	b.queue = b.queue[n:]
	if len(b.queue) == 0 {
		b.queue = nil
	}
	b.mu.Unlock()

	if n > 0 {
		b.send(batch)
	}

	b.mu.Lock()
	more := len(b.queue) > 0
	if !more {
		b.inflight--
	}
	b.mu.Unlock()
	if more {
		go b.runOnce()
	}
}

func (b *batcher) send(batch []*pending) {
	payloads := make([]string, len(batch))
	for i, pd := range batch {
		payloads[i] = pd.payload
	}
	// The batch runs detached from any one caller's context: it serves them
	// all. Its own deadline bounds it.
	ctx, cancel := context.WithTimeout(context.Background(), b.e.cfg.GroupTimeout)
	defer cancel()
	b.e.metricBatch(len(batch))
	res, errs, err := b.e.runBatch(ctx, b.p, payloads)
	for i, pd := range batch {
		if err != nil {
			pd.err = err
		} else {
			pd.res, pd.err = res[i], errs[i]
		}
		close(pd.done)
	}
}

// runBatch runs write requests of partition p in one call of the batch
// script, each on its own, and returns each one's result or error, in
// order; err is for the call as a whole (none was answered).
func (e *Engine) runBatch(ctx context.Context, p int, payloads []string) (res []*result, errs []error, err error) {
	args := make([]any, 0, len(payloads)+1)
	args = append(args, randomHex(16)) // the batch id: a retry of this call replays it
	for _, pl := range payloads {
		args = append(args, pl)
	}
	v, err := e.run(ctx, e.scripts.Batch, p, args...)
	if err != nil {
		return nil, nil, err
	}
	arr, ok := v.([]any)
	if !ok || len(arr) != len(payloads) {
		return nil, nil, fmt.Errorf("batch: unexpected reply of %d results for %d requests", len(arr), len(payloads))
	}
	res, errs = make([]*result, len(arr)), make([]error, len(arr))
	for i := range arr {
		res[i], errs[i] = decodeResult(arr[i])
	}
	return res, errs, nil
}

func (e *Engine) metricBatch(n int) {
	if e.cfg.OnBatch != nil {
		e.cfg.OnBatch(n)
	}
	if ce := e.log.Check(zap.DebugLevel, "group commit"); ce != nil {
		ce.Write(zap.Int("size", n))
	}
}
