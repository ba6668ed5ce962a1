package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ItemState is an item's full state as the ledger knows it, with the units
// each customer holds or bought of it (for purchase limits).
type ItemState struct {
	Store, SKU       string
	OnHand, Reserved int64
	// States are the item's states (docs/design.md §2.1).
	States
	Version int64
	// ReorderPoint and MaxPerCustomer are -1 when unset.
	ReorderPoint, MaxPerCustomer int64
	// SafetyStock is nil when unset.
	SafetyStock *int64
	UpdatedAt   time.Time
	// CustomerUnits holds, per customer, the units held or bought while the
	// item had a purchase limit, less what released and expired holds gave
	// back. They are kept when the limit is cleared, so pass them whether or
	// not the item has a limit now.
	CustomerUnits map[string]int64
	// KeepCustomerUnits leaves the units customers hold or bought of the
	// item in Redis as they are, instead of replacing them with
	// CustomerUnits.
	KeepCustomerUnits bool
}

// RestoreItem overwrites an item in Redis with state from the ledger, without
// an event. expectCurrent guards against racing writes: the item's version in
// Redis must equal it (0: the item is absent); -1 skips the check. It works
// on partitions that are not ready (rebuild). Errors: *ValidationError,
// *VersionMismatchError.
func (e *Engine) RestoreItem(ctx context.Context, s ItemState, expectCurrent int64) error {
	if err := validStoreSKU(s.Store, s.SKU); err != nil {
		return err
	}
	b, err := e.restoreRequestOf(s, expectCurrent)
	if err != nil {
		return err
	}
	if err := e.restore(ctx, e.scripts.Restore, e.Partition(s.Store), []byte(b)); err != nil {
		return fmt.Errorf("restore %s/%s: %w", s.Store, s.SKU, err)
	}
	return nil
}

// restoreRequestOf encodes the restore script's request for s.
func (e *Engine) restoreRequestOf(s ItemState, expectCurrent int64) (string, error) {
	if s.UpdatedAt.IsZero() {
		s.UpdatedAt = e.Now()
	}
	b, err := json.Marshal(restoreRequest{
		Store: s.Store, SKU: s.SKU, OnHand: s.OnHand, Reserved: s.Reserved, Version: s.Version,
		ReorderPoint: s.ReorderPoint, MaxPerCustomer: s.MaxPerCustomer, UpdatedAtMs: s.UpdatedAt.UnixMilli(),
		Committed: s.Committed, Damaged: s.Damaged, QualityControl: s.QualityControl, Display: s.Display,
		Incoming: s.Incoming, SafetyStock: unsetAsMinus1(s.SafetyStock),
		ExpectVersion: expectCurrent, CustomerUnits: s.CustomerUnits, KeepCustomerUnits: s.KeepCustomerUnits,
	})
	return string(b), err
}

// MaxRestoreBatch bounds the items of one RestoreItems call.
const MaxRestoreBatch = 5000

// RestoreItems overwrites many items in Redis with state from the ledger,
// like RestoreItem without a guard (the rebuild of a partition): the items
// of one partition go in one script call, which checks every item before it
// writes any, so a call that fails wrote nothing of that partition. It works
// on partitions that are not ready. Errors: *ValidationError (also for more
// than MaxRestoreBatch items), Redis errors.
func (e *Engine) RestoreItems(ctx context.Context, states []ItemState) error {
	if len(states) > MaxRestoreBatch {
		return invalid("items", "at most %d per call, got %d", MaxRestoreBatch, len(states))
	}
	// The packed form of restore.lua: '#', then 15 fields per item and its
	// customers' units, numbers as they are (no JSON to encode or decode).
	byPart := map[int][]any{}
	count := map[int]int{}
	var order []int
	now := e.Now()
	for _, s := range states {
		if err := validStoreSKU(s.Store, s.SKU); err != nil {
			return err
		}
		p := e.Partition(s.Store)
		args, ok := byPart[p]
		if !ok {
			order = append(order, p)
			args = make([]any, 0, 1+15*len(states))
			args = append(args, "#")
		}
		ua := s.UpdatedAt
		if ua.IsZero() {
			ua = now
		}
		args = append(args, s.Store, s.SKU, s.OnHand, s.Reserved, s.Version, s.ReorderPoint, s.MaxPerCustomer,
			ua.UnixMilli(), s.Committed, s.Damaged, s.QualityControl, s.Display, s.Incoming, unsetAsMinus1(s.SafetyStock))
		switch {
		case s.KeepCustomerUnits:
			args = append(args, -1)
		default:
			args = append(args, len(s.CustomerUnits))
			for c, n := range s.CustomerUnits {
				args = append(args, c, n)
			}
		}
		byPart[p] = args
		count[p]++
	}
	for _, p := range order {
		v, err := e.run(ctx, e.scripts.Restore, p, byPart[p]...)
		if err == nil {
			_, err = decodeResult(v)
		}
		if err != nil {
			return fmt.Errorf("restore %d items of partition %d: %w", count[p], p, err)
		}
	}
	return nil
}

// unsetAsMinus1 returns *n, or -1 when n is nil (the scripts' "unset").
func unsetAsMinus1(n *int64) int64 {
	if n == nil {
		return -1
	}
	return *n
}

