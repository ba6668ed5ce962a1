package redistest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// TestServerPasswordUsersTLS: a standalone server with requirepass, an ACL
// user and TLS only; redistest's own client reaches it, others only with
// the right credentials over TLS.
func TestServerPasswordUsersTLS(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	files, err := NewTLSFiles(t.TempDir())
	require.NoError(t, err)
	s, err := StartServer(ctx, Options{
		Password: "default-secret",
		Users:    []string{"alice on >wonderland ~* &* +@all", "bob on >builder ~bob:* +get +set"},
		TLS:      files,
	})
	require.NoError(t, err)
	t.Cleanup(s.Stop)

	own := s.NewClient(nil)
	defer own.Close()
	require.NoError(t, own.Set(ctx, "bob:k", "v", 0).Err())
	port, err := own.ConfigGet(ctx, "port").Result()
	require.NoError(t, err)
	require.Equal(t, "0", port["port"], "no plain TCP port")

	tlsCfg, err := files.ClientConfig()
	require.NoError(t, err)
	try := func(user, pass string, useTLS bool) error {
		o := &redis.Options{Addr: s.Addr(), Username: user, Password: pass, MaxRetries: -1, DialTimeout: time.Second}
		if useTLS {
			o.TLSConfig = tlsCfg.Clone()
		}
		cl := redis.NewClient(o)
		defer cl.Close()
		if err := cl.Get(ctx, "bob:k").Err(); !errors.Is(err, redis.Nil) {
			return err
		}
		return nil
	}
	require.NoError(t, try("", "default-secret", true), "the default user's password")
	require.NoError(t, try("alice", "wonderland", true), "an ACL user")
	require.NoError(t, try("bob", "builder", true), "a narrower ACL user, on its keys")
	require.ErrorContains(t, try("", "", true), "NOAUTH")
	require.ErrorContains(t, try("alice", "wrong", true), "WRONGPASS")
	require.ErrorContains(t, try("", "wrong", true), "WRONGPASS")
	require.Error(t, try("", "default-secret", false), "plain TCP is refused")

	// Restart keeps the settings (not the data).
	require.NoError(t, s.Restart(ctx))
	require.NoError(t, own.Ping(ctx).Err())
	require.NoError(t, try("alice", "wonderland", true))
}

// TestClusterPasswordTLS: a cluster with requirepass and masterauth whose
// clients, bus and replication all go over TLS.
func TestClusterPasswordTLS(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	files, err := NewTLSFiles(t.TempDir())
	require.NoError(t, err)
	c, err := StartCluster(ctx, Options{Password: "cluster-secret", TLS: files})
	require.NoError(t, err, "replicas authenticate to their masters and sync over TLS")
	t.Cleanup(c.Stop)
	cl := c.Client()
	for i := 0; i < 30; i++ {
		require.NoError(t, cl.Set(ctx, fmt.Sprint("k", i), i, 0).Err())
	}
	ms, err := c.Masters(ctx)
	require.NoError(t, err)
	require.Len(t, ms, 3)

	tlsCfg, err := files.ClientConfig()
	require.NoError(t, err)
	bad := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Password: "nope", TLSConfig: tlsCfg, MaxRetries: -1, DialTimeout: time.Second})
	defer bad.Close()
	require.ErrorContains(t, bad.Ping(ctx).Err(), "WRONGPASS")
}
