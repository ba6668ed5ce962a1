package chaos

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// Scenario 2: Redis becomes unreachable mid-traffic (every connection cut,
// new ones refused). Writes fail fast as unavailability (503), nothing is
// half-done, and the same engine recovers once Redis is back, without a
// restart.
func TestRedisUnreachable(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{client: failFastClient})
	_, _ = w.startPersister(w.dpool, persist.PersisterConfig{})
	tr := newTraffic(t, w.e, trafficCfg{stores: []string{"s1", "s2"}, skus: []string{"sofa", "lamp"},
		workers: 6, ops: pick(800, 40000), dur: pick(5*time.Second, 60*time.Second), giveUp: 1500 * time.Millisecond})
	outage := pick(1500*time.Millisecond, 10*time.Second)
	var down, up time.Time
	stop := background(t, "fault loop", func(ctx context.Context) error {
		for i := 0; i < 10000 && ctx.Err() == nil; i++ { // bounded; stops with the traffic
			sleepCtx(ctx, 800*time.Millisecond)
			if ctx.Err() != nil {
				return nil
			}
			w.rproxy.Cut()
			if down.IsZero() {
				down = time.Now()
			}
			// While it is down, the engine answers at once, and says so.
			ectx, cancel := context.WithTimeout(ctx, 2*time.Second)
			t0 := time.Now()
			_, err := w.e.Adjust(ectx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1}, engine.Op{})
			cancel()
			if ctx.Err() == nil {
				if err == nil || !engine.IsUnavailable(err) {
					t.Errorf("a write while Redis is unreachable: want unavailable, got %v", err)
				}
				if d := time.Since(t0); d > time.Second {
					t.Errorf("a write while Redis is unreachable took %s to fail", d)
				}
				if ok, err := w.e.PartitionReady(ectx, 0); err == nil || ok {
					t.Errorf("readiness while Redis is unreachable: ready=%v err=%v", ok, err)
				}
			}
			sleepCtx(ctx, outage)
			w.rproxy.Restore()
			up = time.Now()
		}
		return nil
	})
	tr.run(context.Background())
	require.NoError(t, stop())
	require.False(t, down.IsZero(), "Redis went down during the traffic")
	require.Positive(t, tr.unavailable.Load(), "clients saw the outage")
	// Recovered without a restart: the same engine serves again.
	testsupport.WaitFor(t, 5*time.Second, "the engine serves again", func() bool {
		_, err := w.e.Adjust(context.Background(), engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1}, op(tr.newKey()))
		return err == nil
	})
	t.Logf("last outage ended %s before the end of traffic", time.Since(up).Round(time.Millisecond))
	w.checkAll(tr)
}

// failFastClient: one dial attempt, no retries by go-redis (the engine
// retries itself): an unreachable Redis is known at once. The binary's
// client (go-redis defaults) is slower: see
// TestUnreachableRedisFailsFastWithTheBinarysClient.
func failFastClient(o *redis.Options) {
	o.DialTimeout = 300 * time.Millisecond
	o.DialerRetries = 1
	o.MaxRetries = -1
}

// Scenario 4: SCRIPT FLUSH and deleting the engine's function libraries
// mid-traffic are transparent: the engine reloads its scripts on NOSCRIPT
// and its libraries on "Function not found", and no client sees an error.
func TestScriptFlushTransparent(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{})
	_, _ = w.startPersister(w.dpool, persist.PersisterConfig{})
	tr := newTraffic(t, w.e, trafficCfg{stores: []string{"s1", "s2"}, skus: []string{"sofa", "lamp"},
		workers: 6, ops: pick(500, 20000), dur: pick(4*time.Second, 60*time.Second)})
	flushes := 0
	stop := background(t, "script flush loop", func(ctx context.Context) error {
		for i := 0; i < 10000 && ctx.Err() == nil; i++ { // bounded; stops with the traffic
			sleepCtx(ctx, 100*time.Millisecond)
			if err := flushScripts(w); err != nil {
				return err
			}
			flushes++
		}
		return nil
	})
	tr.run(context.Background())
	require.NoError(t, stop())
	require.Greater(t, flushes, 5)
	require.Zero(t, tr.retries.Load()+tr.unknown.Load(), "no client saw the flushes: %s", tr.summary())
	// Reads fan out over every partition through a pipeline: also transparent.
	require.NoError(t, flushScripts(w))
	a, err := w.e.Availability(context.Background(), "sofa")
	require.NoError(t, err)
	require.Len(t, a.Stores, 2)
	w.checkAll(tr)
}

// flushScripts empties the script cache and deletes the engine's function
// libraries, as a restart would.
func flushScripts(w *world) error {
	ctx := context.Background()
	if err := w.direct.ScriptFlush(ctx).Err(); err != nil {
		return err
	}
	for _, name := range w.e.Scripts().FunctionNames() {
		if err := w.direct.FunctionDelete(ctx, name).Err(); err != nil && !strings.Contains(err.Error(), "not found") {
			return err
		}
	}
	return nil
}
