package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/webhook"
)

// TestWebhookRoutes: admin only; bad input is 400 and stores nothing; a
// subscription made through the API gets its deliveries, signed with the
// secret the API made, and its log shows them.
func TestWebhookRoutes(t *testing.T) {
	t.Parallel()
	_, pool := testsupport.LedgerSchema(t, testsupport.MaxConns(8))
	ts := newTestServer(t, func(c *Config) {
		c.Webhooks = webhook.NewStore(pool, webhook.StoreConfig{AllowPrivate: true})
	})
	strict := newTestServer(t, func(c *Config) { c.Webhooks = webhook.NewStore(pool, webhook.StoreConfig{}) })

	var mu sync.Mutex
	var bodies [][]byte
	var sigs []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		sigs = append(sigs, r.Header.Get(webhook.HeaderSignature))
		mu.Unlock()
	}))
	t.Cleanup(rcv.Close)

	for _, tok := range []string{tokS1, tokReader} {
		requireProblem(t, ts.req("POST", "/v1/webhooks", tok, `{"url":"`+rcv.URL+`","events":["stock_changed"]}`), 403)
		requireProblem(t, ts.req("GET", "/v1/webhooks", tok, ""), 403)
	}
	requireProblem(t, ts.req("GET", "/v1/webhooks", "", ""), 401)
	for body, field := range map[string]string{
		`{"url":"ftp://example.com","events":["stock_changed"]}`:                            "url",
		`{"url":"https://example.com","events":["sold_out"]}`:                               "events",
		`{"url":"https://example.com","events":[]}`:                                         "events",
		`{"url":"https://example.com"}`:                                                     "events",
		`{"url":"https://example.com","events":["low_stock"],"secret":"short"}`:             "secret",
		`{"url":"https://example.com","events":["low_stock"],"stores":["no way"]}`:          "stores",
		`{"url":"https://example.com","events":["low_stock"],"extra":1}`:                    "",
		`{"url":"http://127.0.0.1:1/x","events":["low_stock"],"secret":"0123456789abcdef"}`: "url",
	} {
		srv := ts
		if field == "url" {
			srv = strict
		}
		p := requireProblem(t, srv.req("POST", "/v1/webhooks", tokAdmin, body), 400)
		if field != "" {
			require.Equal(t, field, p["field"], body)
		}
	}
	require.Zero(t, testsupport.Count(t, pool, `SELECT count(*) FROM webhooks`))

	r := ts.req("POST", "/v1/webhooks", tokAdmin, `{"url":"`+rcv.URL+`","events":["stock_changed","out_of_stock"]}`, "Idempotency-Key", "wh-1")
	require.Equal(t, 201, r.Status, "%s", r.Body)
	created := r.json(t)
	id := created["id"].(string)
	secret := created["secret"].(string)
	require.Len(t, secret, 64)
	require.Nil(t, created["stores"])
	require.Equal(t, "/v1/webhooks/"+id, r.Header.Get("Location"))
	again := ts.req("POST", "/v1/webhooks", tokAdmin, `{"url":"`+rcv.URL+`","events":["stock_changed","out_of_stock"]}`, "Idempotency-Key", "wh-1")
	require.Equal(t, 201, again.Status)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.Equal(t, id, again.json(t)["id"])
	require.Equal(t, int64(1), testsupport.Count(t, pool, `SELECT count(*) FROM webhooks`))

	got := ts.req("GET", "/v1/webhooks/"+id, tokAdmin, "")
	require.Equal(t, 200, got.Status)
	require.NotContains(t, got.json(t), "secret")
	list := ts.req("GET", "/v1/webhooks", tokAdmin, "").json(t)["webhooks"].([]any)
	require.Len(t, list, 1)
	requireProblem(t, ts.req("GET", "/v1/webhooks/wh_nope", tokAdmin, ""), 404)
	requireProblem(t, ts.req("GET", "/v1/webhooks/wh_nope/deliveries", tokAdmin, ""), 404)

	d, err := webhook.NewDispatcher(ts.e, pool, webhook.Config{AllowPrivate: true, Source: webhook.Source{Block: 50 * time.Millisecond}, Poll: 20 * time.Millisecond, Refresh: 50 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Equal(t, 201, ts.req("PUT", "/v1/stores/s1/items/lamp", tokAdmin, `{"on_hand":1}`).Status)
	require.Equal(t, 200, ts.req("POST", "/v1/stores/s1/checkout", tokAdmin, `{"lines":[{"sku":"lamp","qty":1}]}`).Status)
	var log []any
	testsupport.WaitFor(t, 20*time.Second, "the deliveries", func() bool {
		r := ts.req("GET", "/v1/webhooks/"+id+"/deliveries", tokAdmin, "")
		require.Equal(t, 200, r.Status)
		log = r.json(t)["deliveries"].([]any)
		if len(log) != 3 {
			return false
		}
		for _, l := range log {
			if l.(map[string]any)["status"] != "delivered" {
				return false
			}
		}
		return true
	})
	newest := log[0].(map[string]any)
	require.Equal(t, "s1/lamp/2/out_of_stock", newest["event_id"])
	require.Equal(t, float64(200), newest["status_code"])
	mu.Lock()
	require.Len(t, bodies, 3)
	for i, b := range bodies {
		require.NoError(t, webhook.Verify(secret, sigs[i], b, time.Now(), time.Minute))
		var p map[string]any
		require.NoError(t, json.Unmarshal(b, &p))
		for _, k := range []string{"id", "type", "time", "item", "event"} {
			require.Contains(t, p, k)
		}
	}
	mu.Unlock()

	require.Equal(t, 204, ts.req("DELETE", "/v1/webhooks/"+id, tokAdmin, "").Status)
	requireProblem(t, ts.req("DELETE", "/v1/webhooks/"+id, tokAdmin, ""), 404)
	require.Zero(t, testsupport.Count(t, pool, `SELECT count(*) FROM webhook_deliveries`))
}

func TestWebhookRoutesWithoutLedger(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	requireProblem(t, ts.req("GET", "/v1/webhooks", tokAdmin, ""), 503)
	requireProblem(t, ts.req("POST", "/v1/webhooks", tokAdmin, `{"url":"https://example.com","events":["low_stock"]}`), 503)
}
