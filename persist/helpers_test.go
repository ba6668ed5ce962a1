package persist_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
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

func redisURL() string {
	if u := os.Getenv("INVENTORY_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
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
	ropt, err := redis.ParseURL(redisURL())
	require.NoError(t, err)
	ropt.PoolSize = 64
	rdb := redis.NewClient(ropt)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	require.NoError(t, rdb.Ping(pctx).Err(), "Redis at %s must be reachable", redisURL())
	prefix := "t" + randomHex(6)
	clk := &clock{}
	e, err := engine.New(engine.Config{Client: rdb, Prefix: prefix, Partitions: o.partitions, Clock: clk.Now, StreamHighWatermark: o.highWatermark})
	require.NoError(t, err)
	require.NoError(t, e.Init(ctx))
	t.Cleanup(func() {
		cleanPrefix(rdb, prefix)
		rdb.Close()
	})

	schema := "t_" + randomHex(6)
	admin, err := pgx.Connect(pctx, databaseURL())
	require.NoError(t, err, "PostgreSQL at %s must be reachable", databaseURL())
	_, err = admin.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	admin.Close(ctx)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), databaseURL())
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	pool := newPool(t, schema, "")
	require.NoError(t, persist.Migrate(ctx, pool))
	return &env{e: e, rdb: rdb, pool: pool, schema: schema, clock: clk}
}

// newPool opens a pool on the test database with search_path set to
// schema, optionally through hostPort instead of the configured address.
func newPool(t testing.TB, schema, hostPort string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(databaseURL())
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 8
	if hostPort != "" {
		host, port, ok := cutHostPort(hostPort)
		require.True(t, ok)
		cfg.ConnConfig.Host = host
		cfg.ConnConfig.Port = port
		cfg.ConnConfig.ConnectTimeout = time.Second
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func cleanPrefix(c redis.UniversalClient, prefix string) {
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

// waitFor polls cond until it holds or the deadline passes.
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

// fastPersister is a config with short timings for tests.
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
	return cfg
}

// startPersister runs a persister until the test ends or stop is called;
// stop returns Run's error.
func (v *env) startPersister(t testing.TB, cfg persist.PersisterConfig) (*persist.Persister, func() error) {
	t.Helper()
	p, err := persist.NewPersister(v.e, v.pool, fastPersister(cfg))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("persister did not stop")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return p, stop
}

// redisItems returns every item Redis holds, by "store/sku".
func (v *env) redisItems(t testing.TB) map[string]engine.Item {
	t.Helper()
	ctx := context.Background()
	out := map[string]engine.Item{}
	for p := 0; p < v.e.Partitions(); p++ {
		require.NoError(t, v.e.ScanItems(ctx, p, 200, func(refs []engine.ItemRef) error {
			items, err := v.e.LoadItems(ctx, refs)
			if err != nil {
				return err
			}
			for _, it := range items {
				if it != nil {
					out[it.Store+"/"+it.SKU] = *it
				}
			}
			return nil
		}))
	}
	return out
}

type pgItem struct {
	OnHand, Reserved, Version int64
	ReorderPoint, MPC         *int64
}

func (v *env) pgItems(t testing.TB) map[string]pgItem {
	t.Helper()
	rows, err := v.pool.Query(context.Background(),
		`SELECT store_id, sku, on_hand, reserved, version, reorder_point, max_per_customer FROM inventory_items`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]pgItem{}
	for rows.Next() {
		var s, k string
		var it pgItem
		require.NoError(t, rows.Scan(&s, &k, &it.OnHand, &it.Reserved, &it.Version, &it.ReorderPoint, &it.MPC))
		out[s+"/"+k] = it
	}
	require.NoError(t, rows.Err())
	return out
}

// caughtUp reports whether PostgreSQL's items are at Redis' versions and
// the ledger holds as many events as those versions add up to.
func (v *env) caughtUp(t testing.TB) bool {
	r := v.redisItems(t)
	g := v.pgItems(t)
	if len(r) != len(g) {
		return false
	}
	var sum int64
	for k, it := range r {
		pi, ok := g[k]
		if !ok || pi.Version != it.Version {
			return false
		}
		sum += it.Version
	}
	return v.count(t, `SELECT count(*) FROM inventory_events`) == sum
}

func (v *env) count(t testing.TB, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, v.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// checkLedger asserts the ledger's invariants against Redis: per item,
// versions 1..N without gap or duplicate, the sums of deltas equal the
// state, and inventory_items equals Redis.
func (v *env) checkLedger(t testing.TB) {
	t.Helper()
	rows, err := v.pool.Query(context.Background(), `
SELECT store_id, sku, count(*), min(version), max(version), sum(delta_on_hand), sum(delta_reserved)
FROM inventory_events GROUP BY store_id, sku`)
	require.NoError(t, err)
	defer rows.Close()
	items := v.pgItems(t)
	red := v.redisItems(t)
	n := 0
	for rows.Next() {
		var s, k string
		var cnt, lo, hi, soh, srs int64
		require.NoError(t, rows.Scan(&s, &k, &cnt, &lo, &hi, &soh, &srs))
		key := s + "/" + k
		require.Equal(t, int64(1), lo, "%s: first version", key)
		require.Equal(t, hi, cnt, "%s: versions 1..%d without gap", key, hi)
		it, ok := items[key]
		require.True(t, ok, "%s in inventory_items", key)
		require.Equal(t, hi, it.Version, "%s: item version", key)
		require.Equal(t, soh, it.OnHand, "%s: sum of on_hand deltas", key)
		require.Equal(t, srs, it.Reserved, "%s: sum of reserved deltas", key)
		ri, ok := red[key]
		require.True(t, ok, "%s in Redis", key)
		require.Equal(t, ri.Version, it.Version, "%s: version vs Redis", key)
		require.Equal(t, ri.OnHand, it.OnHand, "%s: on_hand vs Redis", key)
		require.Equal(t, ri.Reserved, it.Reserved, "%s: reserved vs Redis", key)
		require.Equal(t, ri.ReorderPoint, it.ReorderPoint, "%s: reorder point vs Redis", key)
		require.Equal(t, ri.MaxPerCustomer, it.MPC, "%s: max per customer vs Redis", key)
		n++
	}
	require.NoError(t, rows.Err())
	require.Equal(t, len(red), n, "every Redis item has a history")
}

func cutHostPort(hp string) (string, uint16, bool) {
	for i := len(hp) - 1; i >= 0; i-- {
		if hp[i] == ':' {
			var port uint16
			for _, c := range hp[i+1:] {
				if c < '0' || c > '9' {
					return "", 0, false
				}
				port = port*10 + uint16(c-'0')
			}
			return hp[:i], port, true
		}
	}
	return "", 0, false
}
