package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/client"
	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/httpapi"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

const (
	tokAdmin = "admin-token"
	tokS1    = "s1-token"
)

// fakeLedger answers history with the events it was given.
type fakeLedger struct{ events []engine.Event }

func (l *fakeLedger) History(_ context.Context, store, sku string, limit int) ([]engine.Event, error) {
	var out []engine.Event
	for _, e := range l.events {
		if e.Store == store && e.SKU == sku && (limit <= 0 || len(out) < limit) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (l *fakeLedger) Ping(context.Context) error { return nil }

// fakeReconciler reports the mode it ran in.
type fakeReconciler struct{ runs atomic.Int32 }

func (r *fakeReconciler) Reconcile(_ context.Context, mode string) (any, error) {
	r.runs.Add(1)
	return map[string]any{"mode": mode, "drift": []any{}}, nil
}

// CancelRun knows run 7 as running and run 6 as over.
func (r *fakeReconciler) CancelRun(_ context.Context, run int64) (any, error) {
	switch run {
	case 7:
		return persist.CancelRequest{RunID: 7, CancelRequestedAt: time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC)}, nil
	case 6:
		return nil, persist.ErrRunFinished
	}
	return nil, persist.ErrRunNotFound
}

type server struct {
	url    string
	rdb    *redis.Client
	e      *engine.Engine
	ledger *fakeLedger
	rec    *fakeReconciler
}

// newServer starts a real API on a loopback port over real Redis, with its
// own key prefix.
func newServer(t *testing.T, tweak ...func(*httpapi.Config)) *server {
	t.Helper()
	rdb := testsupport.RedisClient(t, 0)
	prefix := testsupport.IsolatedPrefix(t, rdb)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := engine.New(engine.Config{Client: rdb, Prefix: prefix, Partitions: 4})
	require.NoError(t, err)
	require.NoError(t, e.Init(ctx))
	keys, err := httpapi.ParseKeys(tokAdmin + ":admin," + tokS1 + ":store:s1")
	require.NoError(t, err)
	srv := &server{rdb: rdb, e: e, ledger: &fakeLedger{}, rec: &fakeReconciler{}}
	cfg := httpapi.Config{Engine: e, Keys: keys, Ledger: srv.ledger, Reconciler: srv.rec,
		Heartbeat: 200 * time.Millisecond, EventPoll: 20 * time.Millisecond}
	for _, f := range tweak {
		f(&cfg)
	}
	s, err := httpapi.New(cfg)
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
	srv.url = "http://" + ln.Addr().String()
	return srv
}

// proxy forwards requests to the server and records them; n counts them
// from 1.
type proxy struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	// before may answer a request itself; after may drop the connection
	// once the server answered.
	before func(n int, w http.ResponseWriter, r *http.Request) bool
	drop   func(n int, r *http.Request) bool
}

func newProxy(t *testing.T, target string) *proxy {
	u, err := url.Parse(target)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &proxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests = append(p.requests, r.Clone(context.Background()))
		n := len(p.requests)
		before, drop := p.before, p.drop
		p.mu.Unlock()
		if before != nil && before(n, w, r) {
			return
		}
		if drop != nil && drop(n, r) {
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// set replaces before.
func (p *proxy) set(before func(n int, w http.ResponseWriter, r *http.Request) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.before = before
}

func (p *proxy) sent() []*http.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*http.Request(nil), p.requests...)
}

func ptr(v int64) *int64 { return &v }

