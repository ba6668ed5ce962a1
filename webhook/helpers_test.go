package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/webhook"
)

// env is one test's world: an engine on its own Redis prefix, a migrated
// schema, and the subscription store.
type env struct {
	e     *engine.Engine
	rdb   *redis.Client
	pool  *pgxpool.Pool
	store *webhook.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	rdb := testsupport.RedisClient(t, 64)
	prefix := testsupport.IsolatedPrefix(t, rdb)
	e, err := engine.New(engine.Config{Client: rdb, Prefix: prefix, Partitions: 4})
	require.NoError(t, err)
	require.NoError(t, e.Init(t.Context()))
	_, pool := testsupport.LedgerSchema(t)
	return &env{e: e, rdb: rdb, pool: pool, store: webhook.NewStore(pool, webhook.StoreConfig{AllowPrivate: true})}
}

// fast is a dispatcher config for tests: short waits, private targets.
func fast(cfg webhook.Config) webhook.Config {
	if cfg.Block == 0 {
		cfg.Block = 50 * time.Millisecond
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin = 20 * time.Millisecond
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 100 * time.Millisecond
	}
	if cfg.Poll == 0 {
		cfg.Poll = 20 * time.Millisecond
	}
	if cfg.Refresh == 0 {
		cfg.Refresh = 50 * time.Millisecond
	}
	cfg.AllowPrivate = true
	return cfg
}

// start runs a dispatcher until the test ends or stop is called.
func (v *env) start(t *testing.T, cfg webhook.Config) (*webhook.Dispatcher, func()) {
	t.Helper()
	d, err := webhook.NewDispatcher(v.e, v.pool, fast(cfg))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		require.NoError(t, d.Run(ctx))
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Errorf("the dispatcher did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return d, stop
}

func (v *env) subscribe(t *testing.T, url string, events ...string) webhook.Subscription {
	t.Helper()
	s, err := v.store.Create(t.Context(), webhook.NewSubscription{URL: url, Events: events, Secret: "a-secret-of-16-bytes-or-more"})
	require.NoError(t, err)
	return s
}

func (v *env) set(t *testing.T, store, sku string, onHand int64, reorder *int64) {
	t.Helper()
	_, err := v.e.Set(t.Context(), engine.SetRequest{Store: store, SKU: sku, OnHand: onHand, ReorderPoint: reorder}, engine.Op{})
	require.NoError(t, err)
}

func (v *env) sell(t *testing.T, store, sku string, qty int64) error {
	t.Helper()
	_, err := v.e.Checkout(t.Context(), engine.CheckoutRequest{Store: store, Lines: []engine.Line{{SKU: sku, Qty: qty}}}, engine.Op{})
	return err
}

// got is one delivery a receiver took.
type got struct {
	id      string
	payload webhook.Payload
}

// receiver is a real HTTP endpoint that checks every delivery's signature
// and records those it accepted; answer decides each answer (nil: 200).
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	secret string

	mu     sync.Mutex
	all    []got // every request, accepted or not
	ok     []got // accepted (2xx) ones
	answer func(n int, g got) int
	bad    int
}

func newReceiver(t testing.TB, secret string, answer func(n int, g got) int) *receiver {
	r := &receiver{t: t, secret: secret, answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var g got
	g.id = req.Header.Get(webhook.HeaderEventID)
	err := webhook.Verify(r.secret, req.Header.Get(webhook.HeaderSignature), body, time.Now(), 5*time.Minute)
	jerr := json.Unmarshal(body, &g.payload)
	r.mu.Lock()
	if err != nil || jerr != nil || g.payload.ID != g.id || req.Method != http.MethodPost {
		r.bad++
		r.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.all = append(r.all, g)
	n := len(r.all)
	answer := r.answer
	r.mu.Unlock()
	code := http.StatusOK
	if answer != nil {
		code = answer(n, g)
	}
	if code >= 200 && code < 300 {
		r.mu.Lock()
		r.ok = append(r.ok, g)
		r.mu.Unlock()
	}
	w.WriteHeader(code)
}

// accepted returns the deliveries accepted so far.
func (r *receiver) accepted() []got {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]got(nil), r.ok...)
}

// requests returns every well-signed request so far.
func (r *receiver) requests() []got {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]got(nil), r.all...)
}

func (r *receiver) badRequests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad
}

// ofType returns the accepted deliveries of an event name.
func (r *receiver) ofType(name string) []got {
	var out []got
	for _, g := range r.accepted() {
		if g.payload.Type == name {
			out = append(out, g)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }
