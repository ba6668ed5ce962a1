package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// SetRequest sets an item's on_hand absolutely, creating the item if absent.
type SetRequest struct {
	Store, SKU string
	// OnHand is 0..MaxOnHand, and not below what is reserved.
	OnHand int64
	// ReorderPoint: nil keeps the current one; see ClearReorderPoint.
	ReorderPoint *int64
	// MaxPerCustomer: nil keeps the current one; see ClearMaxPerCustomer.
	MaxPerCustomer *int64
	// SafetyStock: nil keeps the current one; see ClearSafetyStock.
	SafetyStock *int64
	// ClearReorderPoint, ClearMaxPerCustomer and ClearSafetyStock remove
	// the setting.
	ClearReorderPoint, ClearMaxPerCustomer, ClearSafetyStock bool
	// ExpectVersion, when set, must equal the item's version; 0 means the
	// item must not exist (create only).
	ExpectVersion *int64
	Reason        string
}

// ItemResult is the outcome of a write to one item.
type ItemResult struct {
	Item Item
	// Created is true when a set created the item.
	Created bool
	// Replayed is true when the result was stored by an earlier request with
	// the same idempotency key and nothing changed now.
	Replayed bool
}

func validStoreSKU(store, sku string) error {
	if !ValidID(store) {
		return invalid("store", "must match %s", idRE)
	}
	if !ValidID(sku) {
		return invalid("sku", "must match %s", idRE)
	}
	return nil
}

// validReason checks a reason: free text (see text.go) of at most
// MaxReasonLen characters.
func validReason(r string) error { return validText("reason", r, MaxReasonLen) }

// Set sets an item's on_hand. Errors: *ValidationError, *VersionMismatchError,
// ErrConflict (below what reserved, committed, damaged, quality_control and
// display hold), ErrIdempotencyMismatch, ErrBackpressure,
// ErrPartitionNotReady.
func (e *Engine) Set(ctx context.Context, req SetRequest, op Op) (ItemResult, error) {
	w, err := setRequestOf(req)
	if err != nil {
		return ItemResult{}, err
	}
	r, err := e.write(ctx, e.Partition(req.Store), w, op)
	if err != nil {
		return ItemResult{}, fmt.Errorf("set %s/%s: %w", req.Store, req.SKU, err)
	}
	it, err := r.item()
	if err != nil {
		return ItemResult{}, fmt.Errorf("set %s/%s: %w", req.Store, req.SKU, err)
	}
	return ItemResult{Item: it, Created: r.Created, Replayed: r.Replayed}, nil
}

// setRequestOf validates a set and builds its script request. Errors:
// *ValidationError.
func setRequestOf(req SetRequest) (*request, error) {
	if err := validStoreSKU(req.Store, req.SKU); err != nil {
		return nil, err
	}
	if req.OnHand < 0 || req.OnHand > MaxOnHand {
		return nil, invalid("on_hand", "must be 0..%d", int64(MaxOnHand))
	}
	if err := validReason(req.Reason); err != nil {
		return nil, err
	}
	w := &request{Op: "set", Store: req.Store, SKU: req.SKU, OnHand: &req.OnHand, ExpectVersion: req.ExpectVersion, Reason: req.Reason}
	if req.ExpectVersion != nil && *req.ExpectVersion < 0 {
		return nil, invalid("version", "must not be negative")
	}
	clear := int64(-1)
	switch {
	case req.ClearReorderPoint:
		w.ReorderPoint = &clear
	case req.ReorderPoint != nil:
		if *req.ReorderPoint < 0 || *req.ReorderPoint > MaxOnHand {
			return nil, invalid("reorder_point", "must be 0..%d", int64(MaxOnHand))
		}
		w.ReorderPoint = req.ReorderPoint
	}
	switch {
	case req.ClearMaxPerCustomer:
		w.MaxPerCustomer = &clear
	case req.MaxPerCustomer != nil:
		if *req.MaxPerCustomer < 0 || *req.MaxPerCustomer > MaxQty {
			return nil, invalid("max_per_customer", "must be 0..%d", MaxQty)
		}
		w.MaxPerCustomer = req.MaxPerCustomer
	}
	switch {
	case req.ClearSafetyStock:
		w.SafetyStock = &clear
	case req.SafetyStock != nil:
		if *req.SafetyStock < 0 || *req.SafetyStock > MaxOnHand {
			return nil, invalid("safety_stock", "must be 0..%d", int64(MaxOnHand))
		}
		w.SafetyStock = req.SafetyStock
	}
	return w, nil
}

