package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Domain errors. Test for them with errors.Is / errors.As.
var (
	// ErrNotFound: the item or reservation does not exist.
	ErrNotFound = errors.New("not found")
	// ErrVersionMismatch: an expected version did not match; see
	// *VersionMismatchError for the current one.
	ErrVersionMismatch = errors.New("version mismatch")
	// ErrIdempotencyMismatch: the idempotency key was used before, by the same
	// principal, for a different request.
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")
	// ErrReservationNotHeld: the reservation is committed, released or
	// expired, so the operation cannot apply.
	ErrReservationNotHeld = errors.New("reservation not held")
	// ErrBackpressure: the partition's event stream is past its high
	// watermark (the ledger is behind); retry later.
	ErrBackpressure = errors.New("backpressure: event stream past its high watermark")
	// ErrPartitionNotReady: the partition has no readiness marker (Redis lost
	// its data) and is waiting to be rebuilt from the ledger; retry later.
	ErrPartitionNotReady = errors.New("partition not ready")
	// ErrRedisFull: Redis is past its maxmemory (with the required
	// noeviction policy it refuses writes); nothing was changed. Retry once
	// memory is freed or maxmemory raised; reads still answer.
	ErrRedisFull = errors.New("redis is out of memory")
	// ErrCustomerRequired: a line's item has a purchase limit, so the request
	// must name its customer.
	ErrCustomerRequired = errors.New("customer required: item has a purchase limit")
	// ErrConflict: the request conflicts with existing state (for example an
	// on_hand below what is reserved, or a reservation id already taken).
	ErrConflict = errors.New("conflict")
	// ErrCorrupt: stored state breaks an invariant; nothing was changed.
	ErrCorrupt = errors.New("stored state is inconsistent")
	// ErrAlreadyApplied: the idempotency key's request was applied before
	// Redis lost its data; the ledger knows it was applied, but its first
	// response is gone. Nothing was changed now.
	ErrAlreadyApplied = errors.New("request already applied; its first response was lost with Redis' data")
)

// ValidationError reports an invalid request field. Nothing was changed.
type ValidationError struct {
	Field string
	Msg   string
}

func (e *ValidationError) Error() string {
	if e.Msg == "" {
		return "invalid " + e.Field
	}
	return "invalid " + e.Field + ": " + e.Msg
}

func invalid(field, format string, a ...any) error {
	return &ValidationError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// Shortage is one line that could not be served.
type Shortage struct {
	SKU       string `json:"sku"`
	Requested int64  `json:"requested"`
	Available int64  `json:"available"`
}

// InsufficientStockError reports every line whose request exceeds what is
// available. Nothing was changed.
type InsufficientStockError struct {
	Shortages []Shortage
}

func (e *InsufficientStockError) Error() string {
	parts := make([]string, len(e.Shortages))
	for i, s := range e.Shortages {
		parts[i] = fmt.Sprintf("%s requested %d available %d", s.SKU, s.Requested, s.Available)
	}
	return "insufficient stock: " + strings.Join(parts, "; ")
}

// PurchaseLimitError reports a line that would take the customer past the
// item's max_per_customer. Nothing was changed.
type PurchaseLimitError struct {
	SKU     string `json:"sku"`
	Limit   int64  `json:"limit"`
	Already int64  `json:"already"`
}

func (e *PurchaseLimitError) Error() string {
	return fmt.Sprintf("purchase limit: %s allows %d per customer, customer already has %d", e.SKU, e.Limit, e.Already)
}

// VersionMismatchError carries the item's current version (0: absent). It
// matches ErrVersionMismatch with errors.Is.
type VersionMismatchError struct {
	Current int64
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("version mismatch: current version %d", e.Current)
}

// Is reports whether target is ErrVersionMismatch.
func (e *VersionMismatchError) Is(target error) bool { return target == ErrVersionMismatch }

// NotFoundError names what was not found. It matches ErrNotFound.
type NotFoundError struct {
	What string
}

func (e *NotFoundError) Error() string { return "not found: " + e.What }

// Is reports whether target is ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// NotHeldError carries the reservation's status. It matches
// ErrReservationNotHeld.
type NotHeldError struct {
	Status string
}

func (e *NotHeldError) Error() string { return "reservation not held: " + e.Status }

// Is reports whether target is ErrReservationNotHeld.
func (e *NotHeldError) Is(target error) bool { return target == ErrReservationNotHeld }

// interpretError maps a script's error reply ("CODE detail") to a domain
// error. Errors that are not script replies are returned unchanged.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if i := strings.Index(msg, "CORRUPT "); i > 0 {
		// raised with error() deep in a script: "ERR user_script:…: CORRUPT …"
		return fmt.Errorf("%w: %s", ErrCorrupt, msg[i+len("CORRUPT "):])
	}
	if strings.HasPrefix(msg, "OOM ") {
		// Redis refused the call, or (EVALSHA) a script's first write, past
		// maxmemory: "OOM command not allowed when used memory > 'maxmemory'."
		return fmt.Errorf("%w: %s", ErrRedisFull, msg)
	}
	code, detail, _ := strings.Cut(msg, " ")
	return interpretCode(code, detail, err)
}

func interpretCode(code, detail string, orig error) error {
	switch code {
	case "NOT_READY":
		return ErrPartitionNotReady
	case "BACKPRESSURE":
		return ErrBackpressure
	case "IDEMPOTENCY_MISMATCH":
		return ErrIdempotencyMismatch
	case "ALREADY_APPLIED":
		return ErrAlreadyApplied
	case "NOT_FOUND":
		return &NotFoundError{What: detail}
	case "VERSION_MISMATCH":
		v, _ := strconv.ParseInt(detail, 10, 64)
		return &VersionMismatchError{Current: v}
	case "NOT_HELD":
		return &NotHeldError{Status: detail}
	case "CUSTOMER_REQUIRED":
		return fmt.Errorf("%w (%s)", ErrCustomerRequired, detail)
	case "INVALID":
		field, msg, _ := strings.Cut(detail, ": ")
		return &ValidationError{Field: field, Msg: msg}
	case "INSUFFICIENT":
		var s []Shortage
		if err := json.Unmarshal([]byte(detail), &s); err != nil {
			return fmt.Errorf("parse shortages %q: %w", detail, err)
		}
		return &InsufficientStockError{Shortages: s}
	case "BELOW_RESERVED":
		var s []Shortage
		_ = json.Unmarshal([]byte(detail), &s)
		if len(s) == 1 {
			return fmt.Errorf("%w: on_hand %d is below the %d units held of %s", ErrConflict, s[0].Available, s[0].Requested, s[0].SKU)
		}
		return fmt.Errorf("%w: on_hand below reserved", ErrConflict)
	case "PURCHASE_LIMIT":
		var p PurchaseLimitError
		if err := json.Unmarshal([]byte(detail), &p); err != nil {
			return fmt.Errorf("parse purchase limit %q: %w", detail, err)
		}
		return &p
	case "CONFLICT":
		return fmt.Errorf("%w: %s", ErrConflict, detail)
	case "TRANSFER_STATE":
		return &TransferStateError{Status: detail}
	case "OVER_RECEIPT":
		var o []OverReceipt
		if err := json.Unmarshal([]byte(detail), &o); err != nil {
			return fmt.Errorf("parse over-receipt %q: %w", detail, err)
		}
		return &OverReceiptError{Lines: o}
	case "CORRUPT":
		return fmt.Errorf("%w: %s", ErrCorrupt, detail)
	case "OOM":
		return fmt.Errorf("%w: %s", ErrRedisFull, detail)
	}
	return orig
}
