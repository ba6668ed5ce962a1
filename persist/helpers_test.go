package persist_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// clock is a settable clock, so reservations can expire without waiting.
type clock struct {
	mu sync.Mutex
	d  time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.d)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.d += d
}

// env is one test's isolated world: an engine on its own Redis prefix and a
// migrated ledger in its own PostgreSQL schema.
type env struct {
	e      *engine.Engine
	rdb    *redis.Client
	pool   *pgxpool.Pool
	schema string
	clock  *clock
}

type envOpt struct {
	partitions int
	// highWatermark is the engine's StreamHighWatermark (0: its default).
	highWatermark int64
}

func newEnv(t testing.TB, opts ...envOpt) *env {
	t.Helper()
	o := envOpt{partitions: 4}
	if len(opts) > 0 {
		o = opts[0]
		if o.partitions == 0 {
			o.partitions = 4
		}
	}
	ctx := context.Background()
	rdb := testsupport.RedisClient(t, 64)
	prefix := testsupport.IsolatedPrefix(t, rdb)
	clk := &clock{}
	e, err := engine.New(engine.Config{Client: rdb, Prefix: prefix, Partitions: o.partitions, Clock: clk.Now, StreamHighWatermark: o.highWatermark})
	require.NoError(t, err)
	require.NoError(t, e.Init(ctx))
	schema, pool := testsupport.LedgerSchema(t)
	return &env{e: e, rdb: rdb, pool: pool, schema: schema, clock: clk}
}

// startPersister runs a persister of the env's engine on its pool
// (testsupport.StartPersister) until the test ends or stop is called; stop
// returns Run's error.
func (v *env) startPersister(t testing.TB, cfg persist.PersisterConfig) (*persist.Persister, func() error) {
	t.Helper()
	return testsupport.StartPersister(t, v.e, v.pool, cfg)
}