func TestMethods(t *testing.T) {
	srv := newServer(t)
	c := client.New(srv.url, tokAdmin)
	ctx := context.Background()

	put, err := c.PutItem(ctx, "s1", "lamp", client.SetItem{OnHand: 10, ReorderPoint: ptr(2)})
	require.NoError(t, err)
	require.True(t, put.Created)
	require.False(t, put.Replayed)
	require.Equal(t, int64(10), put.OnHand)
	require.Equal(t, int64(10), put.Available)
	require.Equal(t, int64(2), *put.ReorderPoint)
	require.Nil(t, put.MaxPerCustomer)
	require.Equal(t, `"1"`, put.ETag)
	require.False(t, put.UpdatedAt.IsZero())

	again, err := c.PutItem(ctx, "s1", "lamp", client.SetItem{OnHand: 12}, client.IfMatch(put.Version))
	require.NoError(t, err)
	require.False(t, again.Created)
	require.Equal(t, int64(12), again.OnHand)

	got, err := c.GetItem(ctx, "s1", "lamp")
	require.NoError(t, err)
	require.Equal(t, again.Version, got.Version)
	require.Equal(t, again.ETag, got.ETag)
	nm, err := c.GetItem(ctx, "s1", "lamp", client.IfNoneMatch(got.ETag))
	require.NoError(t, err)
	require.True(t, nm.NotModified)

	for _, sku := range []string{"desk", "chair", "rug"} {
		_, err := c.PutItem(ctx, "s1", sku, client.SetItem{OnHand: 5})
		require.NoError(t, err)
	}
	_, err = c.PutItem(ctx, "s2", "lamp", client.SetItem{OnHand: 3})
	require.NoError(t, err)
	var skus []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		page, err := c.ListItems(ctx, "s1", cursor, 2)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Items), 2)
		for _, it := range page.Items {
			skus = append(skus, it.SKU)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	require.ElementsMatch(t, []string{"lamp", "desk", "chair", "rug"}, skus)

	adj, err := c.Adjust(ctx, "s1", "lamp", client.Adjustment{Delta: -2, Reason: "damaged"}, client.IfMatch(got.Version))
	require.NoError(t, err)
	require.Equal(t, int64(10), adj.OnHand)
	require.Equal(t, got.Version+1, adj.Version)

	co, err := c.Checkout(ctx, "s1", client.CheckoutRequest{Lines: []client.Line{{SKU: "lamp", Qty: 1}, {SKU: "desk", Qty: 2}}})
	require.NoError(t, err)
	require.Len(t, co.Lines, 2)
	require.Equal(t, int64(9), co.Lines[0].OnHand)
	require.Equal(t, int64(3), co.Lines[1].OnHand)

	res, err := c.Reserve(ctx, "s1", client.ReserveRequest{Lines: []client.Line{{SKU: "lamp", Qty: 2}}, TTLSeconds: 60, Customer: "ann"})
	require.NoError(t, err)
	require.Equal(t, client.StatusHeld, res.Status)
	require.Equal(t, "ann", res.Customer)
	require.Equal(t, []client.Line{{SKU: "lamp", Qty: 2}}, res.Lines)
	require.True(t, res.ExpiresAt.After(time.Now()))
	rg, err := c.GetReservation(ctx, res.ID)
	require.NoError(t, err)
	require.Equal(t, res.Reservation, *rg)
	cm, err := c.Commit(ctx, res.ID)
	require.NoError(t, err)
	require.Equal(t, client.StatusCommitted, cm.Status)

	r2, err := c.Reserve(ctx, "s1", client.ReserveRequest{Lines: []client.Line{{SKU: "rug", Qty: 1}}})
	require.NoError(t, err)
	rl, err := c.Release(ctx, r2.ID)
	require.NoError(t, err)
	require.Equal(t, client.StatusReleased, rl.Status)

	bulk, err := c.BulkAdjust(ctx, []client.BulkUpdate{
		{Store: "s1", SKU: "chair", Delta: 4, Reason: "delivery"},
		{Store: "s1", SKU: "nothing", Delta: 1},
	})
	require.NoError(t, err)
	require.Len(t, bulk.Results, 2)
	require.Equal(t, http.StatusOK, bulk.Results[0].Status)
	require.Equal(t, int64(9), bulk.Results[0].Item.OnHand)
	require.Equal(t, http.StatusNotFound, bulk.Results[1].Status)
	require.NotNil(t, bulk.Results[1].Error)
	require.Equal(t, http.StatusNotFound, bulk.Results[1].Error.Status)

	rp := int64(2)
	set, err := c.SetItems(ctx, []client.BulkSetItem{
		{Store: "s2", SKU: "stool", OnHand: 6, ReorderPoint: &rp},
		{Store: "s1", SKU: "chair", OnHand: 11},
	})
	require.NoError(t, err)
	require.Len(t, set.Results, 2)
	require.Equal(t, http.StatusCreated, set.Results[0].Status)
	require.Equal(t, int64(2), *set.Results[0].Item.ReorderPoint)
	require.Equal(t, http.StatusOK, set.Results[1].Status)
	require.Equal(t, int64(11), set.Results[1].Item.OnHand)
	_, err = c.SetItems(ctx, []client.BulkSetItem{{Store: "s1", SKU: "chair", OnHand: 1}, {Store: "s1", SKU: "bad sku", OnHand: 1}})
	var p *client.Problem
	require.ErrorAs(t, err, &p)
	require.Equal(t, http.StatusBadRequest, p.Status)
	_, err = c.SetItems(ctx, []client.BulkSetItem{{Store: "s1", SKU: "chair", OnHand: 9}}) // back to what follows expects
	require.NoError(t, err)

	av, err := c.Availability(ctx, "lamp")
	require.NoError(t, err)
	require.Equal(t, "lamp", av.SKU)
	require.Equal(t, int64(7+3), av.Available)
	require.Len(t, av.Stores, 2)

	stores, err := c.Stores(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"s1", "s2"}, stores)

	when := time.Now().UTC().Truncate(time.Millisecond)
	srv.ledger.events = []engine.Event{
		{StreamID: "1-0", Store: "s1", SKU: "lamp", Version: 1, Type: "SET", DeltaOnHand: 10, OnHand: 10, Principal: "admin", Time: when},
		{StreamID: "2-0", Store: "s1", SKU: "lamp", Version: 2, Type: "ADJUST", DeltaOnHand: 2, OnHand: 12, Reason: "found", Time: when},
	}
	hist, err := c.History(ctx, "s1", "lamp", 1)
	require.NoError(t, err)
	require.Len(t, hist, 1)
	require.Equal(t, "1-0", hist[0].StreamID)
	require.Equal(t, "SET", hist[0].Type)
	require.Equal(t, int64(10), hist[0].OnHand)
	require.True(t, when.Equal(hist[0].Time))

	rep, err := c.Reconcile(ctx, client.ReconcileRepair)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(rep, &m))
	require.Equal(t, "repair", m["mode"])

	cr, err := c.CancelReconcile(ctx, 7)
	require.NoError(t, err)
	require.Equal(t, client.ReconcileCancel{RunID: 7, CancelRequestedAt: time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC)}, cr)
	_, err = c.CancelReconcile(ctx, 6)
	require.True(t, client.IsConflict(err), "%v", err)
	_, err = c.CancelReconcile(ctx, 8)
	require.True(t, client.IsNotFound(err), "%v", err)
}