// restoreRequest is the restore script's request (luascripts/restore.lua).
type restoreRequest struct {
	Store          string `json:"store"`
	SKU            string `json:"sku"`
	OnHand         int64  `json:"on_hand"`
	Reserved       int64  `json:"reserved"`
	Version        int64  `json:"version"`
	ReorderPoint   int64  `json:"reorder_point"`
	MaxPerCustomer int64  `json:"max_per_customer"`
	UpdatedAtMs    int64  `json:"updated_at_ms"`
	Committed      int64  `json:"committed"`
	Damaged        int64  `json:"damaged"`
	QualityControl int64  `json:"quality_control"`
	Display        int64  `json:"display"`
	Incoming       int64  `json:"incoming"`
	SafetyStock    int64  `json:"safety_stock"`
	// ExpectVersion is the item's version in Redis now: -1 skips the
	// check, 0 means absent.
	ExpectVersion     int64            `json:"expect_version"`
	CustomerUnits     map[string]int64 `json:"customer_units,omitempty"`
	KeepCustomerUnits bool             `json:"keep_customer_units,omitempty"`
}

// restoreReservationRequest is the restore_reservation script's request
// (luascripts/restore_reservation.lua).
type restoreReservationRequest struct {
	ReservationID string     `json:"reservation_id"`
	Store         string     `json:"store"`
	Customer      string     `json:"customer,omitempty"`
	Lines         []wireLine `json:"lines"`
	ExpiresAtMs   int64      `json:"expires_at_ms"`
	// Counted holds per line the units counted against the customer's
	// purchase limit; nil when none.
	Counted []int64 `json:"counted,omitempty"`
}

// restore runs a restore script and checks that it answered restored.
func (e *Engine) restore(ctx context.Context, sc *redis.Script, p int, req []byte) error {
	v, err := e.run(ctx, sc, p, string(req))
	if err != nil {
		return err
	}
	r, err := decodeResult(v)
	if err != nil {
		return err
	}
	if !r.Restored {
		return fmt.Errorf("script reply: not restored")
	}
	return nil
}

// HeldReservation is an open reservation as the ledger knows it, for a
// rebuild.
type HeldReservation struct {
	Reservation
	// Counted holds, by SKU, the units of each line that counted against
	// the customer's purchase limit (the item had a limit when the hold was
	// made); its release or expiry gives back exactly these. A SKU missing
	// counted none.
	Counted map[string]int64
}

// RestoreReservation puts back a held reservation from the ledger (rebuild),
// with the units each line counted against the customer's purchase limit.
// The customer's usage itself comes back with the item (RestoreItem).
// Errors: *ValidationError.
func (e *Engine) RestoreReservation(ctx context.Context, h HeldReservation) error {
	r := h.Reservation
	p, err := e.ReservationPartition(r.ID)
	if err != nil {
		return err
	}
	if p != e.Partition(r.Store) {
		return invalid("reservation id", "%s does not belong to store %s", r.ID, r.Store)
	}
	lines := make([]wireLine, len(r.Lines))
	var counted []int64
	for i, l := range r.Lines {
		lines[i] = wireLine(l)
		n := h.Counted[l.SKU]
		if n < 0 || n > l.Qty {
			return invalid("counted units", "%d of line %s of reservation %s, which holds %d", n, l.SKU, r.ID, l.Qty)
		}
		if n > 0 && counted == nil {
			counted = make([]int64, len(r.Lines))
		}
		if counted != nil {
			counted[i] = n
		}
	}
	b, err := json.Marshal(restoreReservationRequest{ReservationID: r.ID, Store: r.Store, Customer: r.Customer,
		Lines: lines, ExpiresAtMs: r.ExpiresAt.UnixMilli(), Counted: counted})
	if err != nil {
		return err
	}
	if err := e.restore(ctx, e.scripts.RestoreReservation, p, b); err != nil {
		return fmt.Errorf("restore reservation %s: %w", r.ID, err)
	}
	return nil
}

// KeyedOp is a request made with a client's idempotency key, as the ledger
// recorded it.
type KeyedOp struct {
	Principal, Key string
	// Until is when the key's record would have expired.
	Until time.Time
}

// tombstone is the record of a keyed request restored from the ledger: the
// request was applied, its response is gone. The scripts answer it with
// ALREADY_APPLIED (prelude.lua, idem_check).
const tombstone = "*\n"

// RestoreIdempotency puts back, for requests the ledger shows applied with
// a client key, a record that makes a retry of the same key answer
// ErrAlreadyApplied instead of applying it again (the first response is not
// in the ledger). For the rebuild of partition p after Redis lost its data;
// an existing record is kept. Keys past Until are skipped.
func (e *Engine) RestoreIdempotency(ctx context.Context, p int, ops []KeyedOp) error {
	now := e.Now()
	_, err := e.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, o := range ops {
			ttl := o.Until.Sub(now)
			if ttl < time.Second || o.Key == "" || strings.HasPrefix(o.Key, GeneratedOpPrefix) {
				continue
			}
			pipe.SetNX(ctx, e.idemKey(p, idemKeyOf(o.Principal, o.Key)), tombstone, ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore idempotency records of partition %d: %w", p, err)
	}
	return nil
}

// IdempotencyTTL returns how long a client key's record is kept.
func (e *Engine) IdempotencyTTL() time.Duration { return e.cfg.IdempotencyTTL }
