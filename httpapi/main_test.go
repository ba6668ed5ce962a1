package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
)

// Tokens of every test server.
const (
	tokAdmin  = "admin-token"
	tokAdmin2 = "admin2-token"
	tokS1     = "s1-token"
	tokS2     = "s2-token"
	tokReader = "reader-token"
)

func testKeys(t testing.TB) []Key {
	keys, err := ParseKeys(tokAdmin + ":admin," + tokAdmin2 + ":admin," + tokS1 + ":store:s1," + tokS2 + ":store:s2," + tokReader + ":reader")
	require.NoError(t, err)
	return keys
}

// testServer is a real server on a loopback port over real Redis, with its
// own key prefix, removed after the test.
type testServer struct {
	t   testing.TB
	url string
	e   *engine.Engine
	s   *Server
	rdb *redis.Client
}

func newTestServer(t testing.TB, tweak ...func(*Config)) *testServer {
	t.Helper()
	return newTestServerWith(t, func(*engine.Config) {}, tweak...)
}

// newTestServerWith is newTestServer with a say in the engine's config.
func newTestServerWith(t testing.TB, ecfg func(*engine.Config), tweak ...func(*Config)) *testServer {
	t.Helper()
	rdb := testsupport.RedisClient(t, 0)
	// Registered before the server's shutdown, so the keys go after it stops.
	prefix := testsupport.IsolatedPrefix(t, rdb)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ec := engine.Config{Client: rdb, Prefix: prefix, Partitions: 4}
	ecfg(&ec)
	e, err := engine.New(ec)
	require.NoError(t, err)
	require.NoError(t, e.Init(ctx))
	cfg := Config{Engine: e, Keys: testKeys(t), Heartbeat: 200 * time.Millisecond, EventPoll: 20 * time.Millisecond}
	for _, f := range tweak {
		f(&cfg)
	}
	s, err := New(cfg)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Errorf("server did not shut down")
		}
	})
	return &testServer{t: t, url: "http://" + ln.Addr().String(), e: e, s: s, rdb: rdb}
}

// in returns ts for subtest t, so a failed request fails the subtest.
func (ts *testServer) in(t testing.TB) *testServer {
	c := *ts
	c.t = t
	return &c
}

// resp is a finished response.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body %s", r.Body)
	return m
}

// req sends a request. hdr holds header name, value pairs; a body is sent
// as application/json unless hdr sets Content-Type.
func (ts *testServer) req(method, path, token, body string, hdr ...string) *resp {
	ts.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	rq, err := http.NewRequest(method, ts.url+path, rd)
	require.NoError(ts.t, err)
	if token != "" {
		rq.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		rq.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			rq.Header.Del(hdr[i])
		} else {
			rq.Header.Set(hdr[i], hdr[i+1])
		}
	}
	res, err := http.DefaultClient.Do(rq)
	require.NoError(ts.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(ts.t, err)
	checkExchange(ts.t, exchange{Method: method, URL: path, Header: rq.Header, ReqBody: []byte(body),
		Status: res.StatusCode, RHeader: res.Header, Body: b})
	return &resp{Status: res.StatusCode, Header: res.Header, Body: b}
}

// put sets an item through the engine directly.
func (ts *testServer) put(store, sku string, onHand int64, mpc ...int64) engine.Item {
	ts.t.Helper()
	req := engine.SetRequest{Store: store, SKU: sku, OnHand: onHand}
	if len(mpc) > 0 {
		req.MaxPerCustomer = &mpc[0]
	}
	r, err := ts.e.Set(context.Background(), req, engine.Op{})
	require.NoError(ts.t, err)
	return r.Item
}

func (ts *testServer) item(store, sku string) engine.Item {
	ts.t.Helper()
	it, err := ts.e.GetItem(context.Background(), store, sku)
	require.NoError(ts.t, err)
	return it
}

// requireProblem checks a problem+json response of the given status and
// returns its members.
func requireProblem(t testing.TB, r *resp, status int) map[string]any {
	t.Helper()
	require.Equal(t, status, r.Status, "body %s", r.Body)
	require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
	m := r.json(t)
	require.Equal(t, float64(status), m["status"])
	require.NotEmpty(t, m["type"])
	require.NotEmpty(t, m["title"])
	require.NotEmpty(t, m["detail"])
	id := r.Header.Get(HeaderRequestID)
	require.NotEmpty(t, id, "every response carries its request id")
	require.Equal(t, id, m["request_id"], "the problem names its request")
	if status == 503 || status == 429 {
		require.NotEmpty(t, r.Header.Get("Retry-After"))
	}
	return m
}

// oversized announces a body of n bytes and reads the answer without
// sending it: the server must refuse on the Content-Length alone. (Sending
// the body too would race the server's close against the client's write.)
func (ts *testServer) oversized(t *testing.T, path string, n int) *resp {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", path, tokAdmin, n)
	require.NoError(t, err)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	// The body was never sent: the request is checked without it.
	checkExchange(t, exchange{Method: "POST", URL: path, Header: http.Header{"Content-Type": {"application/json"}},
		Status: res.StatusCode, RHeader: res.Header, Body: b})
	return &resp{Status: res.StatusCode, Header: res.Header, Body: b}
}

// bigBody returns an adjust body of about n bytes (a bulky reason).
func bigBody(n int) string {
	const head, tail = `{"delta":1,"reason":"`, `"}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}
