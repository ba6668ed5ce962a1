package engine_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/redistest"
	"github.com/shelfline/inventory/internal/testsupport"
)

func init() {
	// The shared cluster starts with the first test that asks for it and
	// stops after every test of the binary has run.
	stopShared = append(stopShared, redistest.StopShared)
}

// newClusterClient returns a client of the shared local Redis Cluster (3
// masters, 3 replicas; see internal/redistest), closed when t ends.
func newClusterClient(t testing.TB) *redis.ClusterClient {
	t.Helper()
	c := redistest.Shared(t).NewClient(&redis.ClusterOptions{PoolSize: 64})
	t.Cleanup(func() { c.Close() })
	return c
}

// clusterKeyCount counts a prefix's keys over every master.
func clusterKeyCount(t testing.TB, c *redis.ClusterClient, prefix string) int {
	t.Helper()
	ctx := context.Background()
	var n atomic.Int64
	require.NoError(t, c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		keys, err := m.Keys(ctx, prefix+":*").Result()
		n.Add(int64(len(keys)))
		return err
	}))
	return int(n.Load())
}

// clusterBackend runs the engine on the shared local Redis Cluster, each test
// under its own key prefix, removed from every master when the test ends.
func clusterBackend() backend {
	return backend{name: "cluster", make: func(t *testing.T, cfg engine.Config) *engine.Engine {
		t.Helper()
		c := newClusterClient(t)
		cfg.Client = c
		if cfg.Prefix == "" {
			cfg.Prefix = testsupport.Prefix(t)
		}
		testsupport.CleanupPrefix(t, c, cfg.Prefix) // runs before the client closes
		return mustEngine(t, cfg)
	}}
}

// partitionMasters returns, for each partition of e, the address of the
// master serving its slot.
func partitionMasters(t testing.TB, e *engine.Engine) []string {
	t.Helper()
	ctx := context.Background()
	cl := redistest.Shared(t)
	out := make([]string, e.Partitions())
	for p := range out {
		slot, err := cl.Client().ClusterKeySlot(ctx, e.StreamKey(p)).Result()
		require.NoError(t, err)
		m, err := cl.MasterForSlot(ctx, int(slot))
		require.NoError(t, err)
		out[p] = m.Addr
	}
	return out
}

// storeOn returns a store id (with the given stem) whose partition is served
// by master addr.
func storeOn(t testing.TB, e *engine.Engine, masters []string, addr, stem string) string {
	t.Helper()
	for i := 0; i < 10000; i++ {
		s := fmt.Sprintf("%s%d", stem, i)
		if masters[e.Partition(s)] == addr {
			return s
		}
	}
	t.Fatalf("no store on %s", addr)
	return ""
}
