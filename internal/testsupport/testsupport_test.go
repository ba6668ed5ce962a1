package testsupport_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

func TestServiceURLs(t *testing.T) {
	t.Setenv("INVENTORY_TEST_REDIS_URL", "")
	t.Setenv("INVENTORY_TEST_DATABASE_URL", "")
	require.Equal(t, "redis://127.0.0.1:6379/0", testsupport.RedisURL())
	require.Equal(t, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", testsupport.DatabaseURL())
	t.Setenv("INVENTORY_TEST_REDIS_URL", "redis://elsewhere:1/2")
	t.Setenv("INVENTORY_TEST_DATABASE_URL", "postgres://u@elsewhere:1/db")
	require.Equal(t, "redis://elsewhere:1/2", testsupport.RedisURL())
	require.Equal(t, "postgres://u@elsewhere:1/db", testsupport.DatabaseURL())
	require.Equal(t, "postgres://u@proxy:9/db?search_path=s1", testsupport.SchemaURL(t, "s1", "proxy:9"))
}

// TestPrefixIsolatedAndCleaned writes keys under two prefixes and expects
// CleanPrefix to delete those of one only, however many there are.
func TestPrefixIsolatedAndCleaned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := testsupport.RedisClient(t, 0)
	a, b := testsupport.Prefix(t), testsupport.Prefix(t)
	require.NotEqual(t, a, b)
	testsupport.CleanupPrefix(t, c, b)
	pipe := c.Pipeline()
	for i := 0; i < 1200; i++ {
		pipe.Set(ctx, fmt.Sprintf("%s:k%d", a, i), "1", time.Minute)
	}
	pipe.Set(ctx, b+":kept", "1", time.Minute)
	_, err := pipe.Exec(ctx)
	require.NoError(t, err)
	require.NoError(t, testsupport.CleanPrefix(ctx, c, a))
	keys, err := c.Keys(ctx, a+":*").Result()
	require.NoError(t, err)
	require.Empty(t, keys)
	require.Equal(t, int64(1), c.Exists(ctx, b+":kept").Val())
}

func TestRedisClientFailsWhenUnreachable(t *testing.T) {
	t.Setenv("INVENTORY_TEST_REDIS_URL", "redis://"+testsupport.FreeAddr(t)+"/0")
	r := runFailing(func(tb testing.TB) { testsupport.RedisClient(tb, 1) })
	require.True(t, r.failed, "an unreachable Redis fails the test")
	require.False(t, r.skipped, "and does not skip it")
}

func TestSchemaPoolAndDrop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var schema string
	t.Run("inner", func(t *testing.T) {
		var pool *pgxpool.Pool
		schema, pool = testsupport.LedgerSchema(t, testsupport.MaxConns(2))
		var sp string
		require.NoError(t, pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&sp))
		require.Equal(t, schema, sp, "the pool's search_path is the schema")
		require.Zero(t, testsupport.Count(t, pool, `SELECT count(*) FROM inventory_events`), "migrated")
		require.EqualValues(t, 2, pool.Config().MaxConns)
	})
	admin := testsupport.Pool(t, "public")
	require.Zero(t, testsupport.Count(t, admin, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, schema), "dropped when the test ended")
}

func TestWaitFor(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	testsupport.WaitFor(t, 5*time.Second, "three polls", func() bool { return n.Add(1) == 3 })
	require.False(t, testsupport.Poll(30*time.Millisecond, func() bool { return false }))
	r := runFailing(func(tb testing.TB) {
		testsupport.WaitFor(tb, 20*time.Millisecond, "never", func() bool { return false })
	})
	require.True(t, r.failed)
	require.Contains(t, r.msg, "timed out after 20ms waiting for never")
}

func TestRedisServerKillRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := testsupport.RedisServer(t)
	c := s.NewClient(&redis.Options{MaxRetries: -1})
	defer c.Close()
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
	s.Kill()
	require.False(t, s.Running())
	require.Error(t, c.Ping(ctx).Err())
	require.NoError(t, s.Restart(ctx))
	require.True(t, s.Running())
	testsupport.WaitFor(t, 5*time.Second, "the client reconnects", func() bool { return c.Ping(ctx).Err() == nil })
	require.Equal(t, int64(0), c.Exists(ctx, "k").Val(), "restarted empty")
}

// ledgerWorld is an engine on real Redis with a persister draining it into
// a fresh ledger.
func ledgerWorld(t *testing.T) (*engine.Engine, *pgxpool.Pool) {
	t.Helper()
	c := testsupport.RedisClient(t, 32)
	e, err := engine.New(engine.Config{Client: c, Prefix: testsupport.IsolatedPrefix(t, c), Partitions: 2})
	require.NoError(t, err)
	require.NoError(t, e.Init(context.Background()))
	_, pool := testsupport.LedgerSchema(t)
	testsupport.StartPersister(t, e, pool, persist.PersisterConfig{Linger: -1})
	return e, pool
}

// TestStartPersister: FastPersister fills only unset timings and leaves the
// claim timings alone; the persister drains into the ledger; stop returns
// Run's error (none, for a stop) and may be called again.
func TestStartPersister(t *testing.T) {
	t.Parallel()
	cfg := testsupport.FastPersister(persist.PersisterConfig{Linger: -1, RetryMax: time.Second})
	require.Equal(t, 50*time.Millisecond, cfg.Block)
	require.Equal(t, time.Duration(-1), cfg.Linger)
	require.Equal(t, 10*time.Millisecond, cfg.RetryMin)
	require.Equal(t, time.Second, cfg.RetryMax)
	require.Equal(t, 50*time.Millisecond, cfg.TrimInterval)
	require.Zero(t, cfg.ClaimIdle)
	require.Zero(t, cfg.ClaimInterval)

	ctx := context.Background()
	c := testsupport.RedisClient(t, 16)
	e, err := engine.New(engine.Config{Client: c, Prefix: testsupport.IsolatedPrefix(t, c), Partitions: 1})
	require.NoError(t, err)
	require.NoError(t, e.Init(ctx))
	_, pool := testsupport.LedgerSchema(t)
	p, stop := testsupport.StartPersister(t, e, pool, persist.PersisterConfig{})
	_, err = e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "a", OnHand: 1}, engine.Op{})
	require.NoError(t, err)
	testsupport.WaitFor(t, 20*time.Second, "the persister catches up", func() bool { return testsupport.LedgerCaughtUp(t, pool, e) })
	require.Equal(t, int64(1), p.Stats().EventsPersisted)
	require.NoError(t, stop())
	require.NoError(t, stop(), "again")
}

