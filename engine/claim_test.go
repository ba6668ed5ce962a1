package engine_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
)

// TestKeyReusedAcrossPartitions: a client key taken by a request on one
// store is refused for another request on any store, whatever partition it
// lives in; a refused request gives its key back.
func TestKeyReusedAcrossPartitions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := b.make(t, engine.Config{})
		ctx := context.Background()
		// two stores in different partitions
		other := ""
		for i := 0; i < 100 && other == ""; i++ {
			if s := fmt.Sprintf("s%d", i); e.Partition(s) != e.Partition("s1") {
				other = s
			}
		}
		require.NotEmpty(t, other)
		mustSet(t, e, "s1", "sofa", 10)
		mustSet(t, e, other, "sofa", 10)
		op := engine.Op{IdempotencyKey: "k1", Principal: "till", Fingerprint: "adjust s1 sofa +1"}
		r, err := e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1}, op)
		require.NoError(t, err)
		require.False(t, r.Replayed)

		// another request under the key, on a store of another partition
		_, err = e.Adjust(ctx, engine.AdjustRequest{Store: other, SKU: "sofa", Delta: 1},
			engine.Op{IdempotencyKey: "k1", Principal: "till", Fingerprint: "adjust other sofa +1"})
		require.ErrorIs(t, err, engine.ErrIdempotencyMismatch)
		require.Equal(t, int64(10), mustGet(t, e, other, "sofa").OnHand)
		// the same key of another principal is its own
		_, err = e.Adjust(ctx, engine.AdjustRequest{Store: other, SKU: "sofa", Delta: 1},
			engine.Op{IdempotencyKey: "k1", Principal: "web", Fingerprint: "adjust other sofa +1"})
		require.NoError(t, err)
		// the retry replays
		r, err = e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 1}, op)
		require.NoError(t, err)
		require.True(t, r.Replayed)
		require.Equal(t, int64(11), mustGet(t, e, "s1", "sofa").OnHand)

		// a refused request gives its key back
		k2 := engine.Op{IdempotencyKey: "k2", Principal: "till", Fingerprint: "sell 50"}
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: other, Lines: []engine.Line{{SKU: "sofa", Qty: 50}}}, k2)
		var ise *engine.InsufficientStockError
		require.ErrorAs(t, err, &ise)
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}},
			engine.Op{IdempotencyKey: "k2", Principal: "till", Fingerprint: "sell 1"})
		require.NoError(t, err)
	})
}

// countingHook counts the commands a client sends, a pipeline's commands
// as one round trip.
type countingHook struct{ trips atomic.Int64 }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.trips.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.trips.Add(1)
		return next(ctx, cmds)
	}
}

// TestKeyedCheckoutRoundTrips: a checkout with a client key costs two round
// trips to Redis (the key's claim and the script), one without a key.
func TestKeyedCheckoutRoundTrips(t *testing.T) {
	c := newRealClient(t)
	prefix := testsupport.IsolatedPrefix(t, c)
	e := mustEngine(t, engine.Config{Client: c, Prefix: prefix})
	ctx := context.Background()
	mustSet(t, e, "s1", "sofa", 10)
	h := &countingHook{}
	c.AddHook(h)
	req := engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}
	_, err := e.Checkout(ctx, req, engine.Op{})
	require.NoError(t, err)
	require.Equal(t, int64(1), h.trips.Swap(0), "a checkout without a key")
	_, err = e.Checkout(ctx, req, engine.Op{IdempotencyKey: "order-1", Principal: "web", Fingerprint: "f"})
	require.NoError(t, err)
	require.Equal(t, int64(2), h.trips.Swap(0), "a keyed checkout: the claim and the script")
	r, err := e.Checkout(ctx, req, engine.Op{IdempotencyKey: "order-1", Principal: "web", Fingerprint: "f"})
	require.NoError(t, err)
	require.True(t, r.Replayed)
	require.Equal(t, int64(2), h.trips.Swap(0), "its replay")
}