// AdjustRequest changes an existing item's on_hand by Delta, in a state.
type AdjustRequest struct {
	Store, SKU string
	// Delta is non-zero; on_hand + Delta stays within what the states
	// hold..MaxOnHand.
	Delta int64
	// State is where the delta goes: "available" (the default, empty),
	// committed, damaged, quality_control or display, which changes with
	// on_hand and may not go below 0.
	State string
	// ExpectVersion, when set, must equal the item's version.
	ExpectVersion *int64
	Reason        string
}

// Adjust changes an item's on_hand by a delta, and the state named by
// req.State with it. Errors: *ValidationError, ErrNotFound,
// *VersionMismatchError, *InsufficientStockError (the delta would take
// on_hand below what the states hold, or the state below 0),
// ErrIdempotencyMismatch, ErrBackpressure, ErrPartitionNotReady.
func (e *Engine) Adjust(ctx context.Context, req AdjustRequest, op Op) (ItemResult, error) {
	if err := validStoreSKU(req.Store, req.SKU); err != nil {
		return ItemResult{}, err
	}
	if req.Delta == 0 || req.Delta < -MaxOnHand || req.Delta > MaxOnHand {
		return ItemResult{}, invalid("delta", "must be non-zero and within ±%d", int64(MaxOnHand))
	}
	if err := validReason(req.Reason); err != nil {
		return ItemResult{}, err
	}
	if req.ExpectVersion != nil && *req.ExpectVersion < 1 {
		return ItemResult{}, invalid("version", "must be positive")
	}
	if req.State == StateAvailable {
		req.State = ""
	}
	if req.State != "" && !ValidState(req.State) {
		return ItemResult{}, invalid("state", "must be one of available, committed, damaged, quality_control, display")
	}
	w := &request{Op: "adjust", Store: req.Store, SKU: req.SKU, Delta: req.Delta, State: req.State, ExpectVersion: req.ExpectVersion, Reason: req.Reason}
	r, err := e.write(ctx, e.Partition(req.Store), w, op)
	if err != nil {
		return ItemResult{}, fmt.Errorf("adjust %s/%s: %w", req.Store, req.SKU, err)
	}
	it, err := r.item()
	if err != nil {
		return ItemResult{}, fmt.Errorf("adjust %s/%s: %w", req.Store, req.SKU, err)
	}
	return ItemResult{Item: it, Replayed: r.Replayed}, nil
}

// CheckoutRequest sells every line or none, at one store.
type CheckoutRequest struct {
	Store string
	// Lines holds 1..MaxLines lines with distinct SKUs, qty 1..MaxQty.
	Lines []Line
	// Customer is required when an item has a purchase limit.
	Customer string
	// Channel is ChannelPOS for a till sale (the buyer holds the units), which
	// may sell the safety stock too; empty or ChannelWeb otherwise.
	Channel string
	// Fulfilment is FulfilmentLater to keep the sold units in committed
	// until a fulfilment hands them over; empty or FulfilmentNow takes them
	// off on_hand at once.
	Fulfilment string
	Reason     string
}

// Channels of a checkout.
const (
	ChannelPOS = "pos"
	ChannelWeb = "web"
)

// Fulfilments of a checkout or commit.
const (
	FulfilmentNow   = "now"
	FulfilmentLater = "later"
)

func validFulfilment(f string) (string, error) {
	switch f {
	case "", FulfilmentNow:
		return "", nil
	case FulfilmentLater:
		return f, nil
	}
	return "", invalid("fulfilment", "must be now or later")
}

// CheckoutResult holds the items after the sale, in line order.
type CheckoutResult struct {
	Items    []Item
	Replayed bool
}