func TestProblems(t *testing.T) {
	srv := newServer(t)
	c := client.New(srv.url, tokAdmin)
	ctx := context.Background()
	_, err := c.PutItem(ctx, "s1", "lamp", client.SetItem{OnHand: 3, MaxPerCustomer: ptr(2)})
	require.NoError(t, err)

	_, err = c.GetItem(ctx, "s1", "ghost")
	require.True(t, client.IsNotFound(err), "%v", err)
	var p *client.Problem
	require.True(t, errors.As(err, &p))
	require.Equal(t, "not-found", p.Slug())
	require.NotEmpty(t, p.RequestID)
	require.NotEmpty(t, p.Detail)

	_, err = c.Checkout(ctx, "s1", client.CheckoutRequest{Lines: []client.Line{{SKU: "lamp", Qty: 5}}, Customer: "ann"})
	require.True(t, client.IsConflict(err))
	p = client.ProblemOf(err)
	require.NotNil(t, p)
	// The limit is checked first or the stock: either names its members.
	switch p.Slug() {
	case "insufficient-stock":
		require.Equal(t, []client.Shortage{{SKU: "lamp", Requested: 5, Available: 3}}, p.Shortages)
	case "purchase-limit":
		require.Equal(t, "lamp", p.SKU)
		require.Equal(t, int64(2), p.Limit)
	default:
		t.Fatalf("problem %s", p.Type)
	}

	_, err = c.Checkout(ctx, "s1", client.CheckoutRequest{Lines: []client.Line{{SKU: "lamp", Qty: 2}}, Customer: "ann"})
	require.NoError(t, err)
	_, err = c.Checkout(ctx, "s1", client.CheckoutRequest{Lines: []client.Line{{SKU: "lamp", Qty: 1}}, Customer: "ann"})
	require.True(t, client.IsPurchaseLimit(err), "%v", err)
	p = client.ProblemOf(err)
	require.Equal(t, http.StatusConflict, p.Status)
	require.Equal(t, "lamp", p.SKU)
	require.Equal(t, int64(2), p.Limit)
	require.Equal(t, int64(2), p.Already)

	_, err = c.PutItem(ctx, "s1", "desk", client.SetItem{OnHand: 1})
	require.NoError(t, err)
	_, err = c.Checkout(ctx, "s1", client.CheckoutRequest{Lines: []client.Line{{SKU: "desk", Qty: 4}}})
	require.True(t, client.IsInsufficientStock(err), "%v", err)
	require.Equal(t, []client.Shortage{{SKU: "desk", Requested: 4, Available: 1}}, client.ProblemOf(err).Shortages)

	_, err = c.Adjust(ctx, "s1", "desk", client.Adjustment{Delta: 1}, client.IfMatch(99))
	require.True(t, client.IsPreconditionFailed(err), "%v", err)
	p = client.ProblemOf(err)
	require.NotNil(t, p.CurrentVersion)
	require.Equal(t, int64(1), *p.CurrentVersion)
	_, err = c.PutItem(ctx, "s1", "desk", client.SetItem{OnHand: 1}, client.IfNoneMatch("*"))
	require.True(t, client.IsPreconditionFailed(err), "%v", err)

	_, err = c.PutItem(ctx, "s1", "desk", client.SetItem{OnHand: -1})
	require.True(t, client.IsBadRequest(err), "%v", err)
	require.Equal(t, "on_hand", client.ProblemOf(err).Field)

	res, err := c.Reserve(ctx, "s1", client.ReserveRequest{Lines: []client.Line{{SKU: "desk", Qty: 1}}})
	require.NoError(t, err)
	_, err = c.Release(ctx, res.ID)
	require.NoError(t, err)
	_, err = c.Commit(ctx, res.ID)
	require.True(t, client.IsNotHeld(err), "%v", err)
	require.Equal(t, client.StatusReleased, client.ProblemOf(err).ReservationStatus)

	_, err = client.New(srv.url, tokS1).GetItem(ctx, "s2", "lamp")
	require.True(t, client.IsUnauthorized(err), "%v", err)
	_, err = client.New(srv.url, "wrong").Stores(ctx)
	require.True(t, client.IsUnauthorized(err), "%v", err)
	require.Contains(t, err.Error(), "401")

	// The same key for a different request: 422.
	k := client.WithIdempotencyKey("key-" + testsupport.RandomHex(4))
	_, err = c.Adjust(ctx, "s1", "desk", client.Adjustment{Delta: 1}, k)
	require.NoError(t, err)
	_, err = c.Adjust(ctx, "s1", "desk", client.Adjustment{Delta: 2}, k)
	require.Equal(t, http.StatusUnprocessableEntity, client.StatusOf(err), "%v", err)
}

