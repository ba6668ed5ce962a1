package main

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/shelfline/inventory/internal/redistest"
)

// redisCfg is a configuration of one Redis URL, or of a cluster, with the
// ledger off.
func redisCfg(redisURL, clusterAddrs string) *config {
	return &config{RedisURL: redisURL, RedisClusterAddrs: clusterAddrs, RedisPrefix: "conn-test", Partitions: 4, DatabaseURL: "off", LogLevel: "info"}
}

// dial makes the client cfg names and pings it, as connect does.
func dial(t *testing.T, cfg *config) error {
	t.Helper()
	rt, err := newRedisClient(cfg, 4)
	if err != nil {
		return err
	}
	defer rt.client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return rt.ping(ctx)
}

// connectAndClose runs connect (Redis, scripts, engine) and closes it.
func connectAndClose(t *testing.T, cfg *config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := connect(ctx, cfg, zap.NewNop())
	if err != nil {
		return err
	}
	defer d.close()
	require.NotNil(t, d.e)
	return d.rdb.Set(ctx, "conn-test:probe", "1", time.Minute).Err()
}

func startServer(t *testing.T, opts redistest.Options) *redistest.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := redistest.StartServer(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	return s
}

// TestRedisURLPasswordAndUsers: INVENTORY_REDIS_URL with the default
// user's password and with ACL users; a wrong or missing password fails
// with an error that says so, and never shows the password.
func TestRedisURLPasswordAndUsers(t *testing.T) {
	t.Parallel()
	s := startServer(t, redistest.Options{
		Password: "default-pw",
		Users:    []string{"inventory on >inventory-pw ~* &* +@all", "watcher on >watcher-pw ~* +ping +info"},
	})
	addr := s.Addr()

	require.NoError(t, dial(t, redisCfg("redis://:default-pw@"+addr+"/0", "")), "the default user's password")
	require.NoError(t, dial(t, redisCfg("redis://inventory:inventory-pw@"+addr+"/0", "")), "an ACL user")
	require.NoError(t, connectAndClose(t, redisCfg("redis://inventory:inventory-pw@"+addr+"/0", "")), "the whole start as an ACL user")

	err := dial(t, redisCfg("redis://inventory:not-the-pw@"+addr+"/0", ""))
	require.ErrorContains(t, err, `redis refused the user "inventory" and password of INVENTORY_REDIS_URL`)
	require.ErrorContains(t, err, "WRONGPASS")
	require.NotContains(t, err.Error(), "not-the-pw")
	err = dial(t, redisCfg("redis://:wrong-default@"+addr+"/0", ""))
	require.ErrorContains(t, err, `redis refused the user "default"`)
	require.NotContains(t, err.Error(), "wrong-default")
	err = connectAndClose(t, redisCfg("redis://inventory:not-the-pw@"+addr+"/0", ""))
	require.ErrorContains(t, err, "WRONGPASS", "connect fails the same way")

	err = dial(t, redisCfg("redis://"+addr+"/0", ""))
	require.ErrorContains(t, err, "redis requires a password: give it in INVENTORY_REDIS_URL")

	err = connectAndClose(t, redisCfg("redis://watcher:watcher-pw@"+addr+"/0", ""))
	require.ErrorContains(t, err, `redis user "watcher" (INVENTORY_REDIS_URL) lacks a permission`)
	require.ErrorContains(t, err, "NOPERM")

	err = dial(t, redisCfg("rediss://:default-pw@"+addr+"/0", ""))
	require.ErrorContains(t, err, "does it serve TLS (if not, use redis:// instead of rediss://)?")
}

// TestRedisURLTLS: rediss:// with the server's CA named by ca_file; without
// it, or in plain TCP, the error says what to change.
func TestRedisURLTLS(t *testing.T) {
	t.Parallel()
	files, err := redistest.NewTLSFiles(t.TempDir())
	require.NoError(t, err)
	s := startServer(t, redistest.Options{
		Password: "tls-pw",
		Users:    []string{"inventory on >inventory-pw ~* &* +@all"},
		TLS:      files,
	})
	ca := "ca_file=" + url.QueryEscape(files.CAFile)
	hostPort := s.Addr()

	require.NoError(t, dial(t, redisCfg("rediss://:tls-pw@"+hostPort+"/0?"+ca, "")))
	require.NoError(t, connectAndClose(t, redisCfg("rediss://inventory:inventory-pw@"+hostPort+"/0?"+ca, "")), "ACL user over TLS")
	port := strings.TrimPrefix(hostPort, "127.0.0.1:")
	require.NoError(t, dial(t, redisCfg("rediss://:tls-pw@localhost:"+port+"/0?"+ca+"&dial_timeout=2s", "")),
		"other go-redis parameters pass through")

	err = dial(t, redisCfg("rediss://:tls-pw@"+hostPort+"/0", ""))
	require.ErrorContains(t, err, "signed by an authority the system does not trust; name its CA with ?ca_file=/path/ca.pem in INVENTORY_REDIS_URL")
	err = dial(t, redisCfg("rediss://inventory:wrong@"+hostPort+"/0?"+ca, ""))
	require.ErrorContains(t, err, "WRONGPASS")
	require.NotContains(t, err.Error(), ":wrong")

	err = dial(t, redisCfg("redis://:tls-pw@"+hostPort+"/0", ""))
	require.ErrorContains(t, err, "if it serves TLS only, use rediss://")
	err = dial(t, redisCfg("redis://:tls-pw@"+hostPort+"/0?"+ca, ""))
	require.ErrorContains(t, err, "INVENTORY_REDIS_URL: ca_file is for TLS: use rediss://")
	err = dial(t, redisCfg("rediss://:tls-pw@"+hostPort+"/0?ca_file="+filepath.Join(t.TempDir(), "none.pem"), ""))
	require.ErrorContains(t, err, "INVENTORY_REDIS_URL: ca_file: open ")
	err = dial(t, redisCfg("rediss://:tls-pw@"+hostPort+"/0?ca_file="+url.QueryEscape(files.KeyFile), ""))
	require.ErrorContains(t, err, "no PEM certificate in")
}

