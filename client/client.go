// Package client is a Go client of the inventory HTTP API (/v1): typed
// methods for every route, problem+json answers as *Problem errors, an
// Idempotency-Key on every POST and PUT that is reused by each retry of
// the call, and retries of transport errors and of 503 and 429 answers
// that honour Retry-After.
//
// It depends on the standard library and, for the WebSocket feed,
// github.com/coder/websocket only, so a caller does not pull in the engine.
//
//	c := client.New("http://localhost:8080", token)
//	res, err := c.Checkout(ctx, "s1", client.CheckoutRequest{Lines: []client.Line{{SKU: "lamp", Qty: 1}}})
//	if client.IsInsufficientStock(err) {
//		for _, s := range client.ProblemOf(err).Shortages { … }
//	}
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of the retry options.
const (
	DefaultMaxAttempts = 4
	DefaultBackoffCap  = 5 * time.Second
	// baseBackoff is the wait before the first retry of a transport error;
	// it doubles with each attempt, up to the cap.
	baseBackoff = 50 * time.Millisecond
)

// HeaderIdempotencyKey and HeaderReplayed are the headers of idempotent
// requests: the key the client sends, and the server's mark on a response
// it replayed.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderReplayed       = "Idempotent-Replayed"
)

// Client calls one inventory API with one token. It is safe for concurrent
// use.
type Client struct {
	base        string
	token       string
	hc          *http.Client
	maxAttempts int
	backoffCap  time.Duration
	feedIdle    time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends the requests through hc (default
// http.DefaultClient). A Timeout on hc also ends Events streams.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithMaxAttempts sets how many times a call is sent at most, the first
// included (default DefaultMaxAttempts; 1: never retry).
func WithMaxAttempts(n int) Option {
	return func(c *Client) {
		if n < 1 {
			n = 1
		}
		c.maxAttempts = n
	}
}

// WithBackoffCap bounds the wait between two attempts, Retry-After
// included (default DefaultBackoffCap).
func WithBackoffCap(d time.Duration) Option { return func(c *Client) { c.backoffCap = d } }

// New returns a client of the API at baseURL ("http://host:port", without
// /v1) that authenticates with token.
func New(baseURL, token string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), token: token, hc: http.DefaultClient,
		maxAttempts: DefaultMaxAttempts, backoffCap: DefaultBackoffCap, feedIdle: DefaultFeedIdleTimeout}
	for _, o := range opts {
		o(c)
	}
	return c
}

// CallOption sets a header of one call.
type CallOption func(*callOpts)

type callOpts struct {
	key         string
	ifMatch     string
	ifNoneMatch string
	// noKey sends a write without a key (WithoutIdempotencyKey).
	noKey bool
	// raw answers a 429 or 503 of the last attempt as a response (Send).
	raw bool
}

// WithIdempotencyKey sends key as the call's Idempotency-Key (1–255
// printable ASCII) instead of a random one: a retry of the same operation
// in a later call, even from another process, then applies it once.
func WithIdempotencyKey(key string) CallOption { return func(o *callOpts) { o.key = key } }

// IfMatch makes PutItem or Adjust fail with 412 unless the item is at
// version.
func IfMatch(version int64) CallOption {
	return func(o *callOpts) { o.ifMatch = strconv.Quote(strconv.FormatInt(version, 10)) }
}

// IfNoneMatch makes GetItem answer NotModified when the item's ETag is
// still etag (as ItemResult.ETag gave it); IfNoneMatch("*") makes PutItem
// fail with 412 when the item exists.
func IfNoneMatch(etag string) CallOption { return func(o *callOpts) { o.ifNoneMatch = etag } }

type ctxKey struct{}

// ContextWithIdempotencyKey returns a context whose calls send key as
// their Idempotency-Key, unless a WithIdempotencyKey option says otherwise.
func ContextWithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, ctxKey{}, key)
}

// NewIdempotencyKey returns a random key (32 hex digits).
func NewIdempotencyKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// response is a finished answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) replayed() bool { return r.header.Get(HeaderReplayed) == "true" }

// call sends one API call, retrying as the package says, and returns a
// 2xx or 304 response; any other status is a *Problem.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, in any, opts []CallOption) (*response, error) {
	res, err := c.send(ctx, method, path, query, in, nil, opts)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("inventory API: %s %s: reading the response: %w", method, path, err)
	}
	r := &response{status: res.StatusCode, header: res.Header, body: b}
	if res.StatusCode >= 300 && res.StatusCode != http.StatusNotModified {
		return nil, problemFrom(r)
	}
	return r, nil
}