func TestRetryAfterLostResponseAppliesOnce(t *testing.T) {
	srv := newServer(t)
	p := newProxy(t, srv.url)
	p.mu.Lock()
	p.drop = func(n int, r *http.Request) bool { return n == 1 }
	p.mu.Unlock()
	// No keep-alive: the transport never retries by itself, so this is the
	// client's own retry.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	direct := client.New(srv.url, tokAdmin)
	c := client.New(p.URL, tokAdmin, client.WithHTTPClient(hc))
	ctx := context.Background()
	_, err := direct.PutItem(ctx, "s1", "lamp", client.SetItem{OnHand: 10})
	require.NoError(t, err)

	res, err := c.Adjust(ctx, "s1", "lamp", client.Adjustment{Delta: -3})
	require.NoError(t, err)
	require.True(t, res.Replayed)
	require.Equal(t, int64(7), res.OnHand)
	sent := p.sent()
	require.Len(t, sent, 2)
	key := sent[0].Header.Get(client.HeaderIdempotencyKey)
	require.NotEmpty(t, key)
	require.Equal(t, key, sent[1].Header.Get(client.HeaderIdempotencyKey))
	got, err := direct.GetItem(ctx, "s1", "lamp")
	require.NoError(t, err)
	require.Equal(t, int64(7), got.OnHand, "applied once")

	// A key from the context is the one sent.
	ctxKey := "ctx-" + testsupport.RandomHex(4)
	_, err = c.Adjust(client.ContextWithIdempotencyKey(ctx, ctxKey), "s1", "lamp", client.Adjustment{Delta: 1})
	require.NoError(t, err)
	require.Equal(t, ctxKey, p.sent()[2].Header.Get(client.HeaderIdempotencyKey))

	// A reservation's retry replays the same reservation.
	p.mu.Lock()
	p.requests = nil
	p.mu.Unlock()
	rs, err := c.Reserve(ctx, "s1", client.ReserveRequest{Lines: []client.Line{{SKU: "lamp", Qty: 1}}})
	require.NoError(t, err)
	require.True(t, rs.Replayed)
	got, err = direct.GetItem(ctx, "s1", "lamp")
	require.NoError(t, err)
	require.Equal(t, int64(1), got.Reserved)
}

