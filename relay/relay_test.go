package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
	"github.com/shelfline/inventory/relay"
)

func newEngine(t *testing.T) *engine.Engine {
	t.Helper()
	rdb := testsupport.RedisClient(t, 64)
	prefix := testsupport.IsolatedPrefix(t, rdb)
	e, err := engine.New(engine.Config{Client: rdb, Prefix: prefix, Partitions: 4})
	require.NoError(t, err)
	require.NoError(t, e.Init(t.Context()))
	return e
}

func newCluster(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, relay.DefaultTopic))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// start runs a relay until stop is called (or the test ends); stop cancels
// it at whatever point it is, as a kill would, and closes its client.
func start(t *testing.T, e *engine.Engine, c *kfake.Cluster, consumer string) (*relay.Relay, func()) {
	t.Helper()
	r, err := relay.New(e, relay.Config{Brokers: c.ListenAddrs(), Source: relay.Source{Consumer: consumer, Block: 20 * time.Millisecond, BatchSize: 50}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		require.NoError(t, r.Run(ctx))
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			r.Close()
		})
	}
	t.Cleanup(stop)
	return r, stop
}

// consumeAll reads the topic from the start until it holds at least n
// records, and returns each key's event versions in the order read.
func consumeAll(t *testing.T, c *kfake.Cluster, n int) map[string][]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(relay.DefaultTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	out := map[string][]int64{}
	got := 0
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for got < n {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "read %d of %d records", got, n)
		fs.EachError(func(_ string, _ int32, err error) { require.NoError(t, err) })
		fs.EachRecord(func(r *kgo.Record) {
			var ev engine.Event
			require.NoError(t, json.Unmarshal(r.Value, &ev))
			require.Equal(t, relay.Key(ev.Store, ev.SKU), string(r.Key))
			out[string(r.Key)] = append(out[string(r.Key)], ev.Version)
			got++
		})
	}
	return out
}

// TestRelayKilledMidStream: while changes pour in, the relay is killed
// mid-stream and another takes over; every event reaches the topic, and each
// item's events, counting each version at its first sighting, arrive in
// version order without a gap.
func TestRelayKilledMidStream(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	c := newCluster(t)
	ctx := t.Context()
	var items []engine.ItemRef
	for s := range 3 {
		for k := range 4 {
			store, sku := fmt.Sprint("s", s), fmt.Sprint("sku", k)
			items = append(items, engine.ItemRef{Store: store, SKU: sku})
			_, err := e.Set(ctx, engine.SetRequest{Store: store, SKU: sku, OnHand: 1000}, engine.Op{})
			require.NoError(t, err)
		}
	}
	const changes = 600
	written := make(chan int, changes)
	go func() {
		defer close(written)
		for i := range changes {
			s, k := rand.N(3), rand.N(4)
			_, err := e.Adjust(context.Background(), engine.AdjustRequest{Store: fmt.Sprint("s", s), SKU: fmt.Sprint("sku", k), Delta: 1}, engine.Op{})
			if err != nil {
				t.Error(err)
				return
			}
			written <- i
		}
	}()
	r1, kill := start(t, e, c, "relay-1")
	testsupport.WaitFor(t, 30*time.Second, "the first relay's progress", func() bool { return r1.Stats().Produced >= 100 })
	kill()
	r2, _ := start(t, e, c, "relay-2")
	for range written {
	}
	total := len(items) + changes
	testsupport.WaitFor(t, 30*time.Second, "every entry relayed", func() bool {
		lag, err := r2.Lag(ctx)
		require.NoError(t, err)
		for _, n := range lag {
			if n > 0 {
				return false
			}
		}
		return true
	})
	got := consumeAll(t, c, total)
	for _, ref := range items {
		key := relay.Key(ref.Store, ref.SKU)
		it, err := e.GetItem(ctx, ref.Store, ref.SKU)
		require.NoError(t, err)
		var first []int64
		seen := map[int64]bool{}
		for _, v := range got[key] {
			if !seen[v] {
				seen[v] = true
				first = append(first, v)
			}
		}
		want := make([]int64, it.Version)
		for i := range want {
			want[i] = int64(i + 1)
		}
		require.Equal(t, want, first, "%s: every version, in order", key)
	}
	require.Positive(t, r1.Stats().Produced)
	require.Positive(t, r2.Stats().Produced)
	// the metrics: records acknowledged, and no lag left
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(r2.Collector()))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "inventory_relay_lag_events":
				require.Zero(t, m.GetGauge().GetValue())
			case "inventory_relay_records_total":
				require.Equal(t, float64(r2.Stats().Produced), m.GetCounter().GetValue())
			}
		}
	}
	require.True(t, names["inventory_relay_lag_events"] && names["inventory_relay_records_total"])
}

// TestTrimWaitsForTheRelay: the relay's group is one the persister's
// trimming waits for (persist's tests show how it waits).
func TestTrimWaitsForTheRelay(t *testing.T) {
	t.Parallel()
	require.Contains(t, persist.DownstreamGroups, relay.DefaultGroup)
}