func validLines(store string, lines []Line, customer string) ([]wireLine, error) {
	if !ValidID(store) {
		return nil, invalid("store", "must match %s", idRE)
	}
	if customer != "" && !ValidID(customer) {
		return nil, invalid("customer", "must match %s", idRE)
	}
	if len(lines) < 1 || len(lines) > MaxLines {
		return nil, invalid("lines", "must hold 1..%d lines", MaxLines)
	}
	seen := make(map[string]struct{}, len(lines))
	out := make([]wireLine, len(lines))
	for i, l := range lines {
		if !ValidID(l.SKU) {
			return nil, invalid(fmt.Sprintf("lines[%d].sku", i), "must match %s", idRE)
		}
		if l.Qty < 1 || l.Qty > MaxQty {
			return nil, invalid(fmt.Sprintf("lines[%d].qty", i), "must be 1..%d", MaxQty)
		}
		if _, dup := seen[l.SKU]; dup {
			return nil, invalid(fmt.Sprintf("lines[%d].sku", i), "%s appears twice", l.SKU)
		}
		seen[l.SKU] = struct{}{}
		out[i] = wireLine(l)
	}
	return out, nil
}

// Checkout sells every line or none, each at most Available units (a till
// sale: TillAvailable). Errors: *ValidationError, ErrNotFound,
// ErrCustomerRequired, *PurchaseLimitError, *InsufficientStockError,
// ErrIdempotencyMismatch, ErrBackpressure, ErrPartitionNotReady.
func (e *Engine) Checkout(ctx context.Context, req CheckoutRequest, op Op) (CheckoutResult, error) {
	wl, err := validLines(req.Store, req.Lines, req.Customer)
	if err != nil {
		return CheckoutResult{}, err
	}
	if err := validReason(req.Reason); err != nil {
		return CheckoutResult{}, err
	}
	if req.Channel != "" && req.Channel != ChannelPOS && req.Channel != ChannelWeb {
		return CheckoutResult{}, invalid("channel", "must be pos or web")
	}
	ff, err := validFulfilment(req.Fulfilment)
	if err != nil {
		return CheckoutResult{}, err
	}
	w := &request{Op: "checkout", Store: req.Store, Lines: wl, Customer: req.Customer, Channel: req.Channel, Fulfilment: ff, Reason: req.Reason}
	r, err := e.write(ctx, e.Partition(req.Store), w, op)
	if err != nil {
		return CheckoutResult{}, fmt.Errorf("checkout at %s: %w", req.Store, err)
	}
	if len(r.Items) != len(req.Lines) {
		return CheckoutResult{}, fmt.Errorf("checkout at %s: script reply: %d items for %d lines", req.Store, len(r.Items), len(req.Lines))
	}
	return CheckoutResult{Items: r.Items, Replayed: r.Replayed}, nil
}

// ReserveRequest holds every line or none, at one store, for TTL.
type ReserveRequest struct {
	Store    string
	Lines    []Line
	Customer string
	// TTL is 1s..24h. Defaults to 15m. Whole seconds.
	TTL    time.Duration
	Reason string
}

// ReservationResult is a reservation and the items it changed now (none when
// nothing changed).
type ReservationResult struct {
	Reservation Reservation
	Items       []Item
	Replayed    bool
}

func (r *result) reservationResult() (ReservationResult, error) {
	if r.Reservation == nil {
		return ReservationResult{}, fmt.Errorf("script reply: no reservation")
	}
	return ReservationResult{Reservation: *r.Reservation, Items: r.Items, Replayed: r.Replayed}, nil
}

// Reserve holds every line or none. Errors: as Checkout.
func (e *Engine) Reserve(ctx context.Context, req ReserveRequest, op Op) (ReservationResult, error) {
	wl, err := validLines(req.Store, req.Lines, req.Customer)
	if err != nil {
		return ReservationResult{}, err
	}
	if err := validReason(req.Reason); err != nil {
		return ReservationResult{}, err
	}
	if req.TTL == 0 {
		req.TTL = DefaultTTL
	}
	if req.TTL < time.Second || req.TTL > MaxTTL || req.TTL%time.Second != 0 {
		return ReservationResult{}, invalid("ttl_seconds", "must be a whole number of seconds, 1..86400")
	}
	p := e.Partition(req.Store)
	w := &request{Op: "reserve", Store: req.Store, Lines: wl, Customer: req.Customer, TTLms: req.TTL.Milliseconds(),
		ReservationID: fmt.Sprintf("%d-%s", p, randomHex(16)), Reason: req.Reason}
	r, err := e.write(ctx, p, w, op)
	if err != nil {
		return ReservationResult{}, fmt.Errorf("reserve at %s: %w", req.Store, err)
	}
	res, err := r.reservationResult()
	if err != nil {
		return ReservationResult{}, fmt.Errorf("reserve at %s: %w", req.Store, err)
	}
	return res, nil
}

