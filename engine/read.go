package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

func (e *Engine) read(ctx context.Context, p int, args ...any) (*reply, error) {
	res, err := e.run(ctx, e.scripts.Read, p, args...)
	if err != nil {
		return nil, err
	}
	arr, ok := res.([]any)
	if !ok {
		return nil, fmt.Errorf("read: unexpected reply %T", res)
	}
	return &reply{a: arr}, nil
}

// GetItem reads one item. Errors: *ValidationError, ErrNotFound,
// ErrPartitionNotReady.
func (e *Engine) GetItem(ctx context.Context, store, sku string) (Item, error) {
	if err := validStoreSKU(store, sku); err != nil {
		return Item{}, err
	}
	r, err := e.read(ctx, e.Partition(store), "item", store, sku)
	if err != nil {
		return Item{}, fmt.Errorf("get %s/%s: %w", store, sku, err)
	}
	it := r.item()
	return it, r.err
}

// MaxListLimit bounds one page of ListItems.
const MaxListLimit = 1000

// ListItems returns up to limit items of a store in SKU order, after the SKU
// cursor (empty: from the start), and the cursor of the next page (empty
// when this is the last). It reads the store's SKU list, so a page costs
// O(items in the store); it is for browsing, not the hot path. Errors:
// *ValidationError, ErrPartitionNotReady.
func (e *Engine) ListItems(ctx context.Context, store, cursor string, limit int) ([]Item, string, error) {
	if !ValidID(store) {
		return nil, "", invalid("store", "must match %s", idRE)
	}
	if cursor != "" && !ValidID(cursor) {
		return nil, "", invalid("cursor", "malformed")
	}
	if limit < 1 || limit > MaxListLimit {
		return nil, "", invalid("limit", "must be 1..%d", MaxListLimit)
	}
	p := e.Partition(store)
	r, err := e.read(ctx, p, "skus", store)
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", store, err)
	}
	skus := make([]string, 0, len(r.a))
	for r.more() {
		skus = append(skus, r.str())
	}
	sort.Strings(skus)
	start := sort.SearchStrings(skus, cursor)
	if start < len(skus) && skus[start] == cursor {
		start++
	}
	page := skus[start:]
	next := ""
	if len(page) > limit {
		page = page[:limit]
		next = page[limit-1]
	}
	items := []Item{}
	if len(page) == 0 {
		return items, next, nil
	}
	args := make([]any, 0, len(page)+2)
	args = append(args, "items", store)
	for _, s := range page {
		args = append(args, s)
	}
	r, err = e.read(ctx, p, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", store, err)
	}
	for r.more() {
		items = append(items, r.item())
	}
	return items, next, r.err
}

// Availability is a SKU's stock across every store that carries it.
type Availability struct {
	SKU       string `json:"sku"`
	Available int64  `json:"available"`
	Stores    []Item `json:"stores"`
}

// fanOut runs the read script on every partition in one pipeline (split per
// node on a cluster). A partition whose node lost the script (NOSCRIPT) is
// read again on its own with EVAL, which also reloads it.
func (e *Engine) fanOut(ctx context.Context, args ...any) ([]*reply, error) {
	cmds := make([]*redis.Cmd, e.cfg.Partitions)
	_, _ = e.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for p := range cmds {
			cmds[p] = e.scripts.Read.EvalSha(ctx, pipe, []string{e.StreamKey(p)}, e.baseArgs(args...)...)
		}
		return nil
	})
	out := make([]*reply, len(cmds))
	for p, c := range cmds {
		res, err := c.Result()
		if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			res, err = e.run(ctx, e.scripts.Read, p, args...)
		} else if err != nil {
			e.refreshTopology(err)
			err = interpretError(err)
		}
		if err != nil {
			return nil, err
		}
		arr, ok := res.([]any)
		if !ok {
			return nil, fmt.Errorf("read: unexpected reply %T", res)
		}
		out[p] = &reply{a: arr}
	}
	return out, nil
}

// Availability returns a SKU's stock at every store that carries it, in
// store order. Errors: *ValidationError, ErrPartitionNotReady (some
// partition is being rebuilt, so the answer would be incomplete).
func (e *Engine) Availability(ctx context.Context, sku string) (Availability, error) {
	if !ValidID(sku) {
		return Availability{}, invalid("sku", "must match %s", idRE)
	}
	replies, err := e.fanOut(ctx, "sku", sku)
	if err != nil {
		return Availability{}, fmt.Errorf("availability of %s: %w", sku, err)
	}
	a := Availability{SKU: sku, Stores: []Item{}}
	for _, r := range replies {
		for r.more() {
			it := r.item()
			a.Stores = append(a.Stores, it)
			a.Available += it.Available
		}
		if r.err != nil {
			return Availability{}, r.err
		}
	}
	sort.Slice(a.Stores, func(i, j int) bool { return a.Stores[i].Store < a.Stores[j].Store })
	return a, nil
}

// Stores returns every store that has at least one item, sorted. Errors:
// ErrPartitionNotReady.
func (e *Engine) Stores(ctx context.Context) ([]string, error) {
	replies, err := e.fanOut(ctx, "stores")
	if err != nil {
		return nil, fmt.Errorf("list stores: %w", err)
	}
	out := []string{}
	for _, r := range replies {
		for r.more() {
			out = append(out, r.str())
		}
	}
	sort.Strings(out)
	return out, nil
}

// GetReservation reads a reservation. A hold past its expires_at reads as
// expired at once. Errors: *ValidationError, ErrNotFound,
// ErrPartitionNotReady.
func (e *Engine) GetReservation(ctx context.Context, id string) (Reservation, error) {
	p, err := e.ReservationPartition(id)
	if err != nil {
		return Reservation{}, err
	}
	r, err := e.read(ctx, p, "reservation", id)
	if err != nil {
		return Reservation{}, fmt.Errorf("get reservation %s: %w", id, err)
	}
	res := r.reservation()
	if r.err == nil && res.Status == StatusHeld && !e.Now().Before(res.ExpiresAt) {
		// Past expires_at the hold is over, whether or not the sweeper has
		// given its units back yet (it does within seconds).
		res.Status = StatusExpired
	}
	return res, r.err
}

// IsUnavailable reports whether err means the stock service cannot answer
// now but may soon (503 with Retry-After): a partition being rebuilt,
// backpressure, Redis unreachable, slow, loading or failing over. Domain
// errors and unrecognised errors (bugs) are not.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrPartitionNotReady) || errors.Is(err, ErrBackpressure) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrClosed) {
		return true
	}
	if errors.Is(err, context.Canceled) || isDomain(err) {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return retryable(rerr)
	}
	var nerr net.Error
	if errors.As(err, &nerr) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func isDomain(err error) bool {
	var (
		ise *InsufficientStockError
		ple *PurchaseLimitError
	)
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrVersionMismatch) || errors.Is(err, ErrIdempotencyMismatch) ||
		errors.Is(err, ErrReservationNotHeld) || errors.Is(err, ErrCustomerRequired) || errors.Is(err, ErrConflict) ||
		errors.Is(err, ErrCorrupt) || errors.Is(err, ErrAlreadyApplied) || errors.As(err, &ise) || errors.As(err, &ple)
}
