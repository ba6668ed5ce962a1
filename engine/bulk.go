package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// MaxBulkLines bounds the lines of one AdjustMany call.
const MaxBulkLines = 1000

// bulkWorkers bounds the lines of one AdjustMany call in flight at once.
const bulkWorkers = 64

// LineOpSeparator joins a bulk request's idempotency key and a line's index
// in the line's operation id ("<key>§<index>"). A client key is printable
// ASCII, so no client key can name a line's record.
const LineOpSeparator = "§"

// BulkResult is the outcome of one line of AdjustMany: the item after the
// change, or the line's error (the same errors as Adjust).
type BulkResult struct {
	ItemResult
	Err error
}

// BulkResults is the outcome of AdjustMany: one result per line, in order.
type BulkResults struct {
	Lines []BulkResult
	// Replayed is true when the request was made before under the same key:
	// every line answers as it did then.
	Replayed bool
}

// AdjustMany applies each line on its own, like Adjust, and returns one
// result per line in order. Lines of one item apply in the order given;
// lines of different items apply concurrently, so group commit batches them.
// With a client key in op, line i runs under its own operation id derived
// from the key (see LineOpSeparator), so a retry of the whole request
// replays every line that was applied and applies the rest. The returned
// error is for a call that fails as a whole: no lines or more than
// MaxBulkLines (*ValidationError), a key reused for another request
// (ErrIdempotencyMismatch), or Redis unreachable for the claim.
func (e *Engine) AdjustMany(ctx context.Context, lines []AdjustRequest, op Op) (BulkResults, error) {
	if len(lines) < 1 || len(lines) > MaxBulkLines {
		return BulkResults{}, invalid("updates", "must hold 1..%d lines", MaxBulkLines)
	}
	repeat := false
	if op.IdempotencyKey != "" {
		if !ValidIdempotencyKey(op.IdempotencyKey) {
			return BulkResults{}, invalid("Idempotency-Key", "must be 1..255 printable ASCII characters")
		}
		fp := op.Fingerprint
		if fp == "" {
			b, err := json.Marshal(lines)
			if err != nil {
				return BulkResults{}, fmt.Errorf("bulk fingerprint: %w", err)
			}
			fp = string(b)
		}
		sum := sha256.Sum256([]byte("bulk\x00" + fp))
		var err error
		if repeat, err = e.claim(ctx, op.Principal, op.IdempotencyKey, hex.EncodeToString(sum[:16])); err != nil {
			return BulkResults{}, fmt.Errorf("bulk adjustment: %w", err)
		}
	}
	out := make([]BulkResult, len(lines))
	apply := func(i int) {
		lop := op
		if op.IdempotencyKey != "" {
			lop.line = i + 1
			if op.Fingerprint != "" {
				lop.Fingerprint = op.Fingerprint + "#" + strconv.Itoa(i)
			}
		}
		r, err := e.Adjust(ctx, lines[i], lop)
		out[i] = BulkResult{ItemResult: r, Err: err}
	}
	groups := map[[2]string][]int{}
	var order [][2]string
	for i, l := range lines {
		k := [2]string{l.Store, l.SKU}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	work := make(chan []int)
	var wg sync.WaitGroup
	for w := 0; w < min(bulkWorkers, len(order)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for idx := range work {
				for _, i := range idx {
					apply(i)
				}
			}
		}()
	}
	for _, k := range order {
		work <- groups[k]
	}
	close(work)
	wg.Wait()
	return BulkResults{Lines: out, Replayed: repeat}, nil
}

// MaxBulkSetLines bounds the lines of one SetMany call.
const MaxBulkSetLines = 10000

// bulkSetChunk is how many lines of one partition go in one batch call.
const bulkSetChunk = 256

