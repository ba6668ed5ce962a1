package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/shelfline/inventory/client"
)

// httpClient drives the HTTP API (docs/design.md §12) of a server at base
// through the Go client (client/) with a bearer token, over keep-alive
// connections, one per worker. The measured calls (api) are sent once,
// without an Idempotency-Key unless the plan asks for keys (the runner then
// sends its own and retries itself), so every attempt is timed and tallied
// by the harness; the untimed ones (seeding, reading back: slow) wait out
// 429 and 503 with the client's retries.
type httpClient struct {
	base   string
	auth   string // "Bearer <token>", for wrk
	api    *client.Client
	slow   *client.Client
	ledger *pgLedger // the server's ledger, when the run was told its schema
}

// newHTTPClient returns a client of the API at base with up to workers+64
// keep-alive connections; timeout bounds each call (0: 30s).
func newHTTPClient(base, token string, workers int, timeout time.Duration) *httpClient {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	conns := client.WithMaxConns(workers + 64)
	return &httpClient{base: strings.TrimRight(base, "/"), auth: "Bearer " + token,
		api: client.New(base, token, conns, client.WithTimeout(timeout), client.WithMaxAttempts(1)),
		// About a minute of retries, as the harness always waited.
		slow: client.New(base, token, conns, client.WithTimeout(timeout), client.WithMaxAttempts(40), client.WithBackoffCap(2*time.Second)),
	}
}

// closeIdle closes the idle connections of both clients.
func (c *httpClient) closeIdle() {
	c.api.CloseIdleConnections()
	c.slow.CloseIdleConnections()
}

// response is a request's status and body.
type response struct {
	status int
	body   []byte
}

// noKey sends a measured write without an Idempotency-Key.
var noKey = client.WithoutIdempotencyKey()

// doKey sends one request, with an Idempotency-Key header when key is not
// empty; a body of nil sends none. Transport failures come back as *opError
// with the outcome unknown when the request may have been a write that
// landed.
func (c *httpClient) doKey(ctx context.Context, method, path string, body any, key string) (response, error) {
	opt := noKey
	if key != "" {
		opt = client.WithIdempotencyKey(key)
	}
	a, err := c.api.Send(ctx, method, path, body, opt)
	if err != nil {
		return response{}, transportErr(err, method != http.MethodGet)
	}
	return response{status: a.Status, body: a.Body}, nil
}

// transportErr is the harness's error of a call that got no answer.
func transportErr(err error, write bool) error {
	kind := kindTransport
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		kind = kindTimeout
	}
	return &opError{Kind: kind, Unknown: write, Err: err}
}

// harnessErr maps an error of a typed client call to the harness's kinds,
// as statusErr does an answer.
func harnessErr(err error, write bool) error {
	if err == nil {
		return nil
	}
	if p := client.ProblemOf(err); p != nil {
		return problemErr(p, write)
	}
	return transportErr(err, write)
}

func problemErr(p *client.Problem, write bool) error {
	return statusErr(response{status: p.Status, body: []byte(p.Type + " " + p.Detail)}, write)
}

// statusErr maps a non-2xx answer to the harness's kinds.
func statusErr(r response, write bool) error {
	switch {
	case r.status >= 200 && r.status < 300:
		return nil
	case r.status == http.StatusConflict && bytes.Contains(r.body, []byte("insufficient-stock")):
		return errRefused
	case r.status == http.StatusConflict && bytes.Contains(r.body, []byte("reservation-not-held")):
		return errNotHeld
	case r.status == http.StatusConflict && bytes.Contains(r.body, []byte("purchase-limit")):
		return errPurchaseLimit
	case r.status == http.StatusTooManyRequests:
		return &opError{Kind: kindRateLimited, Err: fmt.Errorf("429")}
	case r.status == http.StatusServiceUnavailable:
		return &opError{Kind: kindUnavailable, Err: fmt.Errorf("503: %s", snippet(r.body))}
	case r.status >= 500:
		// A 500 or a gateway timeout may follow a change that landed.
		return &opError{Kind: fmt.Sprintf("%s_%d", kindHTTP, r.status), Unknown: write, Err: fmt.Errorf("%d: %s", r.status, snippet(r.body))}
	}
	return &opError{Kind: fmt.Sprintf("%s_%d", kindHTTP, r.status), Err: fmt.Errorf("%d: %s", r.status, snippet(r.body))}
}

