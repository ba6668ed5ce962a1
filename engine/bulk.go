package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
