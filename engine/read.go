package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// readRequest is the read script's request (luascripts/read.lua): Op is
// item, skus, items, sku, reservation or stores; the other members are its
// arguments.
type readRequest struct {
	Op            string   `json:"op"`
	Store         string   `json:"store,omitempty"`
	SKU           string   `json:"sku,omitempty"`
	SKUs          []string `json:"skus,omitempty"`
	ReservationID string   `json:"reservation_id,omitempty"`
}

func (e *Engine) read(ctx context.Context, p int, req readRequest) (*result, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	v, err := e.run(ctx, e.scripts.Read, p, string(b))
	if err != nil {
		return nil, err
	}
	return decodeResult(v)
}

// GetItem reads one item. Errors: *ValidationError, ErrNotFound,
// ErrPartitionNotReady.
func (e *Engine) GetItem(ctx context.Context, store, sku string) (Item, error) {
	if err := validStoreSKU(store, sku); err != nil {
		return Item{}, err
	}
	r, err := e.read(ctx, e.Partition(store), readRequest{Op: "item", Store: store, SKU: sku})
	if err != nil {
		return Item{}, fmt.Errorf("get %s/%s: %w", store, sku, err)
	}
	it, err := r.item()
	if err != nil {
		return Item{}, fmt.Errorf("get %s/%s: %w", store, sku, err)
	}
	return it, nil
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
	r, err := e.read(ctx, p, readRequest{Op: "skus", Store: store})
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", store, err)
	}
	skus := r.SKUs
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
	r, err = e.read(ctx, p, readRequest{Op: "items", Store: store, SKUs: page})
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", store, err)
	}
	return append(items, r.Items...), next, nil
}

// Availability is a SKU's stock across every store that carries it.
type Availability struct {
	SKU       string `json:"sku"`
	Available int64  `json:"available"`
	Stores    []Item `json:"stores"`
}

// fanOut runs the read script on every partition in one pipeline (split per
// node on a cluster). A partition whose node lost the script (NOSCRIPT, or
// "Function not found") is read again on its own with run, which loads it
// again.
func (e *Engine) fanOut(ctx context.Context, req readRequest) ([]*result, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	cmds := make([]*redis.Cmd, e.cfg.Partitions)
	fn := e.scripts.function(e.scripts.Read)
	_, _ = e.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for p := range cmds {
			keys, args := []string{e.StreamKey(p)}, e.baseArgs(string(b))
			if fn != nil {
				cmds[p] = pipe.FCall(ctx, fn.name, keys, args...)
			} else {
				cmds[p] = e.scripts.Read.EvalSha(ctx, pipe, keys, args...)
			}
		}
		return nil
	})
	out := make([]*result, len(cmds))
	for p, c := range cmds {
		v, err := c.Result()
		if err != nil && (strings.HasPrefix(err.Error(), "NOSCRIPT") || functionMissing(err) || functionRefused(err)) {
			v, err = e.run(ctx, e.scripts.Read, p, string(b))
		} else if err != nil {
			e.refreshTopology(err)
			err = interpretError(err)
		}
		if err != nil {
			return nil, err
		}
		if out[p], err = decodeResult(v); err != nil {
			return nil, err
		}
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
	replies, err := e.fanOut(ctx, readRequest{Op: "sku", SKU: sku})
	if err != nil {
		return Availability{}, fmt.Errorf("availability of %s: %w", sku, err)
	}
	a := Availability{SKU: sku, Stores: []Item{}}
	for _, r := range replies {
		for _, it := range r.Items {
			a.Stores = append(a.Stores, it)
			a.Available += it.Available
		}
	}
	sort.Slice(a.Stores, func(i, j int) bool { return a.Stores[i].Store < a.Stores[j].Store })
	return a, nil
}

// Stores returns every store that has at least one item, sorted. Errors:
// ErrPartitionNotReady.
func (e *Engine) Stores(ctx context.Context) ([]string, error) {
	replies, err := e.fanOut(ctx, readRequest{Op: "stores"})
	if err != nil {
		return nil, fmt.Errorf("list stores: %w", err)
	}
	out := []string{}
	for _, r := range replies {
		out = append(out, r.Stores...)
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
	r, err := e.read(ctx, p, readRequest{Op: "reservation", ReservationID: id})
	if err != nil {
		return Reservation{}, fmt.Errorf("get reservation %s: %w", id, err)
	}
	if r.Reservation == nil {
		return Reservation{}, fmt.Errorf("get reservation %s: script reply: no reservation", id)
	}
	res := *r.Reservation
	if res.Status == StatusHeld && !e.Now().Before(res.ExpiresAt) {
		// Past expires_at the hold is over, whether or not the sweeper has
		// given its units back yet (it does within seconds).
		res.Status = StatusExpired
	}
	return res, nil
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
