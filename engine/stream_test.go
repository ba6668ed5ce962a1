package engine_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
)

// rawEngine returns an engine of two partitions on the real Redis, under a
// prefix of the test's own, with a client of the test's own that the
// engine does not use, to seed and inspect raw keys. The engine's client is
// named after the prefix, so the test can find its connections.
func rawEngine(t *testing.T) (*engine.Engine, *redis.Client) {
	t.Helper()
	raw := testsupport.RedisClient(t, 4)
	prefix := testsupport.IsolatedPrefix(t, raw)
	opt, err := redis.ParseURL(testsupport.RedisURL())
	require.NoError(t, err)
	opt.ClientName = prefix
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	e, err := engine.New(engine.Config{Client: c, Prefix: prefix, Partitions: 2})
	require.NoError(t, err)
	return e, raw
}

// addEntries appends n entries to key and returns their ids.
func addEntries(t *testing.T, c *redis.Client, key string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		id, err := c.XAdd(context.Background(), &redis.XAddArgs{Stream: key, Values: []any{"s", "s1", "i", strconv.Itoa(i)}}).Result()
		require.NoError(t, err)
		ids[i] = id
	}
	return ids
}

func entryIDs(es []engine.StreamEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func TestStreamID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want engine.StreamID
		bad  bool
	}{
		{in: "0-0", want: engine.StreamID{}},
		{in: "1700000000000-3", want: engine.StreamID{Ms: 1700000000000, Seq: 3}},
		{in: "18446744073709551615-18446744073709551615", want: engine.StreamID{Ms: ^uint64(0), Seq: ^uint64(0)}},
		{in: "", bad: true},
		{in: "12", bad: true},
		{in: "a-1", bad: true},
		{in: "1-b", bad: true},
		{in: "-1-2", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			id, err := engine.ParseStreamID(tc.in)
			if tc.bad {
				require.ErrorContains(t, err, "bad stream entry id")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, id)
			require.Equal(t, tc.in, id.String())
		})
	}
	a := engine.StreamID{Ms: 5, Seq: 9}
	require.True(t, a.Less(engine.StreamID{Ms: 5, Seq: 10}))
	require.True(t, a.Less(engine.StreamID{Ms: 6}))
	require.False(t, a.Less(a))
	require.False(t, a.Less(engine.StreamID{Ms: 4, Seq: 99}))
	require.Equal(t, engine.StreamID{Ms: 5, Seq: 10}, a.Next())
	require.Equal(t, engine.StreamID{Ms: 6}, engine.StreamID{Ms: 5, Seq: ^uint64(0)}.Next())
	require.True(t, engine.StreamID{}.IsZero())
	require.False(t, a.IsZero())
}

// A consumer reads new entries, finds them pending until it acknowledges
// them, and waits for more without an error when there are none.
func TestStreamReadAndAck(t *testing.T) {
	t.Parallel()
	e, raw := rawEngine(t)
	ctx := context.Background()
	key := e.StreamKey(1)
	c := engine.Consumer{Group: "g", Name: "c1"}

	require.NoError(t, e.CreateGroup(ctx, 1, "g"))
	require.NoError(t, e.CreateGroup(ctx, 1, "g"), "an existing group is left alone")
	require.EqualValues(t, 1, raw.Exists(ctx, key).Val(), "the group made the stream")

	ids := addEntries(t, raw, key, 5)
	got, err := e.ReadNew(ctx, 1, c, 3, time.Second)
	require.NoError(t, err)
	require.Equal(t, ids[:3], entryIDs(got))
	require.Equal(t, map[string]any{"s": "s1", "i": "0"}, got[0].Values)

	pend, err := e.ReadPending(ctx, 1, c, 10)
	require.NoError(t, err)
	require.Equal(t, ids[:3], entryIDs(pend), "delivered, not acknowledged")
	other, err := e.ReadPending(ctx, 1, engine.Consumer{Group: "g", Name: "c2"}, 10)
	require.NoError(t, err)
	require.Empty(t, other, "pending on c1 only")

	n, err := e.Ack(ctx, 1, "g", ids[0], ids[1])
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	n, err = e.Ack(ctx, 1, "g", ids[0], ids[2])
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "an entry acknowledged before does not count")
	pend, err = e.ReadPending(ctx, 1, c, 10)
	require.NoError(t, err)
	require.Empty(t, pend)

	got, err = e.ReadNew(ctx, 1, c, 10, 0)
	require.NoError(t, err)
	require.Equal(t, ids[3:], entryIDs(got))
	got, err = e.ReadNew(ctx, 1, c, 10, 20*time.Millisecond)
	require.NoError(t, err)
	require.Empty(t, got, "nothing new: an empty read, not an error")
	got, err = e.ReadNew(ctx, 1, c, 10, 0)
	require.NoError(t, err)
	require.Empty(t, got, "no wait")
	require.EqualValues(t, 0, raw.Exists(ctx, e.StreamKey(0)).Val(), "the other partition untouched")
}

