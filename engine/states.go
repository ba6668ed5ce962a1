package engine

import (
	"context"
	"fmt"
)

// MoveRequest moves units of an item between states, on_hand unchanged
// (docs/design.md §10).
type MoveRequest struct {
	Store, SKU string
	// From and To are states (StateAvailable, StateCommitted, …), not the
	// same; committed is reached only from available and left only to it.
	From, To string
	// Qty is 1..MaxOnHand.
	Qty    int64
	Reason string
}

// Move moves units between states. Moving from available takes at most
// Available units. Errors: *ValidationError, ErrNotFound,
// *InsufficientStockError (the source state holds fewer than Qty),
// ErrIdempotencyMismatch, ErrBackpressure, ErrPartitionNotReady.
func (e *Engine) Move(ctx context.Context, req MoveRequest, op Op) (ItemResult, error) {
	if err := validStoreSKU(req.Store, req.SKU); err != nil {
		return ItemResult{}, err
	}
	if err := validMove(req.From, req.To); err != nil {
		return ItemResult{}, err
	}
	if req.Qty < 1 || req.Qty > MaxOnHand {
		return ItemResult{}, invalid("qty", "must be 1..%d", int64(MaxOnHand))
	}
	if err := validReason(req.Reason); err != nil {
		return ItemResult{}, err
	}
	w := &request{Op: "move", Store: req.Store, SKU: req.SKU, From: req.From, To: req.To, Qty: req.Qty, Reason: req.Reason}
	r, err := e.write(ctx, e.Partition(req.Store), w, op)
	if err != nil {
		return ItemResult{}, fmt.Errorf("move %s/%s: %w", req.Store, req.SKU, err)
	}
	it, err := r.item()
	if err != nil {
		return ItemResult{}, fmt.Errorf("move %s/%s: %w", req.Store, req.SKU, err)
	}
	return ItemResult{Item: it, Replayed: r.Replayed}, nil
}

// validMove checks a move's states (the Lua script checks them again).
func validMove(from, to string) error {
	if !ValidState(from) {
		return invalid("from", "must be one of available, committed, damaged, quality_control, display")
	}
	if !ValidState(to) {
		return invalid("to", "must be one of available, committed, damaged, quality_control, display")
	}
	if from == to {
		return invalid("to", "must differ from from")
	}
	if (from == StateCommitted || to == StateCommitted) && from != StateAvailable && to != StateAvailable {
		return invalid("to", "committed is reached only from available and left only to available")
	}
	return nil
}

// FulfilRequest hands committed units over at one store, every line or
// none.
type FulfilRequest struct {
	Store string
	// Lines holds 1..MaxLines lines with distinct SKUs, qty 1..MaxQty.
	Lines []Line
	// Reference is free text (an order or delivery number), kept as the
	// events' reason.
	Reference string
}

// FulfilResult holds the items after the fulfilment, in line order.
type FulfilResult struct {
	Items    []Item
	Replayed bool
}

// Fulfil hands committed units over: on_hand and committed drop by each
// line's qty, every line or none (event FULFIL). Errors: *ValidationError,
// ErrNotFound, *InsufficientStockError (a line's item has fewer committed
// units; Available in its shortage is what is committed),
// ErrIdempotencyMismatch, ErrBackpressure, ErrPartitionNotReady.
func (e *Engine) Fulfil(ctx context.Context, req FulfilRequest, op Op) (FulfilResult, error) {
	wl, err := validLines(req.Store, req.Lines, "")
	if err != nil {
		return FulfilResult{}, err
	}
	if err := validText("reference", req.Reference, MaxReasonLen); err != nil {
		return FulfilResult{}, err
	}
	w := &request{Op: "fulfil", Store: req.Store, Lines: wl, Reason: req.Reference}
	r, err := e.write(ctx, e.Partition(req.Store), w, op)
	if err != nil {
		return FulfilResult{}, fmt.Errorf("fulfil at %s: %w", req.Store, err)
	}
	if len(r.Items) != len(req.Lines) {
		return FulfilResult{}, fmt.Errorf("fulfil at %s: script reply: %d items for %d lines", req.Store, len(r.Items), len(req.Lines))
	}
	return FulfilResult{Items: r.Items, Replayed: r.Replayed}, nil
}
