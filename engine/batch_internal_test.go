package engine

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// TestBatchRetryReplays sends the same batch call twice, as go-redis or the
// engine does after a lost reply: the second call applies nothing and returns
// the first call's results.
func TestBatchRetryReplays(t *testing.T) {
	url := os.Getenv("INVENTORY_TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(url)
	require.NoError(t, err)
	m := miniredis.RunT(t)
	for name, c := range map[string]*redis.Client{"redis": redis.NewClient(opt), "miniredis": redis.NewClient(&redis.Options{Addr: m.Addr()})} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			prefix := "tb" + randomHex(6)
			t.Cleanup(func() {
				iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
				for iter.Next(ctx) {
					c.Del(ctx, iter.Val())
				}
			})
			e, err := New(Config{Client: c, Prefix: prefix})
			require.NoError(t, err)
			require.NoError(t, e.Init(ctx))
			_, err = e.Set(ctx, SetRequest{Store: "s1", SKU: "sofa", OnHand: 3}, Op{})
			require.NoError(t, err)
			p := e.Partition("s1")
			var payloads []any
			payloads = append(payloads, "batch-1")
			for i := 0; i < 5; i++ {
				w := &request{Op: "checkout", Store: "s1", Lines: []wireLine{{SKU: "sofa", Qty: 1}}}
				require.NoError(t, identify(w, Op{}))
				b, err := json.Marshal(w)
				require.NoError(t, err)
				payloads = append(payloads, string(b))
			}
			first, err := e.run(ctx, e.scripts.Batch, p, payloads...)
			require.NoError(t, err)
			second, err := e.run(ctx, e.scripts.Batch, p, payloads...)
			require.NoError(t, err)
			a, b := first.([]any), second.([]any)
			require.Len(t, b, 5)
			for i := range a {
				ra, ea := decodeResult(a[i])
				rb, eb := decodeResult(b[i])
				require.Equal(t, ea == nil, eb == nil)
				if ea != nil {
					require.Equal(t, ea.Error(), eb.Error())
					continue
				}
				require.Equal(t, ra, rb)
			}
			it, err := e.GetItem(ctx, "s1", "sofa")
			require.NoError(t, err)
			require.Equal(t, int64(0), it.OnHand)
			require.Equal(t, int64(4), it.Version)
			n, err := c.XLen(ctx, e.StreamKey(p)).Result()
			require.NoError(t, err)
			require.Equal(t, int64(4), n, "three sales, once")
		})
	}
}