// Reads and claims on a stream or group that is gone say ErrNoGroup, and so
// does a read waiting while its stream is deleted (Redis flushed).
func TestStreamNoGroup(t *testing.T) {
	t.Parallel()
	e, raw := rawEngine(t)
	ctx := context.Background()
	c := engine.Consumer{Group: "g", Name: "c1"}

	_, err := e.ReadNew(ctx, 0, c, 10, 0)
	require.ErrorIs(t, err, engine.ErrNoGroup, "no stream")
	addEntries(t, raw, e.StreamKey(0), 1)
	_, err = e.ReadNew(ctx, 0, c, 10, 10*time.Millisecond)
	require.ErrorIs(t, err, engine.ErrNoGroup, "no group")
	require.ErrorContains(t, err, "NOGROUP", "Redis' own words are kept")
	_, err = e.ReadPending(ctx, 0, c, 10)
	require.ErrorIs(t, err, engine.ErrNoGroup)
	_, _, err = e.ClaimIdle(ctx, 0, c, 0, engine.StreamID{}, 10)
	require.ErrorIs(t, err, engine.ErrNoGroup)

	require.NoError(t, e.CreateGroup(ctx, 0, "g"))
	_, err = e.ReadNew(ctx, 0, c, 10, 0)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := e.ReadNew(ctx, 0, c, 10, 30*time.Second)
		done <- err
	}()
	testsupport.WaitFor(t, 10*time.Second, "the read to block", func() bool {
		list, err := raw.ClientList(ctx).Result()
		require.NoError(t, err)
		for _, l := range strings.Split(list, "\n") {
			if strings.Contains(l, " name="+e.Prefix()+" ") && strings.Contains(l, "cmd=xreadgroup") && strings.Contains(l, "flags=b") {
				return true
			}
		}
		return false
	})
	require.NoError(t, raw.Del(ctx, e.StreamKey(0)).Err())
	select {
	case err := <-done:
		require.ErrorIs(t, err, engine.ErrNoGroup)
	case <-time.After(10 * time.Second):
		t.Fatal("the blocked read did not end when its stream was deleted")
	}
}

// ClaimIdle takes over entries pending on another consumer for long
// enough, scanning them count at a time with a cursor.
func TestStreamClaimIdle(t *testing.T) {
	t.Parallel()
	e, raw := rawEngine(t)
	ctx := context.Background()
	dead := engine.Consumer{Group: "g", Name: "dead"}
	live := engine.Consumer{Group: "g", Name: "live"}
	require.NoError(t, e.CreateGroup(ctx, 0, "g"))
	ids := addEntries(t, raw, e.StreamKey(0), 5)
	_, err := e.ReadNew(ctx, 0, dead, 10, 0)
	require.NoError(t, err)

	got, next, err := e.ClaimIdle(ctx, 0, live, time.Hour, engine.StreamID{}, 10)
	require.NoError(t, err)
	require.Empty(t, got, "not idle for an hour")
	require.True(t, next.IsZero())

	var claimed []engine.StreamEntry
	var cursor engine.StreamID
	for i := 0; ; i++ {
		require.Less(t, i, 5, "the scan ends")
		got, next, err := e.ClaimIdle(ctx, 0, live, 0, cursor, 2)
		require.NoError(t, err)
		require.LessOrEqual(t, len(got), 2)
		claimed = append(claimed, got...)
		if next.IsZero() {
			break
		}
		cursor = next
	}
	require.Equal(t, ids, entryIDs(claimed))
	require.Equal(t, map[string]any{"s": "s1", "i": "4"}, claimed[4].Values, "claimed entries carry their fields")
	pend, err := e.ReadPending(ctx, 0, live, 10)
	require.NoError(t, err)
	require.Equal(t, ids, entryIDs(pend), "now pending on the claimer")
	pend, err = e.ReadPending(ctx, 0, dead, 10)
	require.NoError(t, err)
	require.Empty(t, pend)
}