// TestRedisClusterURL: a Redis Cluster with a password and TLS reached from
// INVENTORY_REDIS_CLUSTER_ADDRS as a URL.
func TestRedisClusterURL(t *testing.T) {
	t.Parallel()
	files, err := redistest.NewTLSFiles(t.TempDir())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := redistest.StartCluster(ctx, redistest.Options{Password: "cluster-pw", TLS: files, ReplicasPerMaster: -1})
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	addrs := c.Addrs()
	ca := "ca_file=" + url.QueryEscape(files.CAFile)
	clusterURL := func(userinfo string, params ...string) string {
		u := "rediss://" + userinfo + "@" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
		for _, p := range params {
			u += "&" + p
		}
		return u
	}

	require.NoError(t, dial(t, redisCfg("", clusterURL(":cluster-pw", ca))))
	require.NoError(t, connectAndClose(t, redisCfg("", clusterURL(":cluster-pw", ca))), "the whole start on the cluster")
	err = dial(t, redisCfg("", clusterURL(":nope", ca)))
	require.ErrorContains(t, err, `redis refused the user "default" and password of INVENTORY_REDIS_CLUSTER_ADDRS`)
	require.NotContains(t, err.Error(), ":nope")
	err = dial(t, redisCfg("", clusterURL(":cluster-pw")))
	require.ErrorContains(t, err, "ca_file=/path/ca.pem in INVENTORY_REDIS_CLUSTER_ADDRS")
	err = dial(t, redisCfg("", strings.Join(addrs, ",")))
	require.Error(t, err, "plain seeds reach no TLS-only cluster")
}

// TestRedisClientOptions: what each form of the settings makes, without a
// server.
func TestRedisClientOptions(t *testing.T) {
	t.Parallel()
	files, err := redistest.NewTLSFiles(t.TempDir())
	require.NoError(t, err)

	rt, err := newRedisClient(redisCfg("redis://127.0.0.1:6379/0", " h1:7000, h2:7001 ,"), 10)
	require.NoError(t, err)
	co := rt.client.(*redis.ClusterClient).Options()
	require.Equal(t, []string{"h1:7000", "h2:7001"}, co.Addrs, "host:port seeds still work, and win over the URL")
	require.Nil(t, co.TLSConfig)
	require.Equal(t, 10, co.PoolSize)
	require.Equal(t, clusterReload, co.ClusterStateReloadInterval)
	require.Equal(t, -1, co.MaxRetries, "the engine retries, not go-redis")
	rt.client.Close()

	rt, err = newRedisClient(redisCfg("", "rediss://app:s3cret@h1:7000?addr=h2:7001&ca_file="+url.QueryEscape(files.CAFile)+"&pool_size=99"), 10)
	require.NoError(t, err)
	co = rt.client.(*redis.ClusterClient).Options()
	require.Equal(t, []string{"h1:7000", "h2:7001"}, co.Addrs)
	require.Equal(t, "app", co.Username)
	require.Equal(t, "s3cret", co.Password)
	require.NotNil(t, co.TLSConfig)
	require.NotNil(t, co.TLSConfig.RootCAs)
	require.Equal(t, 99, co.PoolSize, "the URL may raise the pool")
	require.Equal(t, "app", rt.user)
	rt.client.Close()

	rt, err = newRedisClient(redisCfg("rediss://app:s3cret@h1:6380/2", ""), 10)
	require.NoError(t, err)
	o := rt.client.(*redis.Client).Options()
	require.Equal(t, "h1:6380", o.Addr)
	require.Equal(t, 2, o.DB)
	require.Equal(t, "app", o.Username)
	require.Equal(t, "s3cret", o.Password)
	require.NotNil(t, o.TLSConfig)
	require.Nil(t, o.TLSConfig.RootCAs, "the system's CAs unless ca_file says otherwise")
	rt.client.Close()

	for _, bad := range []struct{ redisURL, cluster, want string }{
		{"rediss://app:s3cret@h1:6380/0?ca_file=a&ca_file=b", "", "ca_file must name one file"},
		{"rediss://app:s3cret@h1:6380/0?ca_file=", "", "ca_file must name one file"},
		{"rediss://app:s3cret@h1:6380/0?no_such_option=1", "", "INVENTORY_REDIS_URL: redis: unexpected option: no_such_option"},
		{"rediss://app:s3cret@h1:bad-port/0", "", "INVENTORY_REDIS_URL is not a valid URL"},
		{"rediss://app:s3cret@h1:6380/0%zz", "", "INVENTORY_REDIS_URL is not a valid URL"},
		{"ftp://app:s3cret@h1/0", "", "INVENTORY_REDIS_URL: redis: invalid URL scheme: ftp"},
		{"", "rediss://app:s3cret@h1:7000?addr=nope", "INVENTORY_REDIS_CLUSTER_ADDRS: redis: unable to parse addr param: nope"},
		{"", "redis://app:s3cret@h1:7000?ca_file=x", "INVENTORY_REDIS_CLUSTER_ADDRS: ca_file is for TLS: use rediss://"},
	} {
		_, err := newRedisClient(redisCfg(bad.redisURL, bad.cluster), 10)
		require.ErrorContains(t, err, bad.want, "%s %s", bad.redisURL, bad.cluster)
		require.NotContains(t, err.Error(), "s3cret", "an error never shows the password")
	}
}
