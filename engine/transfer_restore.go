package engine

import (
	"context"
	"encoding/json"
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
// partition is marked ready.
func (e *Engine) RestoreTransfer(ctx context.Context, p int, s TransferState) error {
	d := s.Dest
	if d.ID == "" || !ValidID(d.To) || (d.From != "" && !ValidID(d.From)) {
		return fmt.Errorf("restore transfer %q: malformed", d.ID)
	}
	now := float64(e.Now().UnixMilli())
	pipe := e.rdb.Pipeline()
	hset := func(key, status string, lines []TransferLine) error {
		l := make([][]any, len(lines))
		for i, x := range lines {
			l[i] = []any{x.SKU, x.Qty, x.Received, x.Damaged, x.Missing}
		}
		b, err := json.Marshal(l)
		if err != nil {
			return err
		}
		pipe.HSet(ctx, key, "fr", d.From, "to", d.To, "s", status, "l", string(b),
			"ea", strconv.FormatInt(d.ExpectedAt, 10), "ref", d.Reference,
			"ca", strconv.FormatInt(d.CreatedAt, 10), "ua", strconv.FormatInt(d.UpdatedAt, 10))
		return nil
	}
	ca := float64(d.CreatedAt)
	if e.Partition(d.To) == p && d.Status != "" && !d.Source() {
		if err := hset(e.transferKey(p, d.ID), d.Status, d.Lines); err != nil {
			return err
		}
		pipe.ZAdd(ctx, e.transfersKey(p), redis.Z{Score: ca, Member: d.ID})
		pipe.ZAdd(ctx, e.storeTransfersKey(d.To), redis.Z{Score: ca, Member: d.ID})
		if d.Status == TransferInTransit {
			pipe.SAdd(ctx, e.storeIncomingKey(d.To), d.ID)
		}
		if d.Status == TransferCancelled && s.SrcState == "shipped" {
			pipe.ZAdd(ctx, e.TransferPendingKey(p), redis.Z{Score: now, Member: "return:" + d.ID})
		}
	}
	if d.From != "" && e.Partition(d.From) == p && s.SrcState != "" {
		lines := make([]TransferLine, len(d.Lines))
		for i, x := range d.Lines {
			lines[i] = TransferLine{SKU: x.SKU, Qty: x.Qty}
		}
		if err := hset(e.transferOutKey(p, d.ID), s.SrcState, lines); err != nil {
			return err
		}
		pipe.ZAdd(ctx, e.storeTransfersKey(d.From), redis.Z{Score: ca, Member: d.ID})
		if s.SrcState == "shipped" && (d.Status == "" || d.Source()) {
			pipe.ZAdd(ctx, e.TransferPendingKey(p), redis.Z{Score: now, Member: "expect:" + d.ID})
		}
		if s.SrcState == "shipped" && d.Status == TransferCancelled {
			// the destination's partition runs the return
			pipe.ZAdd(ctx, e.TransferPendingKey(e.Partition(d.To)), redis.Z{Score: now, Member: "return:" + d.ID})
		}
	}
	if e.Partition(d.To) == p && d.From != "" && s.SrcState == "shipped" && (d.Status == "" || d.Source()) {
		// the destination lost its record: the source's partition runs the
		// expect step again from its marker
		pipe.ZAdd(ctx, e.TransferPendingKey(e.Partition(d.From)), redis.Z{Score: now, Member: "expect:" + d.ID})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("restore transfer %s: %w", d.ID, err)
	}
	return nil
}