// GroupState's floor never passes an unacknowledged entry, and Unacked
// counts pending plus never delivered entries, also when Redis cannot tell
// the group's lag.
func TestStreamGroupState(t *testing.T) {
	t.Parallel()
	e, raw := rawEngine(t)
	ctx := context.Background()
	key := e.StreamKey(0)
	c := engine.Consumer{Group: "g", Name: "c1"}
	id := func(s string) engine.StreamID {
		t.Helper()
		x, err := engine.ParseStreamID(s)
		require.NoError(t, err)
		return x
	}

	_, ok, err := e.GroupState(ctx, 0, "g")
	require.NoError(t, err)
	require.False(t, ok, "no stream")
	ids := addEntries(t, raw, key, 6)
	_, ok, err = e.GroupState(ctx, 0, "g")
	require.NoError(t, err)
	require.False(t, ok, "no group")

	require.NoError(t, e.CreateGroup(ctx, 0, "g"))
	require.NoError(t, raw.XGroupCreate(ctx, key, "other", "$").Err())
	st, ok, err := e.GroupState(ctx, 0, "g")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, engine.GroupState{Floor: engine.StreamID{Seq: 1}, Unacked: 6}, st, "nothing delivered")

	_, err = e.ReadNew(ctx, 0, c, 4, 0)
	require.NoError(t, err)
	_, err = e.Ack(ctx, 0, "g", ids[0], ids[2])
	require.NoError(t, err)
	st, _, err = e.GroupState(ctx, 0, "g")
	require.NoError(t, err)
	require.Equal(t, engine.GroupState{Floor: id(ids[1]), Unacked: 4}, st, "the oldest pending entry holds the floor")

	_, err = e.Ack(ctx, 0, "g", ids[1], ids[3])
	require.NoError(t, err)
	st, _, err = e.GroupState(ctx, 0, "g")
	require.NoError(t, err)
	require.Equal(t, engine.GroupState{Floor: id(ids[3]).Next(), Unacked: 2}, st, "all delivered acknowledged")

	// An entry deleted after the last delivered one: Redis no longer knows
	// the group's lag, so the entries are counted.
	junk := addEntries(t, raw, key, 1)[0]
	require.NoError(t, raw.XDel(ctx, key, junk).Err())
	gs, err := raw.XInfoGroups(ctx, key).Result()
	require.NoError(t, err)
	for _, g := range gs {
		if g.Name == "g" {
			require.EqualValues(t, -1, g.Lag, "Redis cannot tell the lag")
		}
	}
	addEntries(t, raw, key, 1)
	st, _, err = e.GroupState(ctx, 0, "g")
	require.NoError(t, err)
	require.Equal(t, engine.GroupState{Floor: id(ids[3]).Next(), Unacked: 3}, st)

	require.NoError(t, raw.Del(ctx, key).Err())
	_, ok, err = e.GroupState(ctx, 0, "g")
	require.NoError(t, err)
	require.False(t, ok, "flushed")
}

// ScanStream reads from an id on, in chunks, to the end; TrimStream drops
// what lies below an id; StreamLen counts what is left.
func TestStreamScanTrimLen(t *testing.T) {
	t.Parallel()
	e, raw := rawEngine(t)
	ctx := context.Background()
	ids := addEntries(t, raw, e.StreamKey(1), 7)
	scan := func(from engine.StreamID, chunk int) [][]string {
		t.Helper()
		var out [][]string
		require.NoError(t, e.ScanStream(ctx, 1, from, chunk, func(es []engine.StreamEntry) error {
			out = append(out, entryIDs(es))
			return nil
		}))
		return out
	}
	third, err := engine.ParseStreamID(ids[2])
	require.NoError(t, err)

	for _, tc := range []struct {
		name  string
		from  engine.StreamID
		chunk int
		want  [][]string
	}{
		{"all at once", engine.StreamID{}, 10, [][]string{ids}},
		{"in chunks", engine.StreamID{}, 3, [][]string{ids[:3], ids[3:6], ids[6:]}},
		{"chunks that fit exactly", engine.StreamID{}, 7, [][]string{ids}},
		{"from an entry", third, 2, [][]string{ids[2:4], ids[4:6], ids[6:]}},
		{"past the end", engine.StreamID{Ms: ^uint64(0)}, 3, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, scan(tc.from, tc.chunk))
		})
	}

	stop := errors.New("stop")
	calls := 0
	err = e.ScanStream(ctx, 1, engine.StreamID{}, 2, func([]engine.StreamEntry) error { calls++; return stop })
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1, calls, "fn's error ends the scan")
	require.NoError(t, e.ScanStream(ctx, 0, engine.StreamID{}, 2, func([]engine.StreamEntry) error {
		t.Fatal("no stream, no chunk")
		return nil
	}))

	n, err := e.StreamLen(ctx, 1)
	require.NoError(t, err)
	require.EqualValues(t, 7, n)
	require.NoError(t, e.TrimStream(ctx, 1, third))
	n, err = e.StreamLen(ctx, 1)
	require.NoError(t, err)
	require.EqualValues(t, 5, n)
	require.Equal(t, [][]string{ids[2:]}, scan(engine.StreamID{}, 10), "the entry at the cut stays")
	n, err = e.StreamLen(ctx, 0)
	require.NoError(t, err)
	require.Zero(t, n, "no stream")
}