// SetMany sets many items' on_hand, creating those that are absent, and
// returns one result per line, in order. Every line is validated before
// any is applied: an invalid line refuses the whole call, with a
// *ValidationError whose field names the line ("items[3].on_hand"), and
// nothing changes. Then each line applies on its own, like Set (it may be
// refused alone: on_hand below reserved, a version that differs,
// backpressure). Lines of one item apply in the order given. The lines of a
// partition go in batch calls of up to 256 (group commit without the
// queue), partitions at once. With a client key in op, line i runs under
// its own operation id derived from the key (see LineOpSeparator), so a
// retry of the whole request replays every line that was applied and
// applies the rest. The returned error is for a call that fails as a whole:
// no lines or more than MaxBulkSetLines, an invalid line, a key reused for
// another request (ErrIdempotencyMismatch), or Redis unreachable for the
// claim.
func (e *Engine) SetMany(ctx context.Context, lines []SetRequest, op Op) (BulkResults, error) {
	if len(lines) < 1 || len(lines) > MaxBulkSetLines {
		return BulkResults{}, invalid("items", "must hold 1..%d lines", MaxBulkSetLines)
	}
	reqs := make([]*request, len(lines))
	for i, l := range lines {
		w, err := setRequestOf(l)
		if err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) {
				return BulkResults{}, &ValidationError{Field: fmt.Sprintf("items[%d].%s", i, ve.Field), Msg: ve.Msg}
			}
			return BulkResults{}, err
		}
		reqs[i] = w
	}
	repeat := false
	if op.IdempotencyKey != "" {
		if !ValidIdempotencyKey(op.IdempotencyKey) {
			return BulkResults{}, invalid("Idempotency-Key", "must be 1..255 printable ASCII characters")
		}
		fp := op.Fingerprint
		if fp == "" {
			b, err := json.Marshal(lines)
			if err != nil {
				return BulkResults{}, fmt.Errorf("bulk fingerprint: %w", err)
			}
			fp = string(b)
		}
		sum := sha256.Sum256([]byte("bulk-set\x00" + fp))
		var err error
		if repeat, err = e.claim(ctx, op.Principal, op.IdempotencyKey, hex.EncodeToString(sum[:16])); err != nil {
			return BulkResults{}, fmt.Errorf("bulk set: %w", err)
		}
	}
	payloads := make([]string, len(lines))
	byPart := map[int][]int{}
	var parts []int
	for i, w := range reqs {
		lop := op
		if op.IdempotencyKey != "" {
			lop.line = i + 1
			if op.Fingerprint != "" {
				lop.Fingerprint = op.Fingerprint + "#" + strconv.Itoa(i)
			}
		}
		if err := identify(w, lop); err != nil {
			return BulkResults{}, err
		}
		b, err := json.Marshal(w)
		if err != nil {
			return BulkResults{}, fmt.Errorf("encode request: %w", err)
		}
		payloads[i] = string(b)
		p := e.Partition(lines[i].Store)
		if _, ok := byPart[p]; !ok {
			parts = append(parts, p)
		}
		byPart[p] = append(byPart[p], i)
	}
	out := make([]BulkResult, len(lines))
	// Each chunk runs detached from the caller's context, like a group
	// commit batch: a call cut off half-way would leave the caller unsure
	// which lines applied.
	bctx := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx := byPart[p]
			for len(idx) > 0 {
				n := min(len(idx), bulkSetChunk)
				chunk := idx[:n]
				idx = idx[n:]
				pl := make([]string, n)
				for j, i := range chunk {
					pl[j] = payloads[i]
				}
				cctx, cancel := context.WithTimeout(bctx, e.cfg.GroupTimeout)
				e.metricBatch(n)
				res, errs, err := e.runBatch(cctx, p, pl)
				cancel()
				for j, i := range chunk {
					l := lines[i]
					if err == nil {
						err := errs[j]
						var it Item
						if err == nil {
							it, err = res[j].item()
						}
						if err != nil {
							out[i] = BulkResult{Err: fmt.Errorf("set %s/%s: %w", l.Store, l.SKU, err)}
							continue
						}
						out[i] = BulkResult{ItemResult: ItemResult{Item: it, Created: res[j].Created, Replayed: res[j].Replayed}}
						continue
					}
					out[i] = BulkResult{Err: fmt.Errorf("set %s/%s: %w", l.Store, l.SKU, err)}
				}
			}
		}()
	}
	wg.Wait()
	return BulkResults{Lines: out, Replayed: repeat}, nil
}
