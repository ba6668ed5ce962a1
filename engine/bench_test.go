package engine_test

import (
	"context"
	"testing"

	"github.com/shelfline/inventory/engine"
)

// benchHotSKU runs checkouts of one unit of one hot SKU from many parallel
// callers against real Redis. Compare with redis-benchmark running a trivial
// EVALSHA on the same Redis (make bench prints both).
func benchHotSKU(b *testing.B, cfg engine.Config) {
	c := newRealClient(b)
	cfg.Client = c
	cfg.Prefix = testPrefix()
	cfg.StreamHighWatermark = -1
	e, err := engine.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := e.Init(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cleanPrefix(b, c, cfg.Prefix)
		c.Close()
	})
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
