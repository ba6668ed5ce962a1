package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/redistest"
	"github.com/shelfline/inventory/internal/testsupport"
)

// Single Redis (the shared one on 127.0.0.1:6379, and one of the benchmark's
// own) versus the local 3-master Redis Cluster (with and without replicas),
// same workload, same run:
//
//	go test -run '^$' -bench Cluster -benchtime 5s ./engine/
//
// Both run on this machine: the cluster's six redis-servers share its cores
// with the single Redis and the benchmark itself, so the figures show what
// the cluster costs (routing, per-node pipelines) and how the load spreads,
// not how far it scales on separate machines.

type benchTarget struct {
	name   string
	client func(b *testing.B) redis.UniversalClient
}

func benchTargets() []benchTarget {
	return []benchTarget{
		{"redis", func(b *testing.B) redis.UniversalClient { return newRealClient(b) }},
		// A redis-server of this benchmark's own: 127.0.0.1:6379 is shared
		// with every other test running on the machine.
		{"redis-private", func(b *testing.B) redis.UniversalClient {
			c := privateServer(b).NewClient(&redis.Options{PoolSize: 256})
			b.Cleanup(func() { c.Close() })
			return c
		}},
		{"cluster", func(b *testing.B) redis.UniversalClient {
			return newClusterClient(b)
		}},
		// The same 3 masters without replicas: what replication costs on
		// shared cores, apart from what routing costs.
		{"cluster-no-replicas", func(b *testing.B) redis.UniversalClient {
			c := noReplicaCluster(b).NewClient(&redis.ClusterOptions{PoolSize: 64})
			b.Cleanup(func() { c.Close() })
			return c
		}},
	}
}

var private struct {
	once sync.Once
	s    *redistest.Server
	err  error
}

// privateServer starts, once per test binary, a standalone redis-server for
// the benchmarks; it stops after every test and benchmark.
func privateServer(b *testing.B) *redistest.Server {
	b.Helper()
	private.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		private.s, private.err = redistest.StartServer(ctx, redistest.Options{})
		if private.s != nil {
			stopShared = append(stopShared, private.s.Stop)
		}
	})
	if private.err != nil {
		b.Fatal(private.err)
	}
	return private.s
}

var noReplicas struct {
	once sync.Once
	c    *redistest.Cluster
	err  error
}

// noReplicaCluster starts, once per test binary, a 3-master cluster without
// replicas for the benchmarks; it stops after every test and benchmark.
func noReplicaCluster(b *testing.B) *redistest.Cluster {
	b.Helper()
	noReplicas.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		noReplicas.c, noReplicas.err = redistest.StartCluster(ctx, redistest.Options{ReplicasPerMaster: -1})
		if noReplicas.c != nil {
			stopShared = append(stopShared, noReplicas.c.Stop)
		}
	})
	if noReplicas.err != nil {
		b.Fatal(noReplicas.err)
	}
	return noReplicas.c
}

// benchEngine makes an engine on the target under its own prefix, removed
// when the benchmark ends.
func benchEngine(b *testing.B, t benchTarget) *engine.Engine {
	b.Helper()
	c := t.client(b)
	prefix := testsupport.IsolatedPrefix(b, c) // cleaned before the client closes
	e, err := engine.New(engine.Config{Client: c, Prefix: prefix, StreamHighWatermark: -1})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Init(context.Background()); err != nil {
		b.Fatal(err)
	}
	return e
}

