package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

func TestPing(t *testing.T) {
	t.Parallel()
	e, _ := feedWorld(t)
	require.NoError(t, e.Ping(context.Background()))

	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond, DialerRetries: 1})
	t.Cleanup(func() { _ = down.Close() })
	e, err := engine.New(engine.Config{Client: down, Partitions: 4})
	require.NoError(t, err)
	err = e.Ping(context.Background())
	require.Error(t, err)
	require.Contains(t, err.Error(), "127.0.0.1:1", "the client's own error, naming the address")
	require.True(t, engine.IsUnavailable(err))
}
