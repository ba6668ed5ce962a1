package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/redistest"
)

// TestRedisPastMaxmemory: a Redis past its maxmemory (noeviction, as the
// engine requires) refuses writes. Every write, one call or group commit,
// FCALL or EVALSHA, answers ErrRedisFull (503, never a 400 or 500), changes
// nothing and appends no event; reads still answer; once memory is
// available again the same writes go through.
func TestRedisPastMaxmemory(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := redistest.StartServer(ctx, redistest.Options{})
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	c := srv.NewClient(nil)
	t.Cleanup(func() { _ = c.Close() })

	for i, tc := range []struct {
		name         string
		group, evsha bool
	}{
		{"one call per write, FCALL", false, false},
		{"group commit, FCALL", true, false},
		{"one call per write, EVALSHA", false, true},
		{"group commit, EVALSHA", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, c.ConfigSet(ctx, "maxmemory", "0").Err())
			e := mustEngine(t, engine.Config{Client: c, Prefix: fmt.Sprintf("oom%d", i), Partitions: 2,
				DisableGroupCommit: !tc.group, NoFunctions: tc.evsha})
			require.Equal(t, !tc.evsha, e.Scripts().UsesFunctions())
			mustSet(t, e, "s1", "sofa", 5)
			before := mustGet(t, e, "s1", "sofa")
			stream := e.StreamKey(e.Partition("s1"))
			events := c.XLen(ctx, stream).Val()

			// 1 byte: every write is past it whatever the server holds.
			require.NoError(t, c.ConfigSet(ctx, "maxmemory", "1").Err())
			_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{})
			require.ErrorIs(t, err, engine.ErrRedisFull)
			require.True(t, engine.IsUnavailable(err))
			_, err = e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "lamp", OnHand: 3}, engine.Op{IdempotencyKey: "k-lamp"})
			require.ErrorIs(t, err, engine.ErrRedisFull)
			_, err = e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 2}, engine.Op{})
			require.ErrorIs(t, err, engine.ErrRedisFull)

			// Reads still answer, and nothing changed.
			require.Equal(t, before, mustGet(t, e, "s1", "sofa"))
			_, err = e.GetItem(ctx, "s1", "lamp")
			require.ErrorIs(t, err, engine.ErrNotFound)
			require.Equal(t, events, c.XLen(ctx, stream).Val())

			// Memory available again: the same writes go through, once.
			require.NoError(t, c.ConfigSet(ctx, "maxmemory", "0").Err())
			_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{})
			require.NoError(t, err)
			_, err = e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "lamp", OnHand: 3}, engine.Op{IdempotencyKey: "k-lamp"})
			require.NoError(t, err)
			require.EqualValues(t, 4, mustGet(t, e, "s1", "sofa").OnHand)
			require.EqualValues(t, 3, mustGet(t, e, "s1", "lamp").OnHand)
			require.Equal(t, events+2, c.XLen(ctx, stream).Val())
		})
	}
}
