package engine_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
)

// feedWorld is an engine of 4 partitions on real Redis under its own
// prefix, with a client of the same Redis to seed and inspect raw keys.
func feedWorld(t *testing.T) (*engine.Engine, *redis.Client) {
	t.Helper()
	c := testsupport.RedisClient(t, 0)
	prefix := testsupport.IsolatedPrefix(t, c)
	return mustEngine(t, engine.Config{Client: c, Prefix: prefix, Partitions: 4}), c
}

// storesIn returns n stores of partition p.
func storesIn(e *engine.Engine, p, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		if s := fmt.Sprintf("s%d", i); e.Partition(s) == p {
			out = append(out, s)
		}
	}
	return out
}

// lastID returns the id of the last entry of partition p's stream.
func lastID(t *testing.T, c *redis.Client, e *engine.Engine, p int) string {
	t.Helper()
	msgs, err := c.XRevRangeN(context.Background(), e.StreamKey(p), "+", "-", 1).Result()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	return msgs[0].ID
}

func TestFeedHeads(t *testing.T) {
	t.Parallel()
	e, c := feedWorld(t)
	ctx := context.Background()
	heads, err := e.FeedHeads(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"0-0", "0-0", "0-0", "0-0"}, heads, "no stream yet")

	s := storesIn(e, 2, 1)[0]
	mustSet(t, e, s, "sofa", 1)
	mustSet(t, e, s, "sofa", 2)
	heads, err = e.FeedHeads(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"0-0", "0-0", lastID(t, c, e, 2), "0-0"}, heads)

	// An emptied stream has no head again.
	require.NoError(t, c.XTrimMaxLen(ctx, e.StreamKey(2), 0).Err())
	heads, err = e.FeedHeads(ctx)
	require.NoError(t, err)
	require.Equal(t, "0-0", heads[2])

	// A reader starts after the emptied stream's last entry: no gap there.
	start, err := e.FeedStart(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"0-0", "0-0", "0-0"}, []string{start[0], start[1], start[3]}, "streams never written")
	require.NotEqual(t, "0-0", start[2])
	gaps, err := e.TrimmedAfter(ctx, []engine.StreamPos{{Partition: 2, After: start[2]}})
	require.NoError(t, err)
	require.Empty(t, gaps)
	gaps, err = e.TrimmedAfter(ctx, []engine.StreamPos{{Partition: 2, After: "0-0"}})
	require.NoError(t, err)
	require.Equal(t, []int{2}, gaps, "0-0 lies before the trim")
}

