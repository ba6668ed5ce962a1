package main

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/webhook"
)

// `inventory webhooks` SIGKILLed while an endpoint holds its delivery loses
// nothing: the next worker sends the event again, with the same id.
func TestWebhooksKilledMidDelivery(t *testing.T) {
	t.Parallel()
	env := processEnv(t)
	env["INVENTORY_WEBHOOK_ALLOW_PRIVATE"] = "true"
	// No admin address: the test does not use it, and the second worker
	// would have to bind the port the killed one held, which a busy machine
	// may have handed to another socket meanwhile (then it exits at once).
	env["INVENTORY_ADMIN_ADDR"] = "off"
	code, out := execBinary(t, env, "migrate")
	require.Equal(t, 0, code, out)
	pool, err := pgxpool.New(t.Context(), env["INVENTORY_DATABASE_URL"])
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	var mu sync.Mutex
	var ids []string
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids = append(ids, r.Header.Get(webhook.HeaderEventID))
		first := len(ids) == 1
		mu.Unlock()
		if first {
			entered <- struct{}{}
			<-release // held until the worker is killed
		}
	}))
	t.Cleanup(rcv.Close)
	t.Cleanup(func() { close(release) })
	store := webhook.NewStore(pool, webhook.StoreConfig{AllowPrivate: true})
	sub, err := store.Create(t.Context(), webhook.NewSubscription{URL: rcv.URL, Events: []string{"stock_changed"}})
	require.NoError(t, err)

	p := startProcess(t, env, "webhooks")
	rdb := testsupport.RedisClient(t, 0)
	e, err := engine.New(engine.Config{Client: rdb, Prefix: env["INVENTORY_REDIS_PREFIX"], Partitions: 4})
	require.NoError(t, err)
	require.NoError(t, e.Init(t.Context()))
	_, err = e.Set(t.Context(), engine.SetRequest{Store: "s1", SKU: "lamp", OnHand: 3}, engine.Op{})
	require.NoError(t, err)
	select {
	case <-entered:
	case <-p.done:
		t.Fatalf("inventory webhooks exited (%v) before the delivery:\n%s", p.err, p.out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("no delivery:\n%s", p.out.String())
	}
	require.NoError(t, p.cmd.Process.Kill())
	<-p.done

	// Watched: a worker that exits fails the test at once, with its output.
	p = startProcess(t, env, "webhooks")
	p.waitFor(90*time.Second, "the delivery again, after the lease ran out", func() bool {
		ds, err := store.Deliveries(t.Context(), sub.ID, 10)
		require.NoError(t, err)
		return len(ds) == 1 && ds[0].Status == webhook.StatusDelivered
	})
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, ids, 2)
	require.Equal(t, "s1/lamp/1/stock_changed", ids[0])
	require.Equal(t, ids[0], ids[1])
}
