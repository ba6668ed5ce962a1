package chaos

import (
	"context"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/redistest"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// long reports whether the long version of the suite runs
// (INVENTORY_CHAOS=long, make chaos).
func long() bool { return os.Getenv("INVENTORY_CHAOS") == "long" }

// pick returns short or, in long mode, long.
func pick[T any](short, lng T) T {
	if long() {
		return lng
	}
	return short
}

// worldOpts shapes a world.
type worldOpts struct {
	// partitions defaults to 4.
	partitions int
	// engine tweaks the engine's config (Client and Prefix are set).
	engine func(*engine.Config)
	// client tweaks the engine's Redis client options (Addr is the proxy).
	client func(*redis.Options)
}

// world is one scenario's isolated system: a private redis-server behind a
// toxiproxy proxy, a PostgreSQL schema behind another, an engine that talks
// through the Redis proxy, and direct connections for inspection.
type world struct {
	t      testing.TB
	redis  *redistest.Server
	rproxy *toxi // in front of Redis: the engine's path
	pproxy *toxi // in front of PostgreSQL: the persister's path
	rdb    *redis.Client
	direct *redis.Client // straight to Redis, for inspection and faults
	e      *engine.Engine
	// ins is an engine on the direct client, same prefix: for checks.
	ins    *engine.Engine
	pool   *pgxpool.Pool // through pproxy
	dpool  *pgxpool.Pool // straight to PostgreSQL, for checks
	schema string
	prefix string
	parts  int
}

func newWorld(t testing.TB, o worldOpts) *world {
	t.Helper()
	if o.partitions == 0 {
		o.partitions = 4
	}
	ctx := context.Background()
	w := &world{t: t, parts: o.partitions, prefix: testsupport.Prefix(t)}
	w.redis = testsupport.RedisServer(t)
	w.rproxy = newToxi(t, w.redis.Addr())
	ropt := &redis.Options{Addr: w.rproxy.Addr(), PoolSize: 64, DialTimeout: time.Second,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second}
	if o.client != nil {
		o.client(ropt)
	}
	w.rdb = redis.NewClient(ropt)
	t.Cleanup(func() { _ = w.rdb.Close() })
	w.direct = w.redis.NewClient(&redis.Options{PoolSize: 64})
	t.Cleanup(func() { _ = w.direct.Close() })
	ecfg := engine.Config{Client: w.rdb, Prefix: w.prefix, Partitions: o.partitions}
	if o.engine != nil {
		o.engine(&ecfg)
	}
	ecfg.Client = w.rdb
	var err error
	w.e, err = engine.New(ecfg)
	require.NoError(t, err)
	icfg := ecfg
	icfg.Client = w.direct
	w.ins, err = engine.New(icfg)
	require.NoError(t, err)
	require.NoError(t, w.ins.Init(ctx), "fresh Redis: mark every partition ready")

	u, err := url.Parse(testsupport.DatabaseURL())
	require.NoError(t, err)
	w.pproxy = newToxi(t, u.Host)
	w.schema, w.dpool = testsupport.LedgerSchema(t, testsupport.ConnectTimeout(2*time.Second))
	w.pool = testsupport.Pool(t, w.schema, testsupport.ConnectTimeout(2*time.Second), testsupport.Via(w.pproxy.Addr()))
	return w
}

// databaseURLFor returns a URL of the world's schema (search_path) for a
// child process, through hostPort when set.
func (w *world) databaseURLFor(hostPort string) string {
	return testsupport.SchemaURL(w.t, w.schema, hostPort)
}

// restartRedis kills the world's redis-server and starts it again, empty,
// on the same port, as a crash of a Redis without persistence would.
func (w *world) restartRedis() {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(w.t, w.redis.Restart(ctx))
}

// fastPersister is testsupport.FastPersister with fast reclaiming too: a
// killed persister's pending entries go to another within a second.
func fastPersister(cfg persist.PersisterConfig) persist.PersisterConfig {
	if cfg.ClaimIdle == 0 {
		cfg.ClaimIdle = 500 * time.Millisecond
	}
	if cfg.ClaimInterval == 0 {
		cfg.ClaimInterval = 100 * time.Millisecond
	}
	return testsupport.FastPersister(cfg)
}

// background runs fn until the test ends or the returned stop is called;
// stop waits for fn and returns its error.
func background(t testing.TB, what string, fn func(ctx context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(15 * time.Second):
				t.Errorf("%s did not stop", what)
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// startPersister runs a persister of the world's engine on pool (w.pool
// when nil), reading Redis directly.
func (w *world) startPersister(pool *pgxpool.Pool, cfg persist.PersisterConfig) (*persist.Persister, func() error) {
	w.t.Helper()
	if pool == nil {
		pool = w.pool
	}
	return testsupport.StartPersister(w.t, w.ins, pool, fastPersister(cfg))
}