// A dead letter keeps the entry's id, why and who moved it, and its fields
// under "f:"; ScanDeadLetters reads it back as it was added.
func TestDeadLetters(t *testing.T) {
	t.Parallel()
	e, raw := rawEngine(t)
	ctx := context.Background()
	d := engine.DeadLetter{EntryID: "1-2", Error: "event 1-2: missing k", Consumer: "w1",
		Values: map[string]any{"s": "s1", "id": "not the entry's id", "error": "a field"}}
	require.NoError(t, e.AddDeadLetter(ctx, 1, d, 100))

	msgs, err := raw.XRange(ctx, e.DeadLetterKey(1), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	require.Equal(t, map[string]any{"id": "1-2", "error": "event 1-2: missing k", "consumer": "w1",
		"f:s": "s1", "f:id": "not the entry's id", "f:error": "a field"}, msgs[0].Values)

	var got []engine.DeadLetter
	require.NoError(t, e.ScanDeadLetters(ctx, 1, 10, func(ds []engine.DeadLetter) error {
		got = append(got, ds...)
		return nil
	}))
	d.ID = msgs[0].ID
	require.Equal(t, []engine.DeadLetter{d}, got)

	for i := 0; i < 300; i++ {
		require.NoError(t, e.AddDeadLetter(ctx, 0, engine.DeadLetter{EntryID: strconv.Itoa(i) + "-0", Error: "x", Consumer: "w"}, 10))
	}
	n := raw.XLen(ctx, e.DeadLetterKey(0)).Val()
	require.GreaterOrEqual(t, n, int64(10))
	require.Less(t, n, int64(300), "capped, approximately")
	var scanned, chunks int
	require.NoError(t, e.ScanDeadLetters(ctx, 0, 64, func(ds []engine.DeadLetter) error {
		scanned += len(ds)
		chunks++
		return nil
	}))
	require.EqualValues(t, n, scanned)
	require.Greater(t, chunks, 1)
}

// Health records are kept per worker in one hash per partition, whose TTL
// every put renews.
func TestPersisterHealth(t *testing.T) {
	t.Parallel()
	e, raw := rawEngine(t)
	ctx := context.Background()
	recs, err := e.PersisterHealth(ctx, 0)
	require.NoError(t, err)
	require.Empty(t, recs)

	require.NoError(t, e.PutPersisterHealth(ctx, 0, "w1", []byte(`{"n":1}`), time.Minute))
	require.NoError(t, e.PutPersisterHealth(ctx, 0, "w2", []byte(`{"n":2}`), time.Hour))
	recs, err = e.PersisterHealth(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, map[string][]byte{"w1": []byte(`{"n":1}`), "w2": []byte(`{"n":2}`)}, recs)
	ttl := raw.PTTL(ctx, e.PersisterHealthKey(0)).Val()
	require.Greater(t, ttl, 59*time.Minute, "the last put set the TTL")
	require.LessOrEqual(t, ttl, time.Hour)

	require.NoError(t, e.DeletePersisterHealth(ctx, 0, "w1"))
	require.NoError(t, e.DeletePersisterHealth(ctx, 0, "w1"), "deleting twice is harmless")
	recs, err = e.PersisterHealth(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, map[string][]byte{"w2": []byte(`{"n":2}`)}, recs)
	recs, err = e.PersisterHealth(ctx, 1)
	require.NoError(t, err)
	require.Empty(t, recs, "records are per partition")
}