func snippet(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

func itemPath(store, sku string) string {
	return "/v1/stores/" + url.PathEscape(store) + "/items/" + url.PathEscape(sku)
}

// patient sends a request that is safe to repeat (a read, an absolute
// set) outside the measured load, waiting out 429 and 503 answers (a
// server's rate limit or backpressure) for about a minute.
func (c *httpClient) patient(ctx context.Context, method, path string, body any) (response, error) {
	a, err := c.slow.Send(ctx, method, path, body)
	if err != nil {
		return response{}, transportErr(err, method != http.MethodGet)
	}
	return response{status: a.Status, body: a.Body}, nil
}

func (c *httpClient) Seed(ctx context.Context, items []SeedItem) error {
	return parallel(ctx, len(items), 64, func(ctx context.Context, i int) error {
		it := items[i]
		r, err := c.patient(ctx, http.MethodPut, itemPath(it.Store, it.SKU), map[string]int64{"on_hand": it.OnHand})
		if err == nil {
			err = statusErr(r, true)
		}
		if err != nil {
			return fmt.Errorf("seed %s/%s: %w", it.Store, it.SKU, err)
		}
		return nil
	})
}

func clientLines(lines []Line) []client.Line {
	out := make([]client.Line, len(lines))
	for i, l := range lines {
		out[i] = client.Line{SKU: l.SKU, Qty: l.Qty}
	}
	return out
}

func (c *httpClient) Checkout(ctx context.Context, store string, lines []Line) error {
	_, err := c.api.Checkout(ctx, store, client.CheckoutRequest{Lines: clientLines(lines)}, noKey)
	return harnessErr(err, true)
}

func (c *httpClient) Adjust(ctx context.Context, store, sku string, delta int64) error {
	_, err := c.api.Adjust(ctx, store, sku, client.Adjustment{Delta: delta, Reason: "restock"}, noKey)
	return harnessErr(err, true)
}

func (c *httpClient) Get(ctx context.Context, store, sku string) error {
	_, err := c.api.GetItem(ctx, store, sku)
	return harnessErr(err, false)
}

func (c *httpClient) Reserve(ctx context.Context, store string, lines []Line, ttl int) (string, error) {
	r, err := c.api.Reserve(ctx, store, client.ReserveRequest{Lines: clientLines(lines), TTLSeconds: ttl}, noKey)
	if err != nil {
		return "", harnessErr(err, true)
	}
	if r.ID == "" {
		return "", &opError{Kind: kindOther, Unknown: true, Err: errors.New("reservation reply without an id")}
	}
	return r.ID, nil
}

func (c *httpClient) Commit(ctx context.Context, id string) error {
	_, err := c.api.Commit(ctx, id, noKey)
	return harnessErr(err, true)
}

func (c *httpClient) Release(ctx context.Context, id string) error {
	_, err := c.api.Release(ctx, id, noKey)
	return harnessErr(err, true)
}

func (c *httpClient) BulkAdjust(ctx context.Context, updates []Update) ([]error, error) {
	ls := make([]client.BulkUpdate, len(updates))
	for i, u := range updates {
		ls[i] = client.BulkUpdate{Store: u.Store, SKU: u.SKU, Delta: u.Delta, Reason: "import"}
	}
	res, err := c.api.BulkAdjust(ctx, ls, noKey)
	if err != nil {
		return nil, harnessErr(err, true)
	}
	if len(res.Results) != len(updates) {
		return nil, &opError{Kind: kindOther, Unknown: true, Err: fmt.Errorf("bulk reply of %d results for %d lines", len(res.Results), len(updates))}
	}
	out := make([]error, len(updates))
	for i, x := range res.Results {
		switch {
		case x.Status >= 200 && x.Status < 300:
		case x.Error != nil:
			out[i] = problemErr(x.Error, true)
		default:
			out[i] = statusErr(response{status: x.Status}, true)
		}
	}
	return out, nil
}

func (c *httpClient) Items(ctx context.Context, refs []SeedItem) ([]ItemState, error) {
	out := make([]ItemState, len(refs))
	err := parallel(ctx, len(refs), 32, func(ctx context.Context, i int) error {
		ref := refs[i]
		out[i] = ItemState{Store: ref.Store, SKU: ref.SKU}
		it, err := c.slow.GetItem(ctx, ref.Store, ref.SKU)
		switch {
		case client.IsNotFound(err):
			return nil
		case err != nil:
			return fmt.Errorf("read %s/%s: %w", ref.Store, ref.SKU, harnessErr(err, false))
		}
		out[i].OnHand, out[i].Reserved, out[i].Version, out[i].Found = it.OnHand, it.Reserved, it.Version, true
		out[i].Incoming = it.Incoming
		return nil
	})
	return out, err
}

// CheckLedger checks the server's ledger when the run was told its schema.
func (c *httpClient) CheckLedger(ctx context.Context, items []ItemState) ([]string, error) {
	if c.ledger == nil {
		return nil, nil
	}
	return c.ledger.check(ctx, items, 60*time.Second)
}

func (c *httpClient) Close(ctx context.Context) error {
	c.closeIdle()
	if c.ledger != nil {
		return c.ledger.drop(ctx)
	}
	return nil
}

// HasLedger reports whether there is a ledger to check.
func (c *httpClient) HasLedger() bool { return c.ledger != nil }

// Warm opens a keep-alive connection per worker before the load, so the
// first second does not measure TCP handshakes: it sends n concurrent GET
// /healthz and ignores the answers (a server without the route answers 404
// on a connection that stays open just the same).
func (c *httpClient) Warm(ctx context.Context, n int) {
	_ = parallel(ctx, n, n, func(ctx context.Context, _ int) error {
		_, _ = c.api.Send(ctx, http.MethodGet, "/healthz", nil)
		return nil
	})
}
