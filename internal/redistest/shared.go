package redistest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvClusterAddrs names the environment variable that points the shared
// cluster at an existing Redis Cluster ("host:port,…") instead of starting
// one. The failover helpers do not work on such a cluster.
const EnvClusterAddrs = "INVENTORY_TEST_REDIS_CLUSTER_ADDRS"

var shared struct {
	once sync.Once
	mu   sync.Mutex
	c    *Cluster
	err  error
}

// Shared returns the test binary's shared cluster, starting it on the first
// call (3 masters, 3 replicas, a 5s node timeout), or connecting to the one
// EnvClusterAddrs names. A start failure fails every test that asks for it.
// Tests that share it must isolate themselves by key prefix and must not
// break it (kill nodes, flush data): start a private cluster for that. Call
// StopShared from TestMain after m.Run.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		var c *Cluster
		var err error
		if env := os.Getenv(EnvClusterAddrs); env != "" {
			c, err = Connect(ctx, strings.Split(env, ","))
		} else {
			// Nobody kills the shared cluster's nodes, so a longer node
			// timeout than the default costs nothing and keeps a node that
			// is starved of CPU (2 cores, -race, parallel tests) from being
			// failed over by its peers in the middle of other tests.
			c, err = StartCluster(ctx, Options{NodeTimeout: 5 * time.Second})
		}
		shared.mu.Lock()
		shared.c, shared.err = c, err
		shared.mu.Unlock()
	})
	shared.mu.Lock()
	c, err := shared.c, shared.err
	shared.mu.Unlock()
	if err != nil {
		t.Fatalf("redistest: shared cluster: %v", err)
	}
	if c == nil || c.isStopped() {
		t.Fatalf("redistest: shared cluster already stopped")
	}
	return c
}

// StopShared stops the shared cluster if one was started. Safe to call when
// none was, and twice.
func StopShared() {
	shared.mu.Lock()
	c := shared.c
	shared.mu.Unlock()
	if c != nil {
		c.Stop()
	}
}

// Connect wraps an existing cluster reached at addrs: Client, NewClient and
// Addrs work; the node helpers (KillMaster, Restart, Nodes) do not. Stop
// closes the client only.
func Connect(ctx context.Context, addrs []string) (*Cluster, error) {
	c := &Cluster{opts: Options{}.withDefaults(), addrs: addrs}
	cl := c.NewClient(nil)
	if err := cl.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error {
		return n.Ping(ctx).Err()
	}); err != nil {
		cl.Close()
		return nil, fmt.Errorf("redistest: cluster at %v: %w", addrs, err)
	}
	c.client = cl
	return c, nil
}
