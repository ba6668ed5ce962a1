package luascripts_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
)

// TestUnlock: unlock stands alone (KEYS[1] the key, ARGV[1] the value it
// must hold) and deletes the key only while it holds that value.
func TestUnlock(t *testing.T) {
	t.Parallel()
	c := testsupport.RedisClient(t, 0)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		holds string // "": absent
		value string
		want  int64
	}{
		{name: "deletes the key while it holds the value", holds: "token-1", value: "token-1", want: 1},
		{name: "leaves a key another has taken", holds: "token-2", value: "token-1", want: 0},
		{name: "an absent key", value: "token-1", want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := testsupport.IsolatedPrefix(t, c) + ":{0}:claim:k"
			if tc.holds != "" {
				require.NoError(t, c.Set(ctx, key, tc.holds, 0).Err())
			}
			got, err := scripts.Unlock.Run(ctx, c, []string{key}, tc.value).Int64()
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			v, err := c.Get(ctx, key).Result()
			if tc.want == 1 || tc.holds == "" {
				require.Error(t, err, "the key is gone")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.holds, v)
		})
	}
}
