package engine_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
)

// transferBenchEngine is an engine on the real Redis under a prefix of its own.
func transferBenchEngine(b *testing.B, cfg engine.Config) *engine.Engine {
	c := newRealClient(b)
	cfg.Client = c
	cfg.Prefix = testsupport.IsolatedPrefix(b, c)
	cfg.StreamHighWatermark = -1
	e, err := engine.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Init(context.Background()); err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkTransfer measures whole transfers by one caller, one after the
// other, between two stores in different partitions: create (ship, expect,
// drop the pending step: 3 round trips), and create then receive all
// (4). Reported as transfers/s. Baseline in the same run: one checkout of
// one line by one caller (1 round trip).
func BenchmarkTransfer(b *testing.B) {
	ctx := context.Background()
	one := []engine.Line{{SKU: "sofa", Qty: 1}}
	b.Run("checkout-baseline", func(b *testing.B) {
		e := transferBenchEngine(b, engine.Config{})
		if _, err := e.Set(ctx, engine.SetRequest{Store: whStore, SKU: "sofa", OnHand: engine.MaxOnHand}, engine.Op{}); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := e.Checkout(ctx, engine.CheckoutRequest{Store: whStore, Lines: one}, engine.Op{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})
	b.Run("create", func(b *testing.B) {
		e := transferBenchEngine(b, engine.Config{})
		if _, err := e.Set(ctx, engine.SetRequest{Store: whStore, SKU: "sofa", OnHand: engine.MaxOnHand}, engine.Op{}); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := e.CreateTransfer(ctx, engine.TransferRequest{From: whStore, To: shopStore, Lines: one}, engine.Op{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
	})
	b.Run("create-and-receive", func(b *testing.B) {
		e := transferBenchEngine(b, engine.Config{})
		if _, err := e.Set(ctx, engine.SetRequest{Store: whStore, SKU: "sofa", OnHand: engine.MaxOnHand}, engine.Op{}); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			r, err := e.CreateTransfer(ctx, engine.TransferRequest{From: whStore, To: shopStore, Lines: one}, engine.Op{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.ReceiveTransfer(ctx, r.Transfer.ID, []engine.ReceiveLine{{SKU: "sofa", Received: 1}}, engine.Op{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
	})
}

// BenchmarkTransferWorker measures one worker finishing steps left undone:
// b.N transfers stopped after shipping, then one FinishDue pass (lease,
// check, expect step, drop, release: 5 round trips each). Reported as
// steps/s.
func BenchmarkTransferWorker(b *testing.B) {
	ctx := context.Background()
	clock := newFakeClock()
	var stop atomic.Bool
	stop.Store(true)
	crash := errors.New("stopped")
	e := transferBenchEngine(b, engine.Config{Clock: clock.Now, BetweenTransferSteps: func(string) error {
		if stop.Load() {
			return crash
		}
		return nil
	}})
	if _, err := e.Set(ctx, engine.SetRequest{Store: whStore, SKU: "sofa", OnHand: engine.MaxOnHand}, engine.Op{}); err != nil {
		b.Fatal(err)
	}
	one := []engine.Line{{SKU: "sofa", Qty: 1}}
	for i := 0; i < b.N; i++ {
		if _, err := e.CreateTransfer(ctx, engine.TransferRequest{From: whStore, To: shopStore, Lines: one}, engine.Op{}); !errors.Is(err, crash) {
			b.Fatal(err)
		}
	}
	clock.Advance(3 * time.Second)
	w := engine.NewTransferWorker(e, engine.TransferWorkerConfig{Batch: 1000})
	b.ResetTimer()
	done := 0
	for done < b.N {
		n := w.FinishDue(ctx)
		if n == 0 {
			b.Fatalf("finished %d of %d", done, b.N)
		}
		done += n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
}

// BenchmarkTransferRecovery measures, on the real clock, how long a step
// left undone by a crash waits until a running worker (default settings:
// TransferGrace 2 s, Interval 250 ms) has finished it: from the moment the
// caller stopped to the moment the destination's record exists. Reported
// as ms per step.
func BenchmarkTransferRecovery(b *testing.B) {
	ctx := context.Background()
	crash := errors.New("stopped")
	e := transferBenchEngine(b, engine.Config{BetweenTransferSteps: func(string) error { return crash }})
	if _, err := e.Set(ctx, engine.SetRequest{Store: whStore, SKU: "sofa", OnHand: engine.MaxOnHand}, engine.Op{}); err != nil {
		b.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = engine.NewTransferWorker(e, engine.TransferWorkerConfig{}).Run(wctx) }()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		_, err := e.CreateTransfer(ctx, engine.TransferRequest{From: whStore, To: shopStore, Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{})
		if !errors.Is(err, crash) {
			b.Fatal(err)
		}
		start := time.Now()
		deadline := start.Add(30 * time.Second)
		for {
			open, err := e.OpenTransfers(ctx, shopStore)
			if err != nil {
				b.Fatal(err)
			}
			if len(open) == i+1 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the worker did not finish the step within 30s")
			}
			time.Sleep(5 * time.Millisecond) // polling interval of the measurement
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/step")
}
