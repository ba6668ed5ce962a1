package engine_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// backend makes a fresh, isolated engine for one test.
type backend struct {
	name string
	make func(t *testing.T, cfg engine.Config) *engine.Engine
}

// fakeClock is a settable clock for expiry tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().UTC().Truncate(time.Millisecond)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testPrefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b)
}

// RealRedisURL is the Redis the tests use: INVENTORY_TEST_REDIS_URL, or the
// local default.
func realRedisURL() string {
	if u := os.Getenv("INVENTORY_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

func newRealClient(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(realRedisURL())
	require.NoError(t, err)
	opt.PoolSize = 256
	c := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Ping(ctx).Err(), "real Redis at %s must be reachable", realRedisURL())
	return c
}

// cleanPrefix deletes every key of a test's prefix.
func cleanPrefix(t testing.TB, c redis.UniversalClient, prefix string) {
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 500 {
			c.Del(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		c.Del(ctx, keys...)
	}
}

func realBackend() backend {
	return backend{name: "redis", make: func(t *testing.T, cfg engine.Config) *engine.Engine {
		t.Helper()
		c := newRealClient(t)
		cfg.Client = c
		if cfg.Prefix == "" {
			cfg.Prefix = testPrefix()
		}
		t.Cleanup(func() {
			cleanPrefix(t, c, cfg.Prefix)
			c.Close()
		})
		return mustEngine(t, cfg)
	}}
}

// singleBackend is real Redis with group commit off: every write is its own
// script call.
func singleBackend() backend {
	b := realBackend()
	return backend{name: "redis-single", make: func(t *testing.T, cfg engine.Config) *engine.Engine {
		cfg.DisableGroupCommit = true
		return b.make(t, cfg)
	}}
}

func miniBackend() backend {
	return backend{name: "miniredis", make: func(t *testing.T, cfg engine.Config) *engine.Engine {
		t.Helper()
		m := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: m.Addr(), PoolSize: 64})
		t.Cleanup(func() { c.Close() })
		cfg.Client = c
		if cfg.Prefix == "" {
			cfg.Prefix = testPrefix()
		}
		return mustEngine(t, cfg)
	}}
}

func mustEngine(t *testing.T, cfg engine.Config) *engine.Engine {
	t.Helper()
	e, err := engine.New(cfg)
	require.NoError(t, err)
	require.NoError(t, e.Init(context.Background()))
	return e
}

// backends lists every backend the conformance suite runs against.
func backends() []backend {
	return []backend{realBackend(), singleBackend(), miniBackend(), clusterBackend()}
}
