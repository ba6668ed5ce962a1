package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
)

// TestCheckRedisConfig changes maxmemory-policy, so it runs on a private
// redis-server: the shared one's settings belong to every other test and to
// `make run`.
func TestCheckRedisConfig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := testsupport.RedisServer(t).NewClient(nil)
	t.Cleanup(func() { c.Close() })
	e, err := engine.New(engine.Config{Client: c, Prefix: "cfgcheck"})
	require.NoError(t, err)

	require.NoError(t, c.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err())
	for _, w := range e.CheckRedisConfig(ctx) {
		require.NotContains(t, w, "maxmemory-policy is")
	}
	require.NoError(t, c.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err())
	found := false
	for _, w := range e.CheckRedisConfig(ctx) {
		found = found || strings.Contains(w, `maxmemory-policy is "allkeys-lru"`)
	}
	require.True(t, found)
}
