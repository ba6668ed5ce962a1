package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// httpClient drives the HTTP API (docs/design.md §12) of a server at base with a
// bearer token, over a keep-alive client with an idle connection per worker.
type httpClient struct {
	base   string
	auth   string
	hc     *http.Client
	ledger *pgLedger // the server's ledger, when the run was told its schema
}

func newHTTPClient(base, token string, workers int) *httpClient {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        workers + 64,
		MaxIdleConnsPerHost: workers + 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &httpClient{base: strings.TrimRight(base, "/"), auth: "Bearer " + token,
		hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// response is a request's status and body.
type response struct {
	status int
	body   []byte
}

// do sends one request; a body of nil sends none. Transport failures come
// back as *opError with the outcome unknown when the request may have been a
// write that landed.
func (c *httpClient) do(ctx context.Context, method, path string, body any) (response, error) {
	return c.doKey(ctx, method, path, body, "")
}

// doKey is do with an Idempotency-Key header when key is not empty.
func (c *httpClient) doKey(ctx context.Context, method, path string, body any, key string) (response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Authorization", c.auth)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.hc.Do(req)
	write := method != http.MethodGet
	if err != nil {
		kind := kindTransport
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			kind = kindTimeout
		}
		return response{}, &opError{Kind: kind, Unknown: write, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, &opError{Kind: kindTransport, Unknown: write, Err: err}
	}
	return response{status: resp.StatusCode, body: b}, nil
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

func (c *httpClient) call(ctx context.Context, method, path string, body any) (response, error) {
	r, err := c.do(ctx, method, path, body)
	if err != nil {
		return r, err
	}
	return r, statusErr(r, method != http.MethodGet)
}

// patient sends a request that is safe to repeat (a read, an absolute
// set) outside the measured load, waiting out 429 and 503 answers (a
// server's rate limit or backpressure) for up to a minute.
func (c *httpClient) patient(ctx context.Context, method, path string, body any) (response, error) {
	deadline := time.Now().Add(time.Minute)
	for attempt := 1; ; attempt++ {
		r, err := c.do(ctx, method, path, body)
		if err != nil || (r.status != http.StatusTooManyRequests && r.status != http.StatusServiceUnavailable) || time.Now().After(deadline) {
			return r, err
		}
		wait := min(time.Duration(attempt)*50*time.Millisecond, 2*time.Second)
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(wait):
		}
	}
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

type checkoutBody struct {
	Lines []Line `json:"lines"`
}

func (c *httpClient) Checkout(ctx context.Context, store string, lines []Line) error {
	_, err := c.call(ctx, http.MethodPost, "/v1/stores/"+url.PathEscape(store)+"/checkout", checkoutBody{Lines: lines})
	return err
}

func (c *httpClient) Adjust(ctx context.Context, store, sku string, delta int64) error {
	_, err := c.call(ctx, http.MethodPost, itemPath(store, sku)+"/adjust", map[string]any{"delta": delta, "reason": "restock"})
	return err
}

func (c *httpClient) Get(ctx context.Context, store, sku string) error {
	_, err := c.call(ctx, http.MethodGet, itemPath(store, sku), nil)
	return err
}

func (c *httpClient) Reserve(ctx context.Context, store string, lines []Line, ttl int) (string, error) {
	r, err := c.call(ctx, http.MethodPost, "/v1/stores/"+url.PathEscape(store)+"/reservations",
		map[string]any{"lines": lines, "ttl_seconds": ttl})
	if err != nil {
		return "", err
	}
	var res struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(r.body, &res); err != nil || res.ID == "" {
		return "", &opError{Kind: kindOther, Unknown: true, Err: fmt.Errorf("reservation reply %q: %v", snippet(r.body), err)}
	}
	return res.ID, nil
}

func (c *httpClient) Commit(ctx context.Context, id string) error {
	_, err := c.call(ctx, http.MethodPost, "/v1/reservations/"+url.PathEscape(id)+"/commit", nil)
	return err
}

func (c *httpClient) Release(ctx context.Context, id string) error {
	_, err := c.call(ctx, http.MethodPost, "/v1/reservations/"+url.PathEscape(id)+"/release", nil)
	return err
}

func (c *httpClient) BulkAdjust(ctx context.Context, updates []Update) ([]error, error) {
	type line struct {
		Update
		Reason string `json:"reason"`
	}
	ls := make([]line, len(updates))
	for i, u := range updates {
		ls[i] = line{Update: u, Reason: "import"}
	}
	r, err := c.call(ctx, http.MethodPost, "/v1/adjustments", map[string]any{"updates": ls})
	if err != nil {
		return nil, err
	}
	var res struct {
		Results []struct {
			Status int             `json:"status"`
			Error  json.RawMessage `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(r.body, &res); err != nil || len(res.Results) != len(updates) {
		return nil, &opError{Kind: kindOther, Unknown: true, Err: fmt.Errorf("bulk reply of %d results for %d lines: %v", len(res.Results), len(updates), err)}
	}
	out := make([]error, len(updates))
	for i, x := range res.Results {
		out[i] = statusErr(response{status: x.Status, body: x.Error}, true)
	}
	return out, nil
}

func (c *httpClient) Items(ctx context.Context, refs []SeedItem) ([]ItemState, error) {
	out := make([]ItemState, len(refs))
	err := parallel(ctx, len(refs), 32, func(ctx context.Context, i int) error {
		ref := refs[i]
		out[i] = ItemState{Store: ref.Store, SKU: ref.SKU}
		r, err := c.patient(ctx, http.MethodGet, itemPath(ref.Store, ref.SKU), nil)
		if err != nil {
			return err
		}
		if r.status == http.StatusNotFound {
			return nil
		}
		if err := statusErr(r, false); err != nil {
			return fmt.Errorf("read %s/%s: %w", ref.Store, ref.SKU, err)
		}
		var it struct {
			OnHand   int64 `json:"on_hand"`
			Reserved int64 `json:"reserved"`
			Version  int64 `json:"version"`
		}
		if err := json.Unmarshal(r.body, &it); err != nil {
			return fmt.Errorf("read %s/%s: %w", ref.Store, ref.SKU, err)
		}
		out[i].OnHand, out[i].Reserved, out[i].Version, out[i].Found = it.OnHand, it.Reserved, it.Version, true
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
	c.hc.CloseIdleConnections()
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
		_, _ = c.do(ctx, http.MethodGet, "/healthz", nil)
		return nil
	})
}
