package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
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

func databaseURL() string {
	if u := os.Getenv("INVENTORY_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
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
	redis  *redisServer
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
	w := &world{t: t, parts: o.partitions, prefix: "c" + randomHex(5)}
	w.redis = startRedis(t)
	w.rproxy = newToxi(t, w.redis.Addr())
	ropt := &redis.Options{Addr: w.rproxy.Addr(), PoolSize: 64, DialTimeout: time.Second,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second}
	if o.client != nil {
		o.client(ropt)
	}
	w.rdb = redis.NewClient(ropt)
	t.Cleanup(func() { _ = w.rdb.Close() })
	w.direct = redis.NewClient(&redis.Options{Addr: w.redis.Addr(), PoolSize: 64})
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

	u, err := url.Parse(databaseURL())
	require.NoError(t, err)
	w.pproxy = newToxi(t, u.Host)
	w.schema = "chaos_" + randomHex(5)
	admin, err := pgx.Connect(ctx, databaseURL())
	require.NoError(t, err, "PostgreSQL at %s must be reachable", databaseURL())
	_, err = admin.Exec(ctx, "CREATE SCHEMA "+w.schema)
	require.NoError(t, err)
	_ = admin.Close(ctx)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), databaseURL())
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP SCHEMA "+w.schema+" CASCADE")
	})
	w.dpool = w.newPool("")
	require.NoError(t, persist.Migrate(ctx, w.dpool))
	w.pool = w.newPool(w.pproxy.Addr())
	return w
}

// newPool opens a pool on the world's schema, through hostPort when set.
func (w *world) newPool(hostPort string) *pgxpool.Pool {
	w.t.Helper()
	cfg, err := pgxpool.ParseConfig(databaseURL())
	require.NoError(w.t, err)
	cfg.ConnConfig.RuntimeParams["search_path"] = w.schema
	cfg.MaxConns = 8
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	if hostPort != "" {
		h, p, err := net.SplitHostPort(hostPort)
		require.NoError(w.t, err)
		port, err := strconv.Atoi(p)
		require.NoError(w.t, err)
		cfg.ConnConfig.Host, cfg.ConnConfig.Port = h, uint16(port)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(w.t, err)
	w.t.Cleanup(pool.Close)
	return pool
}

// databaseURLFor returns a URL of the world's schema (search_path) for a
// child process, through hostPort when set.
func (w *world) databaseURLFor(hostPort string) string {
	u, err := url.Parse(databaseURL())
	require.NoError(w.t, err)
	if hostPort != "" {
		u.Host = hostPort
	}
	q := u.Query()
	q.Set("search_path", w.schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// fastPersister shortens the persister's timings for tests.
func fastPersister(cfg persist.PersisterConfig) persist.PersisterConfig {
	if cfg.Block == 0 {
		cfg.Block = 50 * time.Millisecond
	}
	if cfg.Linger == 0 {
		cfg.Linger = 5 * time.Millisecond
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin = 10 * time.Millisecond
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 200 * time.Millisecond
	}
	if cfg.TrimInterval == 0 {
		cfg.TrimInterval = 50 * time.Millisecond
	}
	if cfg.ClaimIdle == 0 {
		cfg.ClaimIdle = 500 * time.Millisecond
	}
	if cfg.ClaimInterval == 0 {
		cfg.ClaimInterval = 100 * time.Millisecond
	}
	return cfg
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
	p, err := persist.NewPersister(w.ins, pool, fastPersister(cfg))
	require.NoError(w.t, err)
	return p, background(w.t, "persister", p.Run)
}

// waitFor polls cond every few milliseconds until it holds, failing the
// test after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a wait for work
	}
}
