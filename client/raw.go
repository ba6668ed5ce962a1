package client

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// WithMaxConns sends the requests through a client of its own that keeps up
// to n idle keep-alive connections to the server (default: those of
// http.DefaultClient, 2 per host), for a caller with many calls in flight
// at once: a load generator, a bulk importer. It replaces a client given by
// WithHTTPClient; WithTimeout given after it sets that client's timeout.
func WithMaxConns(n int) Option {
	return func(c *Client) {
		tr := &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        n,
			MaxIdleConnsPerHost: n,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}
		c.hc = &http.Client{Transport: tr, Timeout: c.hc.Timeout}
	}
}

// WithTimeout bounds each attempt of a call, the reading of its answer
// included (default none; an Events stream ends at it too). It applies to
// the client of WithMaxConns or WithHTTPClient given before it, on a copy.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		hc := *c.hc
		hc.Timeout = d
		c.hc = &hc
	}
}

// WithoutIdempotencyKey sends a write without an Idempotency-Key: a retry
// of it may then apply it twice, so give it with WithMaxAttempts(1) or to a
// write that is safe to repeat. It saves the server the key's record (a
// load generator measuring writes without keys).
func WithoutIdempotencyKey() CallOption { return func(o *callOpts) { o.noKey = true } }

// Answer is a response as Send returns it, whatever its status.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// Send sends one call to path (with its query, if any) with body as JSON
// (none when nil) and returns the answer whatever its status: for a caller
// that classifies answers itself, such as a load generator. The client's
// retries apply (a transport error, 429 and 503 within WithMaxAttempts),
// and so do the call options; the error is for a call that got no answer.
func (c *Client) Send(ctx context.Context, method, path string, body any, opts ...CallOption) (*Answer, error) {
	res, err := c.send(ctx, method, path, nil, body, nil, append(opts, func(o *callOpts) { o.raw = true }))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("inventory API: %s %s: reading the response: %w", method, path, err)
	}
	return &Answer{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

// CloseIdleConnections closes the client's idle keep-alive connections.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }
