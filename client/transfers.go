package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Transfer statuses.
const (
	TransferInTransit = "in_transit"
	TransferReceived  = "received"
	TransferCancelled = "cancelled"
)

// Transfer brings units to a location, from another one or (From nil)
// from a supplier.
type Transfer struct {
	ID         string         `json:"id"`
	From       *string        `json:"from"`
	To         string         `json:"to"`
	Status     string         `json:"status"`
	Lines      []TransferLine `json:"lines"`
	ExpectedAt *time.Time     `json:"expected_at"`
	Reference  *string        `json:"reference"`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
}

// TransferLine is one SKU of a transfer and what has become of its units.
type TransferLine struct {
	SKU      string `json:"sku"`
	Qty      int64  `json:"qty"`
	Received int64  `json:"received"`
	Damaged  int64  `json:"damaged"`
	Missing  int64  `json:"missing"`
}

// TransferResult is a transfer returned by a call, with whether the
// response was a replay.
type TransferResult struct {
	Transfer
	// Replayed is true when the response was the replay of an earlier one.
	Replayed bool `json:"-"`
}

// TransferRequest creates a transfer. From empty: a supplier's delivery.
type TransferRequest struct {
	From       string     `json:"from,omitempty"`
	To         string     `json:"to"`
	Lines      []Line     `json:"lines"`
	ExpectedAt *time.Time `json:"expected_at,omitempty"`
	Reference  string     `json:"reference,omitempty"`
}

// ReceiveLine is what arrived of one SKU of a transfer.
type ReceiveLine struct {
	SKU      string `json:"sku"`
	Received int64  `json:"received,omitempty"`
	Damaged  int64  `json:"damaged,omitempty"`
	Missing  int64  `json:"missing,omitempty"`
}

// TransferPage is one page of ListTransfers.
type TransferPage struct {
	Transfers []Transfer `json:"transfers"`
	// NextCursor is the cursor of the next page; "" at the end.
	NextCursor string `json:"-"`
}

// TransferFilter selects the transfers ListTransfers reads.
type TransferFilter struct {
	// Store keeps the transfers from or to it; Status those in it.
	Store, Status string
	// Cursor is "" for the first page, then NextCursor.
	Cursor string
	// Limit 0 leaves the server's default.
	Limit int
}

// Promise says when Qty units of a SKU can be promised at a store: Date is
// now when Qty <= Available, the expected arrival that makes it possible
// (Sources lists the transfers it counts on), or nil when never.
type Promise struct {
	Store     string          `json:"store"`
	SKU       string          `json:"sku"`
	Qty       int64           `json:"qty"`
	Available int64           `json:"available"`
	Date      *time.Time      `json:"date"`
	Sources   []PromiseSource `json:"sources"`
}

// PromiseSource is one in-transit transfer a promise counts on.
type PromiseSource struct {
	Transfer   string    `json:"transfer"`
	ExpectedAt time.Time `json:"expected_at"`
	Qty        int64     `json:"qty"`
}

// ChainPromise is a promise for every store carrying a SKU, soonest first.
type ChainPromise struct {
	SKU    string    `json:"sku"`
	Qty    int64     `json:"qty"`
	Stores []Promise `json:"stores"`
}

func (c *Client) transfer(ctx context.Context, method, path string, in any, opts []CallOption) (*TransferResult, error) {
	r, err := c.call(ctx, method, path, nil, in, opts)
	if err != nil {
		return nil, err
	}
	res := &TransferResult{Replayed: r.replayed()}
	if err := decode(r, &res.Transfer); err != nil {
		return nil, err
	}
	return res, nil
}

// CreateTransfer creates a transfer: with From the units leave it at once
// (a shortage is a 409 with Shortages, IsInsufficientStock).
func (c *Client) CreateTransfer(ctx context.Context, in TransferRequest, opts ...CallOption) (*TransferResult, error) {
	return c.transfer(ctx, http.MethodPost, "/v1/transfers", in, opts)
}

// GetTransfer reads a transfer.
func (c *Client) GetTransfer(ctx context.Context, id string) (*Transfer, error) {
	res, err := c.transfer(ctx, http.MethodGet, "/v1/transfers/"+seg(id), nil, nil)
	if err != nil {
		return nil, err
	}
	return &res.Transfer, nil
}

// ReceiveTransfer books what arrived; more than is open, or a transfer not
// in transit, is a 409 (IsConflict).
func (c *Client) ReceiveTransfer(ctx context.Context, id string, lines []ReceiveLine, opts ...CallOption) (*TransferResult, error) {
	return c.transfer(ctx, http.MethodPost, "/v1/transfers/"+seg(id)+"/receive", struct {
		Lines []ReceiveLine `json:"lines"`
	}{lines}, opts)
}

// CancelTransfer cancels a transfer of which nothing was received.
func (c *Client) CancelTransfer(ctx context.Context, id string, opts ...CallOption) (*TransferResult, error) {
	return c.transfer(ctx, http.MethodPost, "/v1/transfers/"+seg(id)+"/cancel", nil, opts)
}

// ListTransfers reads one page of transfers, oldest first.
func (c *Client) ListTransfers(ctx context.Context, f TransferFilter) (*TransferPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"store": f.Store, "status": f.Status, "cursor": f.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	r, err := c.call(ctx, http.MethodGet, "/v1/transfers", q, nil, nil)
	if err != nil {
		return nil, err
	}
	var p struct {
		Transfers  []Transfer `json:"transfers"`
		NextCursor *string    `json:"next_cursor"`
	}
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	out := &TransferPage{Transfers: p.Transfers}
	if p.NextCursor != nil {
		out.NextCursor = *p.NextCursor
	}
	return out, nil
}

// PromiseAt says when qty units of sku can be promised at store.
func (c *Client) PromiseAt(ctx context.Context, store, sku string, qty int64) (*Promise, error) {
	q := url.Values{"qty": {strconv.FormatInt(qty, 10)}}
	r, err := c.call(ctx, http.MethodGet, itemPath(store, sku)+"/promise", q, nil, nil)
	if err != nil {
		return nil, err
	}
	var p Promise
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// PromiseChain says it for every store carrying sku, soonest first.
func (c *Client) PromiseChain(ctx context.Context, sku string, qty int64) (*ChainPromise, error) {
	q := url.Values{"qty": {strconv.FormatInt(qty, 10)}}
	r, err := c.call(ctx, http.MethodGet, "/v1/items/"+seg(sku)+"/promise", q, nil, nil)
	if err != nil {
		return nil, err
	}
	var p ChainPromise
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	return &p, nil
}
