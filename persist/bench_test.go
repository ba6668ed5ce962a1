package persist_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/persist"
)

// BenchmarkPersister measures the persister's throughput from Redis streams
// into PostgreSQL, in events per second: well-formed events are appended to
// the partitions' streams first (not timed), then one persister drains them
// all. A drain has a fixed start-up cost (consumer groups, the first
// linger), so each run moves at least minBenchEvents events whatever b.N
// is, and ns/op is reported per event actually moved:
//
//	go test -run '^$' -bench Persister ./persist/
const minBenchEvents = 400000

func BenchmarkPersister(b *testing.B) {
	for _, bc := range []struct {
		batch      int
		partitions int
	}{
		{batch: 2000, partitions: 8},
		{batch: 5000, partitions: 8},
	} {
		b.Run(fmt.Sprintf("batch=%d/partitions=%d", bc.batch, bc.partitions), func(b *testing.B) {
			n := max(b.N, minBenchEvents)
			v := newEnv(b, envOpt{partitions: bc.partitions})
			fillStreams(b, v, n, 500)
			p, err := persist.NewPersister(v.e, v.pool, persist.PersisterConfig{BatchSize: bc.batch, Block: 100 * time.Millisecond})
			require.NoError(b, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			b.ResetTimer()
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			for p.Stats().EntriesAcked < int64(n) {
				time.Sleep(2 * time.Millisecond) // polling interval
			}
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			require.NoError(b, <-done)
			require.Equal(b, int64(n), p.Stats().EventsPersisted)
			b.ReportMetric(float64(elapsed.Nanoseconds())/float64(n), "ns/op")
			b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
		})
	}
}

// fillStreams appends n valid events spread over every partition, items
// of itemsPerPartition SKUs each advancing version by version.
func fillStreams(b testing.TB, v *env, n, itemsPerPartition int) {
	ctx := context.Background()
	stores := map[int]string{}
	for i := 0; len(stores) < v.e.Partitions(); i++ {
		s := "store" + strconv.Itoa(i)
		if _, ok := stores[v.e.Partition(s)]; !ok {
			stores[v.e.Partition(s)] = s
		}
	}
	versions := map[string]int64{}
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	const chunk = 5000
	for done := 0; done < n; {
		pipe := v.rdb.Pipeline()
		for j := 0; j < chunk && done < n; j++ {
			p := done % v.e.Partitions()
			store := stores[p]
			sku := "sku" + strconv.Itoa((done/v.e.Partitions())%itemsPerPartition)
			key := store + "/" + sku
			versions[key]++
			ver := versions[key]
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: v.e.StreamKey(p), Values: []any{
				"s", store, "k", sku, "v", strconv.FormatInt(ver, 10), "t", "ADJUST",
				"dh", "1", "dr", "0", "oh", strconv.FormatInt(ver, 10), "rs", "0", "rp", "-1", "mpc", "-1",
				"rid", "", "c", "", "op", "op-" + strconv.Itoa(done), "rsn", "bench", "pr", "bench", "ts", now, "x", "0"}})
			done++
		}
		_, err := pipe.Exec(ctx)
		require.NoError(b, err)
	}
}

// BenchmarkRestoreItems measures the item restore of a rebuild: ledger
// states of 30 stores written into one partition's Redis in calls of 500
// items, 4 in flight, as Rebuilder.restore sends them. Its per-item Redis
// cost is best read with callgrind on a private redis-server
// (INVENTORY_TEST_REDIS_URL):
//
//	go test -run '^$' -bench RestoreItems -benchtime 20000x ./persist/
func BenchmarkRestoreItems(b *testing.B) {
	v := newEnv(b, envOpt{partitions: 1})
	const batch, inflight = 500, 4
	states := make([]engine.ItemState, b.N)
	now := time.Now()
	for i := range states {
		states[i] = engine.ItemState{Store: "store" + strconv.Itoa(i%3), SKU: "sku-" + strconv.Itoa(i/3),
			OnHand: int64(100 + i%500), Reserved: int64(i % 3), Version: int64(1 + i%97), ReorderPoint: -1, MaxPerCustomer: -1,
			UpdatedAt: now.Add(-time.Duration(i) * time.Millisecond)}
	}
	ctx := context.Background()
	b.ResetTimer()
	sem := make(chan struct{}, inflight)
	errs := make(chan error, b.N/batch+1)
	for i := 0; i < b.N; i += batch {
		sem <- struct{}{}
		go func(s []engine.ItemState) {
			defer func() { <-sem }()
			errs <- v.e.RestoreItems(ctx, s)
		}(states[i:min(i+batch, b.N)])
	}
	for i := 0; i < inflight; i++ {
		sem <- struct{}{}
	}
	b.StopTimer()
	close(errs)
	for err := range errs {
		require.NoError(b, err)
	}
}