func TestReadFeed(t *testing.T) {
	t.Parallel()
	e, c := feedWorld(t)
	ctx := context.Background()
	s0, s1 := storesIn(e, 0, 1)[0], storesIn(e, 1, 1)[0]
	mustSet(t, e, s0, "a", 1)
	mustSet(t, e, s0, "b", 2)
	mustSet(t, e, s0, "c", 3)
	mustSet(t, e, s1, "a", 4)
	// an entry that is no event: a reader must still be able to move past it
	poison, err := c.XAdd(ctx, &redis.XAddArgs{Stream: e.StreamKey(1), Values: []any{"junk", "1"}}).Result()
	require.NoError(t, err)

	// from the start, in the order asked, at most count per partition
	got, err := e.ReadFeed(ctx, []engine.StreamPos{{Partition: 1, After: "0-0"}, {Partition: 0, After: "0-0"}, {Partition: 3, After: "0-0"}}, 2)
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.Len(t, got[0], 2)
	require.NoError(t, got[0][0].Err)
	require.Equal(t, s1, got[0][0].Event.Store)
	require.Equal(t, int64(4), got[0][0].Event.OnHand)
	require.Equal(t, got[0][0].ID, got[0][0].Event.StreamID)
	require.Equal(t, poison, got[0][1].ID)
	require.Error(t, got[0][1].Err, "a poison entry comes with its error")
	require.Len(t, got[1], 2)
	require.Equal(t, []string{"a", "b"}, []string{got[1][0].Event.SKU, got[1][1].Event.SKU})
	require.Empty(t, got[2], "partition 3 has no stream")

	// after a position: the rest, then nothing
	got, err = e.ReadFeed(ctx, []engine.StreamPos{{Partition: 0, After: got[1][1].ID}}, 10)
	require.NoError(t, err)
	require.Len(t, got[0], 1)
	require.Equal(t, "c", got[0][0].Event.SKU)
	got, err = e.ReadFeed(ctx, []engine.StreamPos{{Partition: 0, After: lastID(t, c, e, 0)}}, 10)
	require.NoError(t, err)
	require.Empty(t, got[0])

	// no position at all
	got, err = e.ReadFeed(ctx, nil, 10)
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestTrimmedAfter(t *testing.T) {
	t.Parallel()
	e, c := feedWorld(t)
	ctx := context.Background()
	s := storesIn(e, 1, 1)[0]
	mustSet(t, e, s, "x", 1)
	old := lastID(t, c, e, 1)
	mustSet(t, e, s, "x", 2)
	mid := lastID(t, c, e, 1)
	mustSet(t, e, s, "x", 3)
	all := func(after string) []engine.StreamPos {
		out := make([]engine.StreamPos, e.Partitions())
		for p := range out {
			out[p] = engine.StreamPos{Partition: p, After: after}
		}
		return out
	}

	gaps, err := e.TrimmedAfter(ctx, all(old))
	require.NoError(t, err, "missing streams lost nothing")
	require.Empty(t, gaps, "nothing trimmed")

	// Trim the first entry: a position before the first kept entry missed
	// events; one at or after it did not.
	require.NoError(t, c.XTrimMinID(ctx, e.StreamKey(1), mid).Err())
	gaps, err = e.TrimmedAfter(ctx, []engine.StreamPos{{Partition: 1, After: "0-0"}})
	require.NoError(t, err)
	require.Equal(t, []int{1}, gaps)
	gaps, err = e.TrimmedAfter(ctx, []engine.StreamPos{{Partition: 1, After: old}})
	require.NoError(t, err)
	require.Equal(t, []int{1}, gaps, "the position was trimmed itself: flagged, to be safe")
	gaps, err = e.TrimmedAfter(ctx, []engine.StreamPos{{Partition: 1, After: mid}})
	require.NoError(t, err)
	require.Empty(t, gaps)

	// An emptied stream: a position before the last entry added missed it.
	last := lastID(t, c, e, 1)
	require.NoError(t, c.XTrimMaxLen(ctx, e.StreamKey(1), 0).Err())
	gaps, err = e.TrimmedAfter(ctx, all(mid))
	require.NoError(t, err)
	require.Equal(t, []int{1}, gaps)
	gaps, err = e.TrimmedAfter(ctx, all(last))
	require.NoError(t, err)
	require.Empty(t, gaps)

	// A stream that cannot be inspected (not a stream) counts as whole, and
	// says why.
	require.NoError(t, c.Set(ctx, e.StreamKey(3), "not a stream", 0).Err())
	gaps, err = e.TrimmedAfter(ctx, all(mid))
	require.Error(t, err)
	require.Equal(t, []int{1}, gaps)
}

func TestStreamLengths(t *testing.T) {
	t.Parallel()
	e, c := feedWorld(t)
	ctx := context.Background()
	s0, s3 := storesIn(e, 0, 1)[0], storesIn(e, 3, 1)[0]
	mustSet(t, e, s0, "a", 1)
	mustSet(t, e, s0, "b", 1)
	mustSet(t, e, s3, "a", 1)
	n, err := e.StreamLengths(ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{2, 0, 0, 1}, n)

	require.NoError(t, c.Set(ctx, e.StreamKey(1), "not a stream", 0).Err())
	n, err = e.StreamLengths(ctx)
	require.Error(t, err)
	require.Equal(t, []int64{2, -1, 0, 1}, n, "a length that cannot be read is -1; the others are still read")
}