// TestCheckLedgerCatchesGapsAndDrift checks a sound ledger, then breaks it
// the ways the check exists for: a missing version, a delta that does not
// add up, an item Redis lacks, Redis ahead of the ledger, an oversold
// event, a purchase limit that differs from Redis'.
func TestCheckLedgerCatchesGapsAndDrift(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, pool := ledgerWorld(t)
	for _, sku := range []string{"a", "b", "c"} {
		_, err := e.Set(ctx, engine.SetRequest{Store: "s1", SKU: sku, OnHand: 10}, engine.Op{})
		require.NoError(t, err)
		for i := 0; i < 3; i++ {
			_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: sku, Qty: 1}}}, engine.Op{})
			require.NoError(t, err)
		}
	}
	testsupport.WaitFor(t, 20*time.Second, "the persister catches up", func() bool { return testsupport.LedgerCaughtUp(t, pool, e) })
	testsupport.CheckLedger(t, pool, e, persist.LedgerCheck{NoOversell: true})
	require.Empty(t, testsupport.LedgerViolations(t, pool, nil, persist.LedgerCheck{Stores: []string{"s1"}}))

	exec := func(sql string) {
		_, err := pool.Exec(ctx, sql)
		require.NoError(t, err)
	}
	exec(`DELETE FROM inventory_events WHERE store_id = 's1' AND sku = 'a' AND version = 2`)
	exec(`UPDATE inventory_events SET delta_on_hand = -2 WHERE store_id = 's1' AND sku = 'b' AND version = 3`)
	exec(`UPDATE inventory_events SET reserved = 20 WHERE store_id = 's1' AND sku = 'c' AND version = 2`)
	exec(`UPDATE inventory_items SET max_per_customer = 3 WHERE store_id = 's1' AND sku = 'c'`)
	exec(`INSERT INTO inventory_items (store_id, sku, on_hand, reserved, version, updated_at) VALUES ('s2', 'x', 1, 0, 1, now())`)
	exec(`INSERT INTO inventory_events (store_id, sku, version, type, delta_on_hand, delta_reserved, on_hand, reserved, occurred_at)
VALUES ('s2', 'x', 1, 'SET', 1, 0, 1, 0, now())`)

	got := strings.Join(testsupport.LedgerViolations(t, pool, e, persist.LedgerCheck{NoOversell: true}), "\n")
	for _, want := range []string{
		"s1/a: 3 events over versions 1..4: a gap",
		"s1/a: inventory_items has on_hand 7 reserved 0 at version 4, the events' deltas sum to 8 and 0",
		"s1/b: deltas sum to on_hand 6 reserved 0, state has 7 and 0",
		"s1/c: 1 events record an oversold state",
		"s1/c: max per customer 3 in inventory_items, none in Redis",
		"s2/x: in the ledger (version 1) but not in the state",
	} {
		require.Contains(t, got, want)
	}
	require.NotContains(t, got, "s2/x: inventory_items", "s2/x adds up on its own")

	// Without Redis, only the ledger's own invariants.
	got = strings.Join(testsupport.LedgerViolations(t, pool, nil, persist.LedgerCheck{Stores: []string{"s2"}}), "\n")
	require.Empty(t, got)

	// A state the ledger has not caught up with, waited for in vain.
	start := time.Now()
	got = strings.Join(testsupport.LedgerViolations(t, pool, nil, persist.LedgerCheck{
		Stores: []string{"s2"},
		State:  []persist.LedgerState{{Store: "s2", SKU: "x", OnHand: 1, Version: 1}, {Store: "s2", SKU: "y", OnHand: 1, Version: 2}},
		Wait:   300 * time.Millisecond,
	}), "\n")
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	require.Equal(t, "s2/y: behind the state: events up to version 0, inventory_items at version 0, the state at 2", got)
}

// failing records what a test function did to its testing.TB.
type failing struct {
	testing.TB
	failed, skipped bool
	msg             string
	cleanups        []func()
}

func (f *failing) Helper()                   {}
func (f *failing) Name() string              { return "failing" }
func (f *failing) Cleanup(fn func())         { f.cleanups = append(f.cleanups, fn) }
func (f *failing) Logf(string, ...any)       {}
func (f *failing) Errorf(s string, a ...any) { f.failed, f.msg = true, fmt.Sprintf(s, a...) }
func (f *failing) Fatalf(s string, a ...any) { f.Errorf(s, a...); panic(f) }
func (f *failing) Fatal(a ...any)            { f.Errorf("%s", fmt.Sprint(a...)); panic(f) }
func (f *failing) FailNow()                  { f.failed = true; panic(f) }
func (f *failing) SkipNow()                  { f.skipped = true; panic(f) }
func (f *failing) Skip(...any)               { f.SkipNow() }
func (f *failing) Skipf(string, ...any)      { f.SkipNow() }

// runFailing runs fn on a failing, then its cleanups, and returns what it
// recorded.
func runFailing(fn func(testing.TB)) *failing {
	r := &failing{}
	func() {
		defer func() {
			if p := recover(); p != nil && p != any(r) {
				panic(p)
			}
		}()
		fn(r)
	}()
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	return r
}
