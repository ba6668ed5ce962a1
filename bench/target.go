package bench

import (
	"context"
	"errors"
	"fmt"
)

// Line is one SKU and quantity of a checkout or reservation.
type Line struct {
	SKU string `json:"sku"`
	Qty int64  `json:"qty"`
}

// SeedItem is an item a scenario creates before its load starts.
type SeedItem struct {
	Store, SKU string
	OnHand     int64
}

// Update is one line of a bulk adjustment.
type Update struct {
	Store string `json:"store"`
	SKU   string `json:"sku"`
	Delta int64  `json:"delta"`
}

// ItemState is what a target holds of one item after a run.
type ItemState struct {
	Store    string `json:"store"`
	SKU      string `json:"sku"`
	OnHand   int64  `json:"on_hand"`
	Reserved int64  `json:"reserved"`
	// Version is the item's version; 0 when the target keeps none.
	Version int64 `json:"version"`
	// Found is false when the target has no such item.
	Found bool `json:"found"`
	// Incoming is the units on their way by transfer (the http target;
	// 0 elsewhere), which the ledger check compares.
	Incoming int64 `json:"incoming,omitempty"`
}

// target is one system under load. Every method is safe for concurrent use.
type target interface {
	// Seed creates items (untimed).
	Seed(ctx context.Context, items []SeedItem) error
	// Checkout sells every line or none. It returns nil, errRefused
	// (insufficient stock: nothing changed) or an *opError.
	Checkout(ctx context.Context, store string, lines []Line) error
	// Items reads the state of items for the checker.
	Items(ctx context.Context, refs []SeedItem) ([]ItemState, error)
	// Close releases everything the target made: keys, schemas, servers.
	Close(ctx context.Context) error
}

// fullTarget is a target that runs the mixed and bulk scenarios.
type fullTarget interface {
	target
	// Adjust changes on_hand by delta.
	Adjust(ctx context.Context, store, sku string, delta int64) error
	// Get reads one item (a till's lookup).
	Get(ctx context.Context, store, sku string) error
	// Reserve holds every line or none for ttl and returns the hold's id.
	Reserve(ctx context.Context, store string, lines []Line, ttlSeconds int) (string, error)
	// Commit turns a hold into a sale; Release gives it back. Both return
	// errNotHeld when the hold expired first.
	Commit(ctx context.Context, id string) error
	Release(ctx context.Context, id string) error
	// BulkAdjust applies each update on its own and returns one error (nil
	// on success) per update.
	BulkAdjust(ctx context.Context, updates []Update) ([]error, error)
}

// ledgerChecker is a target with a ledger the checker verifies once it has
// drained: versions 1..N gap-free per item, deltas summing to the state.
type ledgerChecker interface {
	// HasLedger is false when the target runs without one (or the run was
	// not told where it is), so there is nothing to check.
	HasLedger() bool
	CheckLedger(ctx context.Context, items []ItemState) ([]string, error)
}

// persisting is a target with a persister beside it: Persisted counts the
// events it has written to the ledger so far.
type persisting interface {
	Persisted() (int64, bool)
}

// warmer is a target that opens its connections before the load.
type warmer interface {
	Warm(ctx context.Context, workers int)
}

var (
	// errRefused: the request was refused for insufficient stock; nothing
	// changed.
	errRefused = errors.New("refused: insufficient stock")
	// errNotHeld: a reservation was no longer held (it expired).
	errNotHeld = errors.New("reservation not held")
	// errPurchaseLimit: the customer's purchase limit refused the request;
	// nothing changed.
	errPurchaseLimit = errors.New("refused: purchase limit")
)

// opError is a failed operation: its kind for the summary, and whether the
// change may have been applied although the caller saw an error (a timeout,
// a lost reply), which the checker must allow for.
type opError struct {
	Kind    string
	Unknown bool
	Err     error
}

func (e *opError) Error() string {
	u := ""
	if e.Unknown {
		u = " (outcome unknown)"
	}
	return fmt.Sprintf("%s%s: %v", e.Kind, u, e.Err)
}

func (e *opError) Unwrap() error { return e.Err }

// Error kinds.
const (
	kindRefused       = "refused"
	kindTimeout       = "timeout"
	kindUnavailable   = "unavailable"
	kindRateLimited   = "rate_limited"
	kindRetries       = "retries_exhausted"
	kindNotHeld       = "not_held"
	kindPurchaseLimit = "purchase_limit"
	kindHTTP          = "http_status"
	kindTransport     = "transport"
	kindOther         = "other"
)

// classify returns the kind of an operation's error and whether its outcome
// is unknown; "" for success.
func classify(err error) (kind string, unknown bool) {
	var oe *opError
	switch {
	case err == nil:
		return "", false
	case errors.Is(err, errRefused):
		return kindRefused, false
	case errors.Is(err, errNotHeld):
		return kindNotHeld, false
	case errors.Is(err, errPurchaseLimit):
		return kindPurchaseLimit, false
	case errors.As(err, &oe):
		return oe.Kind, oe.Unknown
	case errors.Is(err, context.DeadlineExceeded):
		return kindTimeout, true
	}
	return kindOther, true
}

// The targets' interface implementations, checked at compile time; their
// methods are documented on the interfaces.
var (
	_ fullTarget    = (*engineTarget)(nil)
	_ fullTarget    = (*serverTarget)(nil)
	_ fullTarget    = (*httpClient)(nil)
	_ fullTarget    = (*pgTarget)(nil)
	_ target        = (*bareTarget)(nil)
	_ ledgerChecker = (*engineTarget)(nil)
	_ ledgerChecker = (*serverTarget)(nil)
	_ ledgerChecker = (*httpClient)(nil)
	_ ledgerChecker = (*pgTarget)(nil)
	_ ledgerChecker = (*bareTarget)(nil)
	_ persisting    = (*engineTarget)(nil)
	_ persisting    = (*serverTarget)(nil)
	_ warmer        = (*httpClient)(nil)
)