// send sends one API call with its retries and returns the response of the
// last attempt: one with a 2xx, 3xx or a status not retried, its body
// unread; a retried status that ran out of attempts comes back as a
// *Problem.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, in any, hdr http.Header, opts []CallOption) (*http.Response, error) {
	var o callOpts
	for _, f := range opts {
		f(&o)
	}
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return nil, fmt.Errorf("inventory API: %s %s: encoding the request: %w", method, path, err)
		}
	}
	key := ""
	if (method == http.MethodPost || method == http.MethodPut) && !o.noKey {
		key = o.key
		if key == "" {
			key, _ = ctx.Value(ctxKey{}).(string)
		}
		if key == "" {
			key = NewIdempotencyKey()
		}
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	for attempt := 1; ; attempt++ {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		rq, err := http.NewRequestWithContext(ctx, method, u, rd)
		if err != nil {
			return nil, fmt.Errorf("inventory API: %w", err)
		}
		for k, v := range hdr {
			rq.Header[k] = v
		}
		if c.token != "" {
			rq.Header.Set("Authorization", "Bearer "+c.token)
		}
		if body != nil {
			rq.Header.Set("Content-Type", "application/json")
		}
		if key != "" {
			rq.Header.Set(HeaderIdempotencyKey, key)
		}
		if o.ifMatch != "" {
			rq.Header.Set("If-Match", o.ifMatch)
		}
		if o.ifNoneMatch != "" {
			rq.Header.Set("If-None-Match", o.ifNoneMatch)
		}
		res, err := c.hc.Do(rq)
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil || attempt >= c.maxAttempts {
				return nil, fmt.Errorf("inventory API: %s %s: %w", method, path, err)
			}
			wait = c.backoff(attempt)
		case res.StatusCode == http.StatusServiceUnavailable || res.StatusCode == http.StatusTooManyRequests:
			if attempt >= c.maxAttempts && o.raw {
				return res, nil
			}
			if attempt >= c.maxAttempts {
				b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
				res.Body.Close()
				return nil, problemFrom(&response{status: res.StatusCode, header: res.Header, body: b})
			}
			wait = c.backoff(attempt)
			if ra, ok := retryAfter(res.Header); ok {
				wait = min(ra, c.backoffCap)
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
			res.Body.Close()
		default:
			return res, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("inventory API: %s %s: %w", method, path, ctx.Err())
		case <-t.C:
		}
	}
}

// backoff is the wait after the attempt-th attempt: exponential with full
// jitter in its upper half, up to the cap.
func (c *Client) backoff(attempt int) time.Duration {
	d := baseBackoff << min(attempt-1, 20)
	if d > c.backoffCap {
		d = c.backoffCap
	}
	if d <= 0 {
		return 0
	}
	return d/2 + mrand.N(d/2+1)
}

