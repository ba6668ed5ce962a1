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
	if e.transferRetired(s, time.Hour) {
		// deleted after its retention, or about to be: the ledger keeps it
		return false, false, nil
	}
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
	if e.transferRetired(s, 0) {
		return 0, nil // finished longer ago than the retention: the ledger keeps it
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
	if !onlyMissing && e.Partition(d.To) == p && d.Status == "" && d.From != "" && s.SrcState == "returned" {
		// The ledger lost both the expect and the cancel here but has the
		// source's return: nothing of it is in this partition's stock;
		// the record comes back cancelled, without events.
		d.Status = TransferCancelled
	}
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
			} else if keep := e.keepMs(); keep > 0 {
				due := max(d.UpdatedAt+keep, e.Now().UnixMilli())
				pipe.ZAdd(ctx, e.TransferDoneKey(p), redis.Z{Score: float64(due), Member: d.ID})
			}
		})
		if err != nil {
			return 0, fmt.Errorf("restore transfer %s: %w", d.ID, err)
		}
		if ok {
			sides++
		}
		if !onlyMissing && d.Status == TransferInTransit && s.SrcState == "returned" {
			// The ledger has the source's return but lost the cancel that
			// ran before it here: the cancel again, with its events.
			if err := e.restoreStep(ctx, p, &transferRequest{Op: "transfer_recancel", ID: d.ID}); err != nil {
				return sides, err
			}
		}
		if d.Status == TransferCancelled && d.From != "" && (s.SrcState == "shipped" || s.SrcState == "") {
			// "": the ledger lost the ship, which the source's rebuild
			// makes up (transfer_reship); the return follows it
			pending.ZAdd(ctx, e.TransferPendingKey(p), redis.Z{Score: now, Member: "return:" + d.ID})
		}
	}
	reshipped := false
	if !onlyMissing && d.From != "" && e.Partition(d.From) == p && s.SrcState == "" && d.Status != "" && !d.Source() {
		// The ledger has the destination's side but lost the ship that ran
		// before it here: the ship again, with its events, from the state
		// the ledger has (the one before the ship, where it was valid).
		lines := make([]wireLine, len(d.Lines))
		for i, x := range d.Lines {
			lines[i] = wireLine{SKU: x.SKU, Qty: x.Qty}
		}
		if err := e.restoreStep(ctx, p, &transferRequest{Op: "transfer_reship", ID: d.ID, From: d.From, To: d.To,
			Lines: lines, ExpectedAt: d.ExpectedAt, Reference: d.Reference, CreatedAt: d.CreatedAt}); err != nil {
			return sides, err
		}
		s.SrcState, reshipped = "shipped", true
		sides++
	}
	if d.From != "" && e.Partition(d.From) == p && s.SrcState != "" {
		if !reshipped {
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

// restoreStep runs a rebuild's repair (transfer.lua TFIX) on partition p,
// which need not be ready.
func (e *Engine) restoreStep(ctx context.Context, p int, r *transferRequest) error {
	r.Principal, r.OpID, r.Reason = "rebuild", r.ID+":"+strings.TrimPrefix(r.Op, "transfer_"), "restored from the ledger"
	if _, err := e.runTransfer(ctx, p, r); err != nil {
		return fmt.Errorf("restore transfer %s: %s: %w", r.ID, r.Op, err)
	}
	return nil
}

// transferRetired reports whether a transfer finished more than the
// retention (less slack) ago, so Redis no longer holds it: received, or
// cancelled with its units returned (or from a supplier).
func (e *Engine) transferRetired(s TransferState, slack time.Duration) bool {
	keep := e.cfg.TransferRetention
	d := s.Dest
	if keep <= 0 || d.UpdatedAt == 0 {
		return false
	}
	switch {
	case d.Status == TransferReceived:
	case d.Status == TransferCancelled && (d.From == "" || s.SrcState == "returned"):
	default:
		return false
	}
	return time.UnixMilli(d.UpdatedAt).Add(keep - slack).Before(e.Now())
}
