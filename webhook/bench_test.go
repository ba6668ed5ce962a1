package webhook_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/webhook"
)

// BenchmarkDeliveries measures deliveries per second to a local receiver
// that answers 200 at once: b.N events (sales spread over 200 items) are
// written first, then the workers start and the clock runs until the last
// delivery is recorded. Reported as deliveries/s.
//
//	go test -run '^$' -bench BenchmarkDeliveries -benchtime 20000x ./webhook/
func BenchmarkDeliveries(b *testing.B) {
	v := newBenchEnv(b, nil)
	r := newReceiver(b, secret, nil)
	defer r.srv.Close()
	sub, err := v.store.Create(context.Background(), webhook.NewSubscription{URL: r.srv.URL, Events: []string{"stock_changed"}, Secret: secret})
	require.NoError(b, err)
	const items = 200
	for i := range items {
		_, err := v.e.Set(context.Background(), engine.SetRequest{Store: "s1", SKU: fmt.Sprint("sku", i), OnHand: 1_000_000_000}, engine.Op{})
		require.NoError(b, err)
	}
	sell(b, v.e, b.N, items)
	b.ResetTimer()
	start := time.Now()
	d, err := webhook.NewDispatcher(v.e, v.pool, webhook.Config{AllowPrivate: true, Poll: 20 * time.Millisecond, Refresh: 50 * time.Millisecond, Concurrency: 32})
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	want := int64(items + b.N)
	deadline := time.Now().Add(10 * time.Minute)
	for d.Stats().Attempts[sub.ID][webhook.OutcomeDelivered] < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	require.Equal(b, want, d.Stats().Attempts[sub.ID][webhook.OutcomeDelivered])
	b.ReportMetric(float64(want)/el.Seconds(), "deliveries/s")
}

// BenchmarkRedisCPUPerSale measures what the webhook workers add to
// Redis' work per sale, on a private redis-server (no other client): b.N
// checkouts from 16 goroutines, then, with the workers on, until they have
// read every event; Redis' CPU (INFO cpu, used_cpu_user+sys) and its
// commands' time (INFO commandstats, sum of usec) over the run, divided by
// the sales. Run both and compare: the difference is the workers' cost.
//
//	go test -run '^$' -bench BenchmarkRedisCPUPerSale -benchtime 20000x ./webhook/
func BenchmarkRedisCPUPerSale(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run("webhooks="+strconv.FormatBool(on), func(b *testing.B) {
			srv := testsupport.RedisServer(b)
			rdb := srv.NewClient(&redis.Options{PoolSize: 64})
			b.Cleanup(func() { _ = rdb.Close() }) // after the prefix's cleanup
			v := newBenchEnv(b, rdb)
			r := newReceiver(b, secret, nil)
			defer r.srv.Close()
			_, err := v.store.Create(context.Background(), webhook.NewSubscription{URL: r.srv.URL, Events: []string{"out_of_stock", "low_stock"}, Secret: secret})
			require.NoError(b, err)
			const items = 200
			for i := range items {
				_, err := v.e.Set(context.Background(), engine.SetRequest{Store: "s1", SKU: fmt.Sprint("sku", i), OnHand: 1_000_000_000}, engine.Op{})
				require.NoError(b, err)
			}
			var stop func()
			if on {
				d, err := webhook.NewDispatcher(v.e, v.pool, webhook.Config{AllowPrivate: true})
				require.NoError(b, err)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { defer close(done); _ = d.Run(ctx) }()
				stop = func() { cancel(); <-done }
				// the groups exist and the first events are read
				for !drainedAll(b, v.e) {
					time.Sleep(10 * time.Millisecond)
				}
			}
			cpu0, cmd0 := redisCost(b, rdb)
			b.ResetTimer()
			sell(b, v.e, b.N, items)
			if on {
				deadline := time.Now().Add(5 * time.Minute)
				for !drainedAll(b, v.e) && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
			}
			b.StopTimer()
			cpu1, cmd1 := redisCost(b, rdb)
			if stop != nil {
				stop()
			}
			b.ReportMetric((cpu1-cpu0)*1e6/float64(b.N), "redis-cpu-µs/sale")
			b.ReportMetric((cmd1-cmd0)/float64(b.N), "redis-cmd-µs/sale")
		})
	}
}

func drainedAll(b testing.TB, e *engine.Engine) bool {
	for p := range e.Partitions() {
		st, ok, err := e.GroupState(context.Background(), p, webhook.DefaultGroup)
		require.NoError(b, err)
		if !ok || st.Unacked > 0 {
			return false
		}
	}
	return true
}

// redisCost returns Redis' CPU seconds (user+sys) and the total time of
// its commands in µs so far.
func redisCost(b testing.TB, rdb *redis.Client) (cpu, cmdUsec float64) {
	info, err := rdb.Info(context.Background(), "cpu", "commandstats").Result()
	require.NoError(b, err)
	for _, line := range strings.Split(info, "\r\n") {
		k, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case k == "used_cpu_user" || k == "used_cpu_sys":
			f, _ := strconv.ParseFloat(val, 64)
			cpu += f
		case strings.HasPrefix(k, "cmdstat_"):
			for _, kv := range strings.Split(val, ",") {
				if u, ok := strings.CutPrefix(kv, "usec="); ok {
					f, _ := strconv.ParseFloat(u, 64)
					cmdUsec += f
				}
			}
		}
	}
	return cpu, cmdUsec
}

// sell makes n one-unit sales spread over items, from 16 goroutines.
func sell(b testing.TB, e *engine.Engine, n, items int) {
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				_, err := e.Checkout(context.Background(), engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: fmt.Sprint("sku", i%items), Qty: 1}}}, engine.Op{})
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// newBenchEnv is newEnv for a benchmark, on rdb when given (else the
// shared Redis).
func newBenchEnv(b testing.TB, rdb *redis.Client) *env {
	b.Helper()
	if rdb == nil {
		rdb = testsupport.RedisClient(b, 64)
	}
	prefix := testsupport.IsolatedPrefix(b, rdb)
	e, err := engine.New(engine.Config{Client: rdb, Prefix: prefix, Partitions: 4})
	require.NoError(b, err)
	require.NoError(b, e.Init(context.Background()))
	_, pool := testsupport.LedgerSchema(b)
	return &env{e: e, rdb: rdb, pool: pool, store: webhook.NewStore(pool, webhook.StoreConfig{AllowPrivate: true})}
}