func TestRetry503HonoursRetryAfter(t *testing.T) {
	srv := newServer(t)
	p := newProxy(t, srv.url)
	p.before = func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n > 1 {
			return false
		}
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"type":"https://shelfline.dev/problems/unavailable","title":"Service Unavailable","status":503,"detail":"busy"}`))
		return true
	}
	c := client.New(p.URL, tokAdmin)
	ctx := context.Background()
	start := time.Now()
	res, err := c.PutItem(ctx, "s1", "lamp", client.SetItem{OnHand: 4})
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "Retry-After waited")
	require.True(t, res.Created)
	require.False(t, res.Replayed, "the 503 stored nothing")
	sent := p.sent()
	require.Len(t, sent, 2)
	require.Equal(t, sent[0].Header.Get(client.HeaderIdempotencyKey), sent[1].Header.Get(client.HeaderIdempotencyKey))

	// Out of attempts, the 503 is the error; the wait is bounded by the cap.
	p.set(func(n int, w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
		return true
	})
	c = client.New(p.URL, tokAdmin, client.WithMaxAttempts(3), client.WithBackoffCap(50*time.Millisecond))
	start = time.Now()
	_, err = c.Stores(ctx)
	require.True(t, client.IsUnavailable(err), "%v", err)
	require.Equal(t, time.Hour, client.ProblemOf(err).RetryAfter)
	require.Less(t, time.Since(start), 2*time.Second)
	require.Len(t, p.sent(), 2+3)
}

func TestConflictNotRetried(t *testing.T) {
	srv := newServer(t)
	p := newProxy(t, srv.url)
	c := client.New(p.URL, tokAdmin)
	ctx := context.Background()
	_, err := c.PutItem(ctx, "s1", "lamp", client.SetItem{OnHand: 1})
	require.NoError(t, err)
	_, err = c.Checkout(ctx, "s1", client.CheckoutRequest{Lines: []client.Line{{SKU: "lamp", Qty: 2}}})
	require.True(t, client.IsInsufficientStock(err), "%v", err)
	_, err = c.GetItem(ctx, "s1", "ghost")
	require.True(t, client.IsNotFound(err))
	require.Len(t, p.sent(), 3, "one request each")
}

func TestEventsReadAndResume(t *testing.T) {
	srv := newServer(t)
	p := newProxy(t, srv.url)
	c := client.New(p.URL, tokAdmin)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := c.PutItem(ctx, "s1", "lamp", client.SetItem{OnHand: 10})
	require.NoError(t, err)

	st, err := c.Events(ctx, client.EventsRequest{Store: "s1"})
	require.NoError(t, err)
	_, err = c.Adjust(ctx, "s1", "lamp", client.Adjustment{Delta: -1, Reason: "one"})
	require.NoError(t, err)
	m, err := st.Next()
	require.NoError(t, err)
	require.NotNil(t, m.Event)
	require.NotEmpty(t, m.ID)
	require.Equal(t, "lamp", m.Event.SKU)
	require.Equal(t, int64(-1), m.Event.DeltaOnHand)
	require.Equal(t, "one", m.Event.Reason)
	require.Equal(t, m.ID, st.LastEventID())
	require.NoError(t, st.Close())

	// Changes while no one listens come on a stream resumed from there.
	_, err = c.Adjust(ctx, "s1", "lamp", client.Adjustment{Delta: -2, Reason: "two"})
	require.NoError(t, err)
	st, err = c.Events(ctx, client.EventsRequest{Store: "s1", LastEventID: m.ID})
	require.NoError(t, err)
	defer st.Close()
	m2, err := st.Next()
	require.NoError(t, err)
	require.Equal(t, "two", m2.Event.Reason)
	require.NotEqual(t, m.ID, m2.ID)

	// A broken connection is reopened from the last id by Next itself.
	p.CloseClientConnections()
	_, err = c.Adjust(ctx, "s1", "lamp", client.Adjustment{Delta: -3, Reason: "three"})
	require.NoError(t, err)
	m3, err := st.Next()
	require.NoError(t, err)
	require.Equal(t, "three", m3.Event.Reason)
	var resumed []string
	for _, r := range p.sent() {
		if r.URL.Path == "/v1/events" {
			resumed = append(resumed, r.Header.Get("Last-Event-ID"))
		}
	}
	require.Len(t, resumed, 3)
	require.Equal(t, []string{"", m.ID}, resumed[:2])
	require.NotEmpty(t, resumed[2])

	_, err = client.New(srv.url, tokS1).Events(ctx, client.EventsRequest{Store: "s2"})
	require.True(t, client.IsUnauthorized(err), "%v", err)
}
