package scaleout

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/redistest"
	"github.com/shelfline/inventory/internal/testsupport"
)

// fillBacklog writes about n events through the engine (adjustments over 48
// stores × 4 SKUs, spread over every partition) with no persister running,
// and returns how many entries the streams hold.
func (d *deployment) fillBacklog(t *testing.T, n int) int64 {
	t.Helper()
	ctx := context.Background()
	var stores []string
	for i := 0; i < 48; i++ {
		stores = append(stores, fmt.Sprintf("tp%d", i))
	}
	skus := []string{"sofa", "lamp", "rug", "desk"}
	for _, s := range stores {
		for _, k := range skus {
			_, err := d.e.Set(ctx, engine.SetRequest{Store: s, SKU: k, OnHand: 1_000_000}, engine.Op{})
			require.NoError(t, err)
		}
	}
	var left atomic.Int64
	left.Store(int64(n - len(stores)*len(skus)))
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; left.Add(-1) >= 0; i++ {
				s, k := stores[(g*7+i)%len(stores)], skus[(g+i)%len(skus)]
				octx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := d.e.Adjust(octx, engine.AdjustRequest{Store: s, SKU: k, Delta: 1}, engine.Op{})
				cancel()
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		t.Fatalf("fill backlog: %v", err)
	}
	var total int64
	for p := 0; p < partitions; p++ {
		l, err := d.rdb.XLen(ctx, d.e.StreamKey(p)).Result()
		require.NoError(t, err)
		total += l
	}
	return total
}

// TestPersisterThroughputWorkers measures `inventory persist` draining the
// same backlog (INVENTORY_SCALEOUT_EVENTS events, default 20000, written
// through the engine before any worker starts) with one worker owning every
// partition against three workers owning a third each. It logs the figures
// and asserts only that every event reached the ledger: speed is not
// asserted on a shared machine.
func TestPersisterThroughputWorkers(t *testing.T) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("INVENTORY_SCALEOUT_EVENTS")); err == nil && v > 0 {
		n = v
	}
	cl := redistest.Shared(t)
	runs := []struct {
		name string
		own  []string
	}{
		{"1 worker", []string{"0-15"}},
		{"3 workers", []string{"0-5", "6-10", "11-15"}},
	}
	deps := make([]*deployment, len(runs))
	backlog := make([]int64, len(runs))
	for i := range runs {
		deps[i] = newDeployment(t, cl)
		t0 := time.Now()
		backlog[i] = deps[i].fillBacklog(t, n)
		t.Logf("%s: backlog of %d events written through the engine in %s", runs[i].name, backlog[i], time.Since(t0).Round(time.Millisecond))
	}
	for i, r := range runs {
		d := deps[i]
		t0 := time.Now()
		var procs []*proc
		for j, own := range r.own {
			name := fmt.Sprintf("tp-%d", j)
			procs = append(procs, d.start(name, "persist", "--own", own, "--consumer", name))
		}
		var first time.Duration
		var got int64
		ok := testsupport.Poll(90*time.Second, func() bool {
			got = d.count(`SELECT count(*) FROM inventory_events`)
			if got > 0 && first == 0 {
				first = time.Since(t0)
			}
			return got == backlog[i]
		})
		total := time.Since(t0)
		require.True(t, ok, "%s: %d of %d events in the ledger", r.name, got, backlog[i])
		for _, p := range procs {
			p.kill()
		}
		drain := total - first
		t.Logf("%s: %d events drained in %s from the start of the processes (first row after %s): %.0f events/s overall, %.0f events/s after the first row",
			r.name, backlog[i], total.Round(time.Millisecond), first.Round(time.Millisecond),
			float64(backlog[i])/total.Seconds(), float64(backlog[i])/drain.Seconds())
	}
}
