// Package testsupport is what every package's tests share: the real Redis
// and PostgreSQL they run against, an isolated key prefix or schema per
// test, private redis-servers, polling with a deadline, the inventory
// binary, and the ledger invariants check.
//
// The tests run against the real thing (INVENTORY_TEST_REDIS_URL,
// INVENTORY_TEST_DATABASE_URL, with local defaults) and fail, never skip,
// when it is unreachable. Whatever a helper makes for a test is removed in
// t.Cleanup.
//
// It imports engine and persist, so the tests of those two packages use it
// from their external test packages (engine_test, persist_test).
package testsupport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/redistest"
)

// Defaults of the services the tests use.
const (
	DefaultRedisURL    = "redis://127.0.0.1:6379/0"
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
)

// RedisURL is the Redis the tests use: INVENTORY_TEST_REDIS_URL, or the
// local default.
func RedisURL() string {
	if u := os.Getenv("INVENTORY_TEST_REDIS_URL"); u != "" {
		return u
	}
	return DefaultRedisURL
}

// DatabaseURL is the PostgreSQL database the tests use:
// INVENTORY_TEST_DATABASE_URL, or the local default.
func DatabaseURL() string {
	if u := os.Getenv("INVENTORY_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultDatabaseURL
}

// RandomHex returns n random bytes in hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// FreeAddr returns a loopback "127.0.0.1:port" nobody listens on now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// RedisClient returns a client of the real Redis (RedisURL) with poolSize
// connections (0: go-redis' default), closed when the test ends. The test
// fails when Redis does not answer.
func RedisClient(t testing.TB, poolSize int) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(RedisURL())
	require.NoError(t, err)
	if poolSize > 0 {
		opt.PoolSize = poolSize
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Ping(ctx).Err(), "real Redis at %s must be reachable", RedisURL())
	return c
}

// RedisServer starts a private redis-server of the test's own
// (internal/redistest: a free loopback port, no persistence, noeviction),
// for a test that changes its settings, kills it or restarts it. It stops
// when the test ends.
func RedisServer(t testing.TB) *redistest.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := redistest.StartServer(ctx, redistest.Options{})
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	return s
}

// Prefix returns a fresh random key prefix, so a test's keys are its own.
func Prefix(t testing.TB) string {
	t.Helper()
	return "t" + RandomHex(6)
}

// IsolatedPrefix returns a fresh prefix whose keys are deleted from c when
// the test ends (before c closes, if c was made after the test began).
func IsolatedPrefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	p := Prefix(t)
	CleanupPrefix(t, c, p)
	return p
}

// CleanupPrefix deletes every key of prefix from c when the test ends.
func CleanupPrefix(t testing.TB, c redis.UniversalClient, prefix string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := CleanPrefix(ctx, c, prefix); err != nil {
			t.Errorf("delete the keys of prefix %s: %v", prefix, err)
		}
	})
}

// CleanPrefix deletes every key of prefix ("prefix:*"). On a cluster client
// it scans every master (SCAN on a cluster client sees one node) and unlinks
// the keys one by one (a multi-key command must stay within one slot).
func CleanPrefix(ctx context.Context, c redis.UniversalClient, prefix string) error {
	if cc, ok := c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return unlinkMatching(ctx, m, prefix+":*", false)
		})
	}
	return unlinkMatching(ctx, c, prefix+":*", true)
}

// unlinkMatching unlinks the keys matching pattern in batches of 500: one
// UNLINK per batch when multi, one pipelined UNLINK per key otherwise.
func unlinkMatching(ctx context.Context, c redis.Cmdable, pattern string, multi bool) error {
	iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
	var keys []string
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		var err error
		if multi {
			err = c.Unlink(ctx, keys...).Err()
		} else {
			_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range keys {
					p.Unlink(ctx, k)
				}
				return nil
			})
		}
		keys = keys[:0]
		return err
	}
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 500 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	return flush()
}
