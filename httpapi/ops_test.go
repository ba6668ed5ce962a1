package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

func TestHealthReadyMetricsDashboard(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	r := ts.req("GET", "/healthz", "", "")
	require.Equal(t, 200, r.Status)
	r = ts.req("GET", "/readyz", "", "")
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Equal(t, "off", r.json(t)["checks"].(map[string]any)["postgres"])

	// A partition that lost its marker makes the server not ready, and its
	// stores answer 503 with Retry-After, never 404.
	ts.put("s1", "x", 1)
	require.NoError(t, ts.rdb.Del(t.Context(), ts.e.ReadyKey(ts.e.Partition("s1"))).Err())
	r = ts.req("GET", "/readyz", "", "")
	require.Equal(t, 503, r.Status)
	require.NotEmpty(t, r.Header.Get("Retry-After"))
	requireProblem(t, ts.req("GET", "/v1/stores/s1/items/x", tokAdmin, ""), 503)
	requireProblem(t, ts.req("POST", "/v1/stores/s1/items/x/adjust", tokAdmin, `{"delta":1}`), 503)
	require.NoError(t, ts.e.MarkReady(t.Context(), ts.e.Partition("s1")))

	require.Equal(t, 200, ts.req("POST", "/v1/stores/s1/items/x/adjust", tokAdmin, `{"delta":1}`).Status)
	requireProblem(t, ts.req("POST", "/v1/stores/s1/items/x/adjust", tokAdmin, `{"delta":-5}`), 409)
	r = ts.req("GET", "/metrics", "", "")
	require.Equal(t, 200, r.Status)
	body := string(r.Body)
	for _, want := range []string{
		`inventory_http_request_duration_seconds_bucket{method="POST",route="/v1/stores/:store/items/:sku/adjust",status="200"`,
		`inventory_conflicts_total{type="insufficient-stock"} 1`,
		`inventory_idempotent_replays_total`,
		`inventory_redis_script_duration_seconds_bucket{script="batch"`,
		`inventory_stream_length{partition=`,
	} {
		require.True(t, strings.Contains(body, want), "metrics lack %s", want)
	}

	r = ts.req("GET", "/", "", "")
	require.Equal(t, 200, r.Status)
	require.Contains(t, r.Header.Get("Content-Type"), "text/html")
	require.Contains(t, string(r.Body), "/ui/app.js")
	r = ts.req("GET", "/ui/feed.js", "", "")
	require.Equal(t, 200, r.Status)
	require.Contains(t, r.Header.Get("Content-Type"), "javascript")
	require.Contains(t, string(r.Body), "/v1/events")
	requireProblem(t, ts.req("GET", "/ui/nope.js", "", ""), 404)
	requireProblem(t, ts.req("GET", "/nope", "", ""), 404)
}

func TestLedgerOff(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.put("s1", "x", 1)
	p := requireProblem(t, ts.req("GET", "/v1/stores/s1/items/x/history", tokAdmin, ""), 503)
	require.Contains(t, p["detail"], "off")
	p = requireProblem(t, ts.req("POST", "/v1/admin/reconcile?mode=check", tokAdmin, ""), 503)
	require.Contains(t, p["detail"], "off")
}

// TestOpenAPIMatchesRoutes checks that /openapi.json documents exactly the
// router's routes.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	r := ts.req("GET", "/openapi.json", "", "")
	require.Equal(t, 200, r.Status)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &doc))
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3."))
	var documented, served []string
	for p, ops := range doc.Paths {
		for m := range ops {
			documented = append(documented, strings.ToUpper(m)+" "+p)
		}
	}
	seen := map[string]bool{}
	for _, rt := range ts.s.App().GetRoutes(true) {
		if rt.Method == "HEAD" || rt.Method == "USE" {
			continue
		}
		path := rt.Path
		for _, p := range rt.Params {
			path = strings.Replace(path, ":"+p, "{"+p+"}", 1)
		}
		k := rt.Method + " " + path
		if !seen[k] {
			seen[k] = true
			served = append(served, k)
		}
	}
	sort.Strings(documented)
	sort.Strings(served)
	require.Equal(t, served, documented)
}

