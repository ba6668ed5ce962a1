package testsupport

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/persist"
)

// Schema creates a fresh, empty schema in the test database (DatabaseURL),
// dropped with everything in it when the test ends. The test fails when
// PostgreSQL does not answer.
func Schema(t testing.TB) string {
	t.Helper()
	schema := "t_" + RandomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, DatabaseURL())
	require.NoError(t, err, "real PostgreSQL at %s must be reachable", DatabaseURL())
	defer admin.Close(context.Background())
	_, err = admin.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, DatabaseURL())
		if err != nil {
			t.Logf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// PoolOption changes the configuration of a Pool.
type PoolOption func(*pgxpool.Config)

// Via connects through hostPort (a proxy in front of PostgreSQL) instead of
// the address of DatabaseURL, with a short connect timeout, so a cut proxy
// fails fast.
func Via(hostPort string) PoolOption {
	return func(c *pgxpool.Config) {
		host, port, err := net.SplitHostPort(hostPort)
		if err != nil {
			panic("testsupport.Via: " + err.Error())
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			panic("testsupport.Via: port of " + hostPort + ": " + err.Error())
		}
		c.ConnConfig.Host, c.ConnConfig.Port = host, uint16(p)
		if c.ConnConfig.ConnectTimeout == 0 {
			c.ConnConfig.ConnectTimeout = time.Second
		}
	}
}

// MaxConns sets the pool's size (8 unless set).
func MaxConns(n int32) PoolOption { return func(c *pgxpool.Config) { c.MaxConns = n } }

// ConnectTimeout bounds each connection attempt.
func ConnectTimeout(d time.Duration) PoolOption {
	return func(c *pgxpool.Config) { c.ConnConfig.ConnectTimeout = d }
}

// Pool opens a pool on the test database whose search_path is schema,
// closed when the test ends (before the schema made by Schema is dropped,
// when Schema came first).
func Pool(t testing.TB, schema string, opts ...PoolOption) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(DatabaseURL())
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 8
	for _, o := range opts {
		o(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// LedgerSchema makes a fresh schema (Schema) with the ledger's tables
// (persist.Migrate) and returns it with a pool on it (Pool with opts).
func LedgerSchema(t testing.TB, opts ...PoolOption) (string, *pgxpool.Pool) {
	t.Helper()
	schema := Schema(t)
	pool := Pool(t, schema, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, persist.Migrate(ctx, pool))
	return schema, pool
}

// SchemaURL returns DatabaseURL with schema as its search_path, for a
// process of its own (`inventory serve`, `inventory migrate`), through
// hostPort instead of the URL's address when hostPort is set.
func SchemaURL(t testing.TB, schema, hostPort string) string {
	t.Helper()
	u, err := url.Parse(DatabaseURL())
	require.NoError(t, err)
	if hostPort != "" {
		u.Host = hostPort
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Count runs a query returning one number, such as a count(*).
func Count(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n), sql)
	return n
}