// ReservationPartition returns the partition a reservation id belongs to, or
// an error when id is not a reservation id of this deployment.
func (e *Engine) ReservationPartition(id string) (int, error) {
	m := resIDRE.FindStringSubmatch(id)
	if m == nil {
		return 0, invalid("reservation id", "malformed")
	}
	var p int
	fmt.Sscanf(m[1], "%d", &p)
	if p >= e.cfg.Partitions {
		return 0, &NotFoundError{What: id}
	}
	return p, nil
}

func (e *Engine) finish(ctx context.Context, o, id, fulfilment string, op Op) (ReservationResult, error) {
	p, err := e.ReservationPartition(id)
	if err != nil {
		return ReservationResult{}, err
	}
	r, err := e.write(ctx, p, &request{Op: o, ReservationID: id, Fulfilment: fulfilment}, op)
	if err != nil {
		return ReservationResult{}, fmt.Errorf("%s reservation %s: %w", o, id, err)
	}
	res, err := r.reservationResult()
	if err != nil {
		return ReservationResult{}, fmt.Errorf("%s reservation %s: %w", o, id, err)
	}
	return res, nil
}

// Commit turns a held reservation into a sale. Committing a committed one
// changes nothing. Errors: ErrNotFound, ErrReservationNotHeld (released,
// expired, or past expires_at), ErrIdempotencyMismatch, ErrBackpressure,
// ErrPartitionNotReady.
func (e *Engine) Commit(ctx context.Context, id string, op Op) (ReservationResult, error) {
	return e.finish(ctx, "commit", id, "", op)
}

// CommitFulfilment is Commit with a fulfilment: FulfilmentLater moves the
// held units from reserved to committed (on_hand unchanged) until a
// fulfilment hands them over; empty or FulfilmentNow is Commit. Errors: as
// Commit, and *ValidationError.
func (e *Engine) CommitFulfilment(ctx context.Context, id, fulfilment string, op Op) (ReservationResult, error) {
	ff, err := validFulfilment(fulfilment)
	if err != nil {
		return ReservationResult{}, err
	}
	return e.finish(ctx, "commit", id, ff, op)
}

// Release gives a held reservation's units back. Releasing a released or
// expired one changes nothing. Errors: as Commit (a committed one is not
// held).
func (e *Engine) Release(ctx context.Context, id string, op Op) (ReservationResult, error) {
	return e.finish(ctx, "release", id, "", op)
}

// logReservation is the log key of a reservation id.
const logReservation = "reservation"

// expireRequest is the expire script's request (luascripts/expire.lua).
type expireRequest struct {
	// Limit is the most holds to expire in one call.
	Limit int `json:"limit"`
}

// ExpireDue expires up to limit reservations of partition p whose expires_at
// has passed, and returns how many it expired. A hold whose items no longer
// hold its units is dropped from the expiry set, its units left as they
// are, and logged. Safe to call from many processes at once.
func (e *Engine) ExpireDue(ctx context.Context, p, limit int) (int, error) {
	b, err := json.Marshal(expireRequest{Limit: limit})
	if err != nil {
		return 0, err
	}
	v, err := e.run(ctx, e.scripts.Expire, p, string(b))
	if err != nil {
		return 0, fmt.Errorf("expire partition %d: %w", p, err)
	}
	r, err := decodeResult(v)
	if err != nil {
		return 0, fmt.Errorf("expire partition %d: %w", p, err)
	}
	for _, id := range r.Corrupt {
		e.log.Warn("corrupt reservation dropped from the expiry set", zap.Int(logPartition, p), zap.String(logReservation, id))
	}
	return len(r.Expired), nil
}