// retryAfter reads Retry-After in seconds or as an HTTP date.
func retryAfter(h http.Header) (time.Duration, bool) {
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

// problemFrom makes the error of a response that is not a success: its
// problem+json body, or a Problem made of its status.
func problemFrom(r *response) error {
	p := &Problem{}
	mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
	if mt != "application/problem+json" || json.Unmarshal(r.body, p) != nil || p.Status == 0 {
		detail := strings.TrimSpace(string(r.body))
		if len(detail) > 512 {
			detail = detail[:512]
		}
		p = &Problem{Type: "about:blank", Title: http.StatusText(r.status), Status: r.status, Detail: detail}
	}
	if d, ok := retryAfter(r.header); ok {
		p.RetryAfter = d
	}
	return p
}

// decode reads a JSON response body into out.
func decode(r *response, out any) error {
	if err := json.Unmarshal(r.body, out); err != nil {
		return fmt.Errorf("inventory API: decoding the response: %w", err)
	}
	return nil
}

func seg(s string) string { return url.PathEscape(s) }

func itemPath(store, sku string) string {
	return "/v1/stores/" + seg(store) + "/items/" + seg(sku)
}

func (c *Client) itemResult(r *response) (*ItemResult, error) {
	res := &ItemResult{ETag: r.header.Get("ETag"), Replayed: r.replayed(),
		Created: r.status == http.StatusCreated, NotModified: r.status == http.StatusNotModified}
	if res.NotModified {
		return res, nil
	}
	if err := decode(r, &res.Item); err != nil {
		return nil, err
	}
	return res, nil
}

// PutItem sets an item's absolute count, creating it if absent
// (ItemResult.Created). IfMatch and IfNoneMatch("*") make it conditional.
func (c *Client) PutItem(ctx context.Context, store, sku string, in SetItem, opts ...CallOption) (*ItemResult, error) {
	r, err := c.call(ctx, http.MethodPut, itemPath(store, sku), nil, in, opts)
	if err != nil {
		return nil, err
	}
	return c.itemResult(r)
}

// GetItem reads one item. With IfNoneMatch(etag) it answers NotModified
// when the item is unchanged.
func (c *Client) GetItem(ctx context.Context, store, sku string, opts ...CallOption) (*ItemResult, error) {
	r, err := c.call(ctx, http.MethodGet, itemPath(store, sku), nil, nil, opts)
	if err != nil {
		return nil, err
	}
	return c.itemResult(r)
}

// ListItems reads one page of a store's items: cursor is "" for the first
// page, then the page's NextCursor until it is ""; limit 0 leaves the
// server's default.
func (c *Client) ListItems(ctx context.Context, store, cursor string, limit int) (*ItemPage, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	r, err := c.call(ctx, http.MethodGet, "/v1/stores/"+seg(store)+"/items", q, nil, nil)
	if err != nil {
		return nil, err
	}
	var p ItemPage
	if err := decode(r, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Adjust changes an item's on_hand by in.Delta. IfMatch makes it
// conditional on the item's version.
func (c *Client) Adjust(ctx context.Context, store, sku string, in Adjustment, opts ...CallOption) (*ItemResult, error) {
	r, err := c.call(ctx, http.MethodPost, itemPath(store, sku)+"/adjust", nil, in, opts)
	if err != nil {
		return nil, err
	}
	return c.itemResult(r)
}

// Checkout sells every line or none: a shortage is a 409 problem with
// Shortages (IsInsufficientStock), a purchase limit one with SKU, Limit and
// Already (IsPurchaseLimit).
func (c *Client) Checkout(ctx context.Context, store string, in CheckoutRequest, opts ...CallOption) (*CheckoutResult, error) {
	r, err := c.call(ctx, http.MethodPost, "/v1/stores/"+seg(store)+"/checkout", nil, in, opts)
	if err != nil {
		return nil, err
	}
	res := &CheckoutResult{Replayed: r.replayed()}
	if err := decode(r, res); err != nil {
		return nil, err
	}
	return res, nil
}

func (c *Client) reservation(ctx context.Context, method, path string, in any, opts []CallOption) (*ReservationResult, error) {
	r, err := c.call(ctx, method, path, nil, in, opts)
	if err != nil {
		return nil, err
	}
	res := &ReservationResult{Replayed: r.replayed()}
	if err := decode(r, &res.Reservation); err != nil {
		return nil, err
	}
	return res, nil
}

// Reserve holds every line or none until Commit, Release or the TTL.
func (c *Client) Reserve(ctx context.Context, store string, in ReserveRequest, opts ...CallOption) (*ReservationResult, error) {
	return c.reservation(ctx, http.MethodPost, "/v1/stores/"+seg(store)+"/reservations", in, opts)
}

// GetReservation reads a reservation.
func (c *Client) GetReservation(ctx context.Context, id string) (*Reservation, error) {
	res, err := c.reservation(ctx, http.MethodGet, "/v1/reservations/"+seg(id), nil, nil)
	if err != nil {
		return nil, err
	}
	return &res.Reservation, nil
}

// Commit turns a held reservation into a sale; one not held is a 409
// problem with ReservationStatus (IsNotHeld).
func (c *Client) Commit(ctx context.Context, id string, opts ...CallOption) (*ReservationResult, error) {
	return c.reservation(ctx, http.MethodPost, "/v1/reservations/"+seg(id)+"/commit", nil, opts)
}

// CommitLater turns a held reservation into a sale to be handed over
// later: its units move from reserved to committed until Fulfil.
func (c *Client) CommitLater(ctx context.Context, id string, opts ...CallOption) (*ReservationResult, error) {
	return c.reservation(ctx, http.MethodPost, "/v1/reservations/"+seg(id)+"/commit",
		struct {
			Fulfilment string `json:"fulfilment"`
		}{FulfilmentLater}, opts)
}

// Move moves units of an item between states, on_hand unchanged.
func (c *Client) Move(ctx context.Context, store, sku string, in Move, opts ...CallOption) (*ItemResult, error) {
	r, err := c.call(ctx, http.MethodPost, itemPath(store, sku)+"/moves", nil, in, opts)
	if err != nil {
		return nil, err
	}
	return c.itemResult(r)
}

// Fulfil hands committed units over, every line or none: on_hand and
// committed drop by each line's qty. The result holds the items after it,
// in line order.
func (c *Client) Fulfil(ctx context.Context, store string, in FulfilRequest, opts ...CallOption) (*CheckoutResult, error) {
	r, err := c.call(ctx, http.MethodPost, "/v1/stores/"+seg(store)+"/fulfilments", nil, in, opts)
	if err != nil {
		return nil, err
	}
	res := &CheckoutResult{Replayed: r.replayed()}
	if err := decode(r, res); err != nil {
		return nil, err
	}
	return res, nil
}

// Release gives a held reservation's stock back.
func (c *Client) Release(ctx context.Context, id string, opts ...CallOption) (*ReservationResult, error) {
	return c.reservation(ctx, http.MethodPost, "/v1/reservations/"+seg(id)+"/release", nil, opts)
}

// BulkAdjust applies up to 1000 adjustments, each on its own: the call
// succeeds as a whole and each line has its own Status and Item or Error.
func (c *Client) BulkAdjust(ctx context.Context, updates []BulkUpdate, opts ...CallOption) (*BulkResult, error) {
	r, err := c.call(ctx, http.MethodPost, "/v1/adjustments", nil, struct {
		Updates []BulkUpdate `json:"updates"`
	}{updates}, opts)
	if err != nil {
		return nil, err
	}
	res := &BulkResult{Replayed: r.replayed()}
	if err := decode(r, res); err != nil {
		return nil, err
	}
	return res, nil
}

// SetItems creates or sets up to 10,000 items (PUT /v1/items). Every line
// is validated first: one invalid line refuses the whole call with a
// *Problem (400, naming items[i] and its member) and nothing is applied.
// Otherwise each line applies on its own and has its own Status (201
// created, 200 set) and Item, or its Error (409 when on_hand would fall
// below reserved).
func (c *Client) SetItems(ctx context.Context, items []BulkSetItem, opts ...CallOption) (*BulkResult, error) {
	r, err := c.call(ctx, http.MethodPut, "/v1/items", nil, struct {
		Items []BulkSetItem `json:"items"`
	}{items}, opts)
	if err != nil {
		return nil, err
	}
	res := &BulkResult{Replayed: r.replayed()}
	if err := decode(r, res); err != nil {
		return nil, err
	}
	return res, nil
}

// Availability reads a SKU's stock across every store that carries it.
func (c *Client) Availability(ctx context.Context, sku string) (*Availability, error) {
	r, err := c.call(ctx, http.MethodGet, "/v1/items/"+seg(sku), nil, nil, nil)
	if err != nil {
		return nil, err
	}
	var a Availability
	if err := decode(r, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// History reads an item's ledger, newest first as the server sends it;
// limit 0 leaves the server's default.
func (c *Client) History(ctx context.Context, store, sku string, limit int) ([]Event, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	r, err := c.call(ctx, http.MethodGet, itemPath(store, sku)+"/history", q, nil, nil)
	if err != nil {
		return nil, err
	}
	var h struct {
		Events []Event `json:"events"`
	}
	if err := decode(r, &h); err != nil {
		return nil, err
	}
	return h.Events, nil
}

// Reconcile modes.
const (
	ReconcileCheck  = "check"
	ReconcileRepair = "repair"
)

// Reconcile runs a reconciliation now (ReconcileCheck or ReconcileRepair)
// and returns its report as the server sent it.
func (c *Client) Reconcile(ctx context.Context, mode string, opts ...CallOption) (json.RawMessage, error) {
	q := url.Values{}
	if mode != "" {
		q.Set("mode", mode)
	}
	r, err := c.call(ctx, http.MethodPost, "/v1/admin/reconcile", q, nil, opts)
	if err != nil {
		return nil, err
	}
	if !json.Valid(r.body) {
		return nil, errors.New("inventory API: the reconcile report is not JSON")
	}
	return json.RawMessage(r.body), nil
}

// ReconcileCancel is the answer of CancelReconcile.
type ReconcileCancel struct {
	RunID int64 `json:"run_id"`
	// CancelRequestedAt is when the run was first asked to stop.
	CancelRequestedAt time.Time `json:"cancel_requested_at"`
}

// CancelReconcile asks the reconciliation run with this id (the run_id of
// its report, or of GET /v1/admin/operations' runs) to stop, in whichever
// process it runs; it stops within about a second and records what it found
// until then. Asking again is harmless. A *Problem of status 404 for an
// unknown run, 409 for a run that is over.
func (c *Client) CancelReconcile(ctx context.Context, run int64, opts ...CallOption) (ReconcileCancel, error) {
	var out ReconcileCancel
	r, err := c.call(ctx, http.MethodPost, "/v1/admin/reconcile/"+strconv.FormatInt(run, 10)+"/cancel", nil, nil, opts)
	if err != nil {
		return out, err
	}
	return out, decode(r, &out)
}

// Stores lists the stores the token may see.
func (c *Client) Stores(ctx context.Context) ([]string, error) {
	r, err := c.call(ctx, http.MethodGet, "/v1/stores", nil, nil, nil)
	if err != nil {
		return nil, err
	}
	var s struct {
		Stores []string `json:"stores"`
	}
	if err := decode(r, &s); err != nil {
		return nil, err
	}
	return s.Stores, nil
}
