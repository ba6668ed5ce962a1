package chaos

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// Tests of bugs found in code this package does not own. Each asserts the
// behaviour the design asks for and fails today; they run when
// INVENTORY_CHAOS_KNOWN_BUGS=1 (so that make test stays green until their
// owners fix them: then drop the gate). Without it they run the same steps
// and log what they observe.

func knownBug(t *testing.T) (assert bool) {
	if os.Getenv("INVENTORY_CHAOS_KNOWN_BUGS") == "1" {
		return true
	}
	t.Log("known bug: asserting only with INVENTORY_CHAOS_KNOWN_BUGS=1")
	return false
}

// Redis unreachable with the Redis client the binary builds
// (cmd/inventory/connect.go: redis.ParseURL defaults, only PoolSize set):
// a write takes about 5 s to fail (go-redis dials 5 times 100 ms apart and
// retries the command 3 times; the engine retries each call 3 times; with
// group commit the batch's 5 s GroupTimeout ends it), so the API answers
// 503 only when its 5 s RequestTimeout fires. Issue 6: "Redis unreachable
// → 503 quickly". TestRedisUnreachable shows that with one dial and no
// go-redis retries the same engine fails within milliseconds.
func TestKnownBugUnreachableRedisFailsSlowly(t *testing.T) {
	t.Parallel()
	assert := knownBug(t)
	w := newWorld(t, worldOpts{})
	opt, err := redis.ParseURL("redis://" + w.rproxy.Addr() + "/0")
	require.NoError(t, err)
	opt.PoolSize = 2*4 + 64 // as connect does
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
	if assert {
		require.True(t, engine.IsUnavailable(err), "unavailable: %v", err)
		require.Less(t, took, time.Second, "fails quickly")
	}
}
