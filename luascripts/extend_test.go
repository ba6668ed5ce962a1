package luascripts_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
)

// TestExtend: extend stands alone (KEYS[1] the key, ARGV[1] the value it
// must hold, ARGV[2] the new time to live in ms) and renews the key only
// while it holds that value.
func TestExtend(t *testing.T) {
	t.Parallel()
	c := testsupport.RedisClient(t, 0)
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		holds   string // "": absent
		value   string
		want    int64
		renewed bool
	}{
		{name: "renews the key while it holds the value", holds: "token-1", value: "token-1", want: 1, renewed: true},
		{name: "leaves a key another has taken", holds: "token-2", value: "token-1", want: 0},
		{name: "an absent key", value: "token-1", want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := testsupport.IsolatedPrefix(t, c) + ":{0}:rebuild-lock"
			if tc.holds != "" {
				require.NoError(t, c.Set(ctx, key, tc.holds, 2*time.Second).Err())
			}
			got, err := scripts.Extend.Run(ctx, c, []string{key}, tc.value, 60000).Int64()
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			if tc.holds == "" {
				require.Zero(t, c.Exists(ctx, key).Val(), "nothing is created")
				return
			}
			require.Equal(t, tc.holds, c.Get(ctx, key).Val(), "the value is kept")
			ttl := c.PTTL(ctx, key).Val()
			if tc.renewed {
				require.Greater(t, ttl, 50*time.Second)
			} else {
				require.LessOrEqual(t, ttl, 2*time.Second)
			}
		})
	}
}