func TestLimits(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.RatePerSecond = 0.5; c.RateBurst = 3 })
	ts.put("s1", "x", 1)
	for i := 0; i < 3; i++ {
		require.Equal(t, 200, ts.req("GET", "/v1/stores/s1/items/x", tokReader, "").Status)
	}
	requireProblem(t, ts.req("GET", "/v1/stores/s1/items/x", tokReader, ""), 429)
	require.Equal(t, 200, ts.req("GET", "/v1/stores/s1/items/x", tokAdmin, "").Status, "the limit is per token")

	ts.s.inFlight.Add(int64(ts.s.cfg.MaxInFlight))
	requireProblem(t, ts.req("GET", "/v1/stores/s1/items/x", tokAdmin, ""), 503)
	ts.s.inFlight.Add(-int64(ts.s.cfg.MaxInFlight))
	require.Equal(t, 200, ts.req("GET", "/v1/stores/s1/items/x", tokAdmin, "").Status)
}

// TestRedisUnreachable: every stock route answers 503 with Retry-After.
func TestRedisUnreachable(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond, DialerRetries: 1})
	t.Cleanup(func() { down.Close() })
	e, err := engine.New(engine.Config{Client: down, Partitions: 4})
	require.NoError(t, err)
	s, err := New(Config{Engine: e, Keys: testKeys(t)})
	require.NoError(t, err)
	_ = ts
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/stores/s1/items/x", ""},
		{"PUT", "/v1/stores/s1/items/x", `{"on_hand":1}`},
		{"POST", "/v1/stores/s1/checkout", `{"lines":[{"sku":"x","qty":1}]}`},
		{"GET", "/v1/items/x", ""},
	} {
		rq, _ := http.NewRequest(c.method, c.path, strings.NewReader(c.body))
		rq.Header.Set("Authorization", "Bearer "+tokAdmin)
		rq.Header.Set("Content-Type", "application/json")
		res, err := s.App().Test(rq, 5000)
		require.NoError(t, err)
		b, _ := io.ReadAll(res.Body)
		checkHTTP(t, rq, []byte(c.body), res, b, false)
		require.Equal(t, 503, res.StatusCode, "%s %s: %s", c.method, c.path, b)
		require.NotEmpty(t, res.Header.Get("Retry-After"))
	}
	rq, _ := http.NewRequest("GET", "/readyz", nil)
	res, err := s.App().Test(rq, 5000)
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	checkHTTP(t, rq, nil, res, b, false)
	require.Equal(t, 503, res.StatusCode)
	_ = context.Background
}

// TestBackpressure: past the stream's high watermark (the ledger is behind)
// writes answer 503 with Retry-After and change nothing; reads still work.
func TestBackpressure(t *testing.T) {
	t.Parallel()
	ts := newTestServerWith(t, func(c *engine.Config) { c.StreamHighWatermark = 2 })
	ts.put("s1", "x", 1)
	ts.put("s1", "x", 2)
	before := ts.item("s1", "x")
	p := requireProblem(t, ts.req("POST", "/v1/stores/s1/items/x/adjust", tokAdmin, `{"delta":1}`), 503)
	require.Contains(t, p["detail"], "behind")
	requireProblem(t, ts.req("POST", "/v1/stores/s1/checkout", tokAdmin, `{"lines":[{"sku":"x","qty":1}]}`), 503)
	require.Equal(t, before, ts.item("s1", "x"))
	require.Equal(t, 200, ts.req("GET", "/v1/stores/s1/items/x", tokReader, "").Status)
}

// TestPanicIsA500: a handler's panic answers a 500 problem, and the server
// keeps serving.
func TestPanicIsA500(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	s, err := New(Config{Engine: ts.e, Keys: testKeys(t)})
	require.NoError(t, err)
	s.App().Get("/boom", func(*fiber.Ctx) error { panic("boom") })
	res, err := s.App().Test(httptest.NewRequest("GET", "/boom", nil), 5000)
	require.NoError(t, err)
	require.Equal(t, 500, res.StatusCode)
	require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	res, err = s.App().Test(httptest.NewRequest("GET", "/healthz", nil), 5000)
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode)
}
