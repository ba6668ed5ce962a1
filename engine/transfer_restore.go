package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// TransferState is a transfer as the ledger knows it (persist's transfers
// table): the destination's record (Dest.Status "" when its expect step is
// not in the ledger) and the source's marker state ("" for a supplier's
// delivery or when its ship step is not in the ledger; shipped; returned).
type TransferState struct {
	Dest     TransferRecord
	SrcState string
}

// RestoreTransfer writes back, while partition p is rebuilt, the side of a
// transfer that lives in p: the destination's record with its indexes, or
// the source's outbound marker. A step whose second half the ledger lacks
// is queued again, due now, in the pending set of the partition that ran
// its first half: the expect step of a shipped transfer whose record the
// ledger lacks, the return step of a cancelled transfer whose source still
// reads shipped. The steps are idempotent, so queuing one that did run
// (its events not yet in the ledger) changes nothing. Run it before the
// partition is marked ready. It returns how many sides it wrote.
func (e *Engine) RestoreTransfer(ctx context.Context, p int, s TransferState) (int, error) {
	return e.restoreTransfer(ctx, p, s, false)
}

// RestoreMissingTransfer is RestoreTransfer for a ready partition (the
// reconciler's repair): it writes a side only where Redis lacks it, under
// WATCH, so a side a step writes meanwhile is never overwritten, and
// queues the unfinished steps as RestoreTransfer does.
func (e *Engine) RestoreMissingTransfer(ctx context.Context, p int, s TransferState) (int, error) {
	return e.restoreTransfer(ctx, p, s, true)
}

// TransferSidesMissing reports which sides of a transfer that the ledger
// knows and that live in partition p Redis lacks: the destination's record
// (when the ledger has its status) and the source's marker (when the
// ledger has its state).
func (e *Engine) TransferSidesMissing(ctx context.Context, p int, s TransferState) (dest, source bool, err error) {
	d := s.Dest
	if e.Partition(d.To) == p && d.Status != "" && !d.Source() {
		n, err := e.rdb.Exists(ctx, e.transferKey(p, d.ID)).Result()
		if err != nil {
			return false, false, fmt.Errorf("transfer %s: %w", d.ID, err)
		}
		dest = n == 0
	}
	if d.From != "" && e.Partition(d.From) == p && s.SrcState != "" {
		n, err := e.rdb.Exists(ctx, e.transferOutKey(p, d.ID)).Result()
		if err != nil {
			return false, false, fmt.Errorf("transfer %s: %w", d.ID, err)
		}
		source = n == 0
	}
	return dest, source, nil
}

func (e *Engine) restoreTransfer(ctx context.Context, p int, s TransferState, onlyMissing bool) (int, error) {
	d := s.Dest
	if d.ID == "" || !ValidID(d.To) || (d.From != "" && !ValidID(d.From)) {
		return 0, fmt.Errorf("restore transfer %q: malformed", d.ID)
	}
	now := float64(e.Now().UnixMilli())
	ca := float64(d.CreatedAt)
	fields := func(status string, lines []TransferLine) ([]any, error) {
		l := make([][]any, len(lines))
		for i, x := range lines {
			l[i] = []any{x.SKU, x.Qty, x.Received, x.Damaged, x.Missing}
		}
		b, err := json.Marshal(l)
		if err != nil {
			return nil, err
		}
		return []any{"fr", d.From, "to", d.To, "s", status, "l", string(b),
			"ea", strconv.FormatInt(d.ExpectedAt, 10), "ref", d.Reference,
			"ca", strconv.FormatInt(d.CreatedAt, 10), "ua", strconv.FormatInt(d.UpdatedAt, 10)}, nil
	}
	// write puts one side back with its indexes: at once, or under WATCH
	// only while the key is absent.
	write := func(key string, hs []any, index func(redis.Pipeliner)) (bool, error) {
		if !onlyMissing {
			pipe := e.rdb.Pipeline()
			pipe.HSet(ctx, key, hs...)
			index(pipe)
			_, err := pipe.Exec(ctx)
			return err == nil, err
		}
		wrote := false
		err := e.rdb.Watch(ctx, func(tx *redis.Tx) error {
			n, err := tx.Exists(ctx, key).Result()
			if err != nil || n > 0 {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				pipe.HSet(ctx, key, hs...)
				index(pipe)
				return nil
			})
			wrote = err == nil
			return err
		}, key)
		if errors.Is(err, redis.TxFailedErr) {
			return false, nil // a step wrote it meanwhile: Redis' is newer
		}
		return wrote, err
	}
	sides := 0
	pending := e.rdb.Pipeline()
	if e.Partition(d.To) == p && d.Status != "" && !d.Source() {
		hs, err := fields(d.Status, d.Lines)
		if err != nil {
			return 0, err
		}
		ok, err := write(e.transferKey(p, d.ID), hs, func(pipe redis.Pipeliner) {
			pipe.ZAdd(ctx, e.transfersKey(p), redis.Z{Score: ca, Member: d.ID})
			pipe.ZAdd(ctx, e.storeTransfersKey(d.To), redis.Z{Score: ca, Member: d.ID})
			if d.Status == TransferInTransit {
				pipe.SAdd(ctx, e.storeIncomingKey(d.To), d.ID)
			}
		})
		if err != nil {
			return 0, fmt.Errorf("restore transfer %s: %w", d.ID, err)
		}
		if ok {
			sides++
		}
		if d.Status == TransferCancelled && s.SrcState == "shipped" {
			pending.ZAdd(ctx, e.TransferPendingKey(p), redis.Z{Score: now, Member: "return:" + d.ID})
		}
	}
	if d.From != "" && e.Partition(d.From) == p && s.SrcState != "" {
		lines := make([]TransferLine, len(d.Lines))
		for i, x := range d.Lines {
			lines[i] = TransferLine{SKU: x.SKU, Qty: x.Qty}
		}
		hs, err := fields(s.SrcState, lines)
		if err != nil {
			return 0, err
		}
		ok, err := write(e.transferOutKey(p, d.ID), hs, func(pipe redis.Pipeliner) {
			pipe.ZAdd(ctx, e.storeTransfersKey(d.From), redis.Z{Score: ca, Member: d.ID})
		})
		if err != nil {
			return 0, fmt.Errorf("restore transfer %s: %w", d.ID, err)
		}
		if ok {
			sides++
		}
		if s.SrcState == "shipped" && (d.Status == "" || d.Source()) {
			pending.ZAdd(ctx, e.TransferPendingKey(p), redis.Z{Score: now, Member: "expect:" + d.ID})
		}
		if s.SrcState == "shipped" && d.Status == TransferCancelled {
			// the destination's partition runs the return
			pending.ZAdd(ctx, e.TransferPendingKey(e.Partition(d.To)), redis.Z{Score: now, Member: "return:" + d.ID})
		}
	}
	if e.Partition(d.To) == p && d.From != "" && s.SrcState == "shipped" && (d.Status == "" || d.Source()) {
		// the destination lacks its record: the source's partition runs the
		// expect step again from its marker
		pending.ZAdd(ctx, e.TransferPendingKey(e.Partition(d.From)), redis.Z{Score: now, Member: "expect:" + d.ID})
	}
	if pending.Len() > 0 {
		if _, err := pending.Exec(ctx); err != nil {
			return sides, fmt.Errorf("restore transfer %s: queue steps: %w", d.ID, err)
		}
	}
	return sides, nil
}
