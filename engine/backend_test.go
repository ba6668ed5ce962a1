package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
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

// newRealClient is a client of the real Redis with a pool for the
// parallel tests, closed when t ends.
func newRealClient(t testing.TB) *redis.Client { return testsupport.RedisClient(t, 256) }

func realBackend() backend {
	return backend{name: "redis", make: func(t *testing.T, cfg engine.Config) *engine.Engine {
		t.Helper()
		c := newRealClient(t)
		cfg.Client = c
		if cfg.Prefix == "" {
			cfg.Prefix = testsupport.Prefix(t)
		}
		testsupport.CleanupPrefix(t, c, cfg.Prefix)
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

// evalshaBackend is real Redis with the scripts run with EVALSHA, as on a
// Redis without Functions: the other real backends use FCALL.
func evalshaBackend() backend {
	b := realBackend()
	return backend{name: "redis-evalsha", make: func(t *testing.T, cfg engine.Config) *engine.Engine {
		cfg.NoFunctions = true
		e := b.make(t, cfg)
		require.False(t, e.Scripts().UsesFunctions())
		return e
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
			cfg.Prefix = testsupport.Prefix(t)
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
	return []backend{realBackend(), singleBackend(), evalshaBackend(), miniBackend(), clusterBackend()}
}
