package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// Redis unreachable with the Redis client the binary builds
// (cmd/inventory/connect.go: redis.ParseURL, then engine.FailFast): a write
// fails within a second and is unavailable, so the API answers 503 at once.
// With go-redis' defaults it took about 5 s (five dials, three retries).
func TestUnreachableRedisFailsFastWithTheBinarysClient(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{})
	opt, err := redis.ParseURL("redis://" + w.rproxy.Addr() + "/0")
	require.NoError(t, err)
	opt.PoolSize = 2*4 + 64 // as connect does
	engine.FailFast(opt)
	c := redis.NewClient(opt)
	defer c.Close()
	e, err := engine.New(engine.Config{Client: c, Prefix: w.prefix, Partitions: 4})
	require.NoError(t, err)
	require.NoError(t, e.LoadScripts(context.Background()))
	w.rproxy.Cut()
	t0 := time.Now()
	_, err = e.Adjust(context.Background(), engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1}, engine.Op{})
	took := time.Since(t0)
	t.Logf("write to an unreachable Redis failed after %s with %v (IsUnavailable=%v)", took, err, engine.IsUnavailable(err))
	require.True(t, engine.IsUnavailable(err), "unavailable: %v", err)
	require.Less(t, took, time.Second, "fails quickly")
}
