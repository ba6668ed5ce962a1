package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

func TestCheckRedisConfig(t *testing.T) {
	e := realBackend().make(t, engine.Config{})
	ctx := context.Background()
	c := e.Client()
	pol := c.ConfigGet(ctx, "maxmemory-policy").Val()["maxmemory-policy"]
	t.Cleanup(func() { c.ConfigSet(context.Background(), "maxmemory-policy", pol) })
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