// latencies collects per-call latencies from parallel workers.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	if len(l.all) == 0 {
		return
	}
	slices.Sort(l.all)
	q := func(p float64) float64 { return float64(l.all[int(p*float64(len(l.all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}

const benchParallelism = 32 // callers per GOMAXPROCS

// BenchmarkClusterFlashSale: parallel buyers check out one unit of one hot
// SKU. One SKU is one partition is one slot: on a cluster it lives on one
// master, so the cluster cannot spread this load.
func BenchmarkClusterFlashSale(b *testing.B) {
	for _, t := range benchTargets() {
		b.Run(t.name, func(b *testing.B) {
			ctx := context.Background()
			e := benchEngine(b, t)
			if _, err := e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "hot", OnHand: engine.MaxOnHand}, engine.Op{}); err != nil {
				b.Fatal(err)
			}
			req := engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "hot", Qty: 1}}}
			var lat latencies
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					t0 := time.Now()
					if _, err := e.Checkout(ctx, req, engine.Op{}); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				lat.add(mine)
			})
			b.StopTimer()
			lat.report(b)
			it, err := e.GetItem(ctx, "s1", "hot")
			if err != nil {
				b.Fatal(err)
			}
			if sold := engine.MaxOnHand - it.OnHand; sold != int64(b.N) {
				b.Fatalf("sold %d, want %d", sold, b.N)
			}
		})
	}
}

// BenchmarkClusterMixed: a day in a chain of 64 stores × 20 SKUs (every
// partition, every master): per call 50% item reads, 20% one-unit
// checkouts, 10% restocks, 10% holds, 10% releases of a caller's hold.
func BenchmarkClusterMixed(b *testing.B) {
	const nStores, nSKUs = 64, 20
	for _, t := range benchTargets() {
		b.Run(t.name, func(b *testing.B) {
			ctx := context.Background()
			e := benchEngine(b, t)
			stores := make([]string, nStores)
			skus := make([]string, nSKUs)
			for i := range stores {
				stores[i] = fmt.Sprintf("store-%02d", i)
			}
			for i := range skus {
				skus[i] = fmt.Sprintf("sku-%02d", i)
			}
			var wg sync.WaitGroup
			errs := make(chan error, nStores)
			for _, s := range stores {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, k := range skus {
						if _, err := e.Set(ctx, engine.SetRequest{Store: s, SKU: k, OnHand: 1_000_000_000}, engine.Op{}); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			var lat latencies
			var seed uint64
			var seedMu sync.Mutex
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				seedMu.Lock()
				seed++
				rng := rand.New(rand.NewPCG(seed, 42))
				seedMu.Unlock()
				var mine []time.Duration
				var held []string
				for pb.Next() {
					s, k := stores[rng.IntN(nStores)], skus[rng.IntN(nSKUs)]
					line := []engine.Line{{SKU: k, Qty: 1}}
					t0 := time.Now()
					var err error
					switch r := rng.IntN(10); {
					case r < 5:
						_, err = e.GetItem(ctx, s, k)
					case r < 7:
						_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: s, Lines: line}, engine.Op{})
					case r < 8:
						_, err = e.Adjust(ctx, engine.AdjustRequest{Store: s, SKU: k, Delta: 1}, engine.Op{})
					case r < 9 || len(held) == 0:
						var res engine.ReservationResult
						res, err = e.Reserve(ctx, engine.ReserveRequest{Store: s, Lines: line}, engine.Op{})
						if err == nil {
							held = append(held, res.Reservation.ID)
						}
					default:
						_, err = e.Release(ctx, held[len(held)-1], engine.Op{})
						held = held[:len(held)-1]
					}
					if err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				lat.add(mine)
			})
			b.StopTimer()
			lat.report(b)
		})
	}
}

// BenchmarkClusterAvailability: a SKU's stock across 64 stores, read from
// every partition (one pipeline per node on the cluster).
func BenchmarkClusterAvailability(b *testing.B) {
	for _, t := range benchTargets() {
		b.Run(t.name, func(b *testing.B) {
			ctx := context.Background()
			e := benchEngine(b, t)
			for i := 0; i < 64; i++ {
				if _, err := e.Set(ctx, engine.SetRequest{Store: fmt.Sprintf("store-%02d", i), SKU: "sofa", OnHand: 5}, engine.Op{}); err != nil {
					b.Fatal(err)
				}
			}
			var lat latencies
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					t0 := time.Now()
					a, err := e.Availability(ctx, "sofa")
					if err != nil || len(a.Stores) != 64 {
						b.Errorf("availability: %d stores, %v", len(a.Stores), err)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				lat.add(mine)
			})
			b.StopTimer()
			lat.report(b)
		})
	}
}
