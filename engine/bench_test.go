package engine_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
)

// benchHotSKU runs checkouts of one unit of one hot SKU from many parallel
// callers against real Redis. Compare with redis-benchmark running a trivial
// EVALSHA on the same Redis (make bench prints both).
func benchHotSKU(b *testing.B, cfg engine.Config) {
	c := newRealClient(b)
	cfg.Client = c
	cfg.Prefix = testsupport.IsolatedPrefix(b, c)
	cfg.StreamHighWatermark = -1
	e, err := engine.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := e.Init(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: engine.MaxOnHand}, engine.Op{}); err != nil {
		b.Fatal(err)
	}
	req := engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}
	b.SetParallelism(100) // 100 × GOMAXPROCS callers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Checkout(ctx, req, engine.Op{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	it, err := e.GetItem(ctx, "s1", "sofa")
	if err != nil {
		b.Fatal(err)
	}
	if sold := engine.MaxOnHand - it.OnHand; sold != int64(b.N) {
		b.Fatalf("sold %d, want %d", sold, b.N)
	}
}

func BenchmarkCheckoutHotSKU(b *testing.B) {
	b.Run("group-commit", func(b *testing.B) { benchHotSKU(b, engine.Config{}) })
	b.Run("one-call-per-request", func(b *testing.B) { benchHotSKU(b, engine.Config{DisableGroupCommit: true}) })
}

// BenchmarkItemMemory measures Redis memory per item (used_memory before and
// after creating INVENTORY_BENCH_ITEMS items, default 100000, over 30
// stores; events and idempotency records, which the persister trims and TTLs
// expire, are removed before measuring). It reports bytes/item.
func BenchmarkItemMemory(b *testing.B) {
	n := 100000
	if s := os.Getenv("INVENTORY_BENCH_ITEMS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	c := newRealClient(b)
	prefix := testsupport.IsolatedPrefix(b, c)
	e, err := engine.New(engine.Config{Client: c, Prefix: prefix, StreamHighWatermark: -1})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := e.Init(ctx); err != nil {
		b.Fatal(err)
	}
	used := func() int64 {
		for _, l := range strings.Split(c.Info(ctx, "memory").Val(), "\r\n") {
			if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
				x, _ := strconv.ParseInt(v, 10, 64)
				return x
			}
		}
		b.Fatal("no used_memory in INFO")
		return 0
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		before := used()
		var wg sync.WaitGroup
		const stores = 30
		for s := 0; s < stores; s++ {
			wg.Add(1)
			go func(s int) {
				defer wg.Done()
				for k := s; k < n; k += stores {
					if _, err := e.Set(ctx, engine.SetRequest{Store: fmt.Sprintf("store-%02d", s), SKU: fmt.Sprintf("SKU-%07d", k), OnHand: int64(k % 50)}, engine.Op{}); err != nil {
						b.Error(err)
						return
					}
				}
			}(s)
		}
		wg.Wait()
		for p := 0; p < e.Partitions(); p++ {
			c.Del(ctx, e.StreamKey(p))
		}
		iter := c.Scan(ctx, 0, prefix+":*idem*", 10000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		b.ReportMetric(float64(used()-before)/float64(n), "bytes/item")
		if err := testsupport.CleanPrefix(ctx, c, prefix); err != nil {
			b.Fatal(err)
		}
		if err := e.Init(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
