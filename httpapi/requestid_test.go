package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// madeID is the form of an id the server makes.
var madeID = regexp.MustCompile(`^[0-9a-f]{16}$`)

func TestRequestIDMadeAndEchoed(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.put("s1", "lamp", 3)
	seen := map[string]bool{}
	for _, rq := range []struct{ method, path, token, body string }{
		{"GET", "/healthz", "", ""},
		{"GET", "/openapi.json", "", ""},
		{"GET", "/metrics", "", ""},
		{"GET", "/v1/stores/s1/items/lamp", tokReader, ""},
		{"PUT", "/v1/stores/s1/items/desk", tokAdmin, `{"on_hand":2}`},
		{"POST", "/v1/stores/s1/items/lamp/adjust", tokAdmin, `{"delta":1,"reason":"count"}`},
	} {
		r := ts.req(rq.method, rq.path, rq.token, rq.body)
		require.Less(t, r.Status, 300, "%s %s: %s", rq.method, rq.path, r.Body)
		id := r.Header.Get(HeaderRequestID)
		require.Regexp(t, madeID, id, "%s %s", rq.method, rq.path)
		require.False(t, seen[id], "a new id for every request")
		seen[id] = true
	}
}

func TestRequestIDTaken(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.put("s1", "lamp", 3)
	for _, id := range []string{
		"abc-123",
		"0f8fad5b-d9cb-469f-a165-70867728950e",
		"with spaces and \"quotes\" {}[]<>:;",
		strings.Repeat("x", MaxRequestIDLen),
	} {
		r := ts.req("GET", "/v1/stores/s1/items/lamp", tokReader, "", HeaderRequestID, id)
		require.Equal(t, 200, r.Status)
		require.Equal(t, id, r.Header.Get(HeaderRequestID))
		// A problem names the id it was given.
		p := requireProblem(t, ts.req("GET", "/v1/stores/s1/items/nope", tokReader, "", HeaderRequestID, id), 404)
		require.Equal(t, id, p["request_id"])
	}
}

func TestRequestIDBadReplaced(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for name, id := range map[string]string{
		"too long":   strings.Repeat("x", MaxRequestIDLen+1),
		"tab":        "a\tb",
		"not ascii":  "café",
		"high bytes": "id\xff\xfe",
	} {
		t.Run(name, func(t *testing.T) {
			r := ts.in(t).req("GET", "/healthz", "", "", HeaderRequestID, id)
			require.Equal(t, 200, r.Status)
			require.Regexp(t, madeID, r.Header.Get(HeaderRequestID), "a bad id is replaced, the request still served")
		})
	}
	t.Run("two headers", func(t *testing.T) {
		rq, err := http.NewRequest("GET", ts.url+"/healthz", nil)
		require.NoError(t, err)
		rq.Header.Add(HeaderRequestID, "one")
		rq.Header.Add(HeaderRequestID, "two")
		res, err := http.DefaultClient.Do(rq)
		require.NoError(t, err)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		checkHTTP(t, rq, nil, res, b, false)
		require.Equal(t, 200, res.StatusCode)
		require.Regexp(t, madeID, res.Header.Get(HeaderRequestID), "which one was meant is not for the server to guess")
	})
}

// TestRequestIDInProblems: every kind of problem, from the router, Fiber's
// own refusals, each middleware and the handlers, carries request_id, the
// same as the response's X-Request-ID (requireProblem checks both).
func TestRequestIDInProblems(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.put("s1", "lamp", 1)
	const id = "trace-problems"
	cases := []struct {
		name                      string
		method, path, token, body string
		hdr                       []string
		status                    int
	}{
		{"no route", "GET", "/v1/nowhere", tokAdmin, "", nil, 404},
		{"method not allowed", "DELETE", "/v1/stores/s1/items/lamp", tokAdmin, "", nil, 405},
		{"no token", "GET", "/v1/stores/s1/items/lamp", "", "", nil, 401},
		{"unknown token", "GET", "/v1/stores/s1/items/lamp", "nope", "", nil, 401},
		{"forbidden", "PUT", "/v1/stores/s2/items/lamp", tokS1, `{"on_hand":1}`, nil, 403},
		{"malformed json", "PUT", "/v1/stores/s1/items/lamp", tokAdmin, `{"on_hand":`, nil, 400},
		{"bad idempotency key", "PUT", "/v1/stores/s1/items/lamp", tokAdmin, `{"on_hand":1}`, []string{"Idempotency-Key", strings.Repeat("k", 300)}, 400},
		{"not json", "PUT", "/v1/stores/s1/items/lamp", tokAdmin, `on_hand=1`, []string{"Content-Type", "text/plain"}, 415},
		{"no item", "GET", "/v1/stores/s1/items/none", tokAdmin, "", nil, 404},
		{"insufficient stock", "POST", "/v1/stores/s1/checkout", tokAdmin2, `{"lines":[{"sku":"lamp","qty":5}]}`, nil, 409},
		{"precondition", "PUT", "/v1/stores/s1/items/lamp", tokAdmin, `{"on_hand":1}`, []string{"If-Match", `"999"`}, 412},
		{"no ledger", "GET", "/v1/stores/s1/items/lamp/history", tokS1, "", nil, 503},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := append([]string{HeaderRequestID, id}, tc.hdr...)
			r := ts.in(t).req(tc.method, tc.path, tc.token, tc.body, hdr...)
			p := requireProblem(t, r, tc.status)
			require.Equal(t, id, p["request_id"])
		})
	}

	t.Run("rate limited", func(t *testing.T) {
		ts := newTestServer(t, func(c *Config) { c.RatePerSecond = 0.5; c.RateBurst = 1 })
		var r *resp
		for i := 0; i < 3; i++ {
			r = ts.in(t).req("GET", "/v1/stores/s1/items/lamp", tokReader, "", HeaderRequestID, fmt.Sprint("rate-", i))
		}
		p := requireProblem(t, r, 429)
		require.Equal(t, "rate-2", p["request_id"])
	})
	t.Run("overloaded", func(t *testing.T) {
		ts.s.inFlight.Add(int64(ts.s.cfg.MaxInFlight))
		defer ts.s.inFlight.Add(-int64(ts.s.cfg.MaxInFlight))
		p := requireProblem(t, ts.in(t).req("GET", "/v1/stores/s1/items/lamp", tokAdmin, ""), 503)
		require.Regexp(t, madeID, p["request_id"])
	})
	t.Run("body too large", func(t *testing.T) {
		// Fiber refuses it before any middleware runs: the error handler
		// gives it its id.
		r := rawRequest(t, ts, "POST /v1/stores/s1/items/lamp/adjust HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+tokAdmin+
			"\r\nX-Request-ID: big-one\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n{")
		p := requireProblem(t, r, 413)
		require.Equal(t, "big-one", p["request_id"])
		r = rawRequest(t, ts, "POST /v1/adjustments HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n{")
		p = requireProblem(t, r, 413)
		require.Regexp(t, madeID, p["request_id"])
	})
}

// rawRequest writes raw to a new connection and reads one response.
func rawRequest(t *testing.T, ts *testServer, raw string) *resp {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, raw)
	require.NoError(t, err)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	rq, body := parseRaw(t, raw)
	checkHTTP(t, rq, body, res, b, false)
	return &resp{Status: res.StatusCode, Header: res.Header, Body: b}
}
