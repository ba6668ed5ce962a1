package persist_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// storeOn returns a store whose events go to partition p.
func storeOn(t *testing.T, e *engine.Engine, p int) string {
	t.Helper()
	for i := range 10000 {
		if s := fmt.Sprintf("s%d", i); e.Partition(s) == p {
			return s
		}
	}
	t.Fatalf("no store on partition %d", p)
	return ""
}

// A downstream group nobody reads holds the trimming of a partition until
// its oldest unacknowledged entry is DownstreamMaxLag old, then stops
// holding it (once logged, counted); a live group reading on another
// partition, with entries pending a while each, loses none of them.
func TestDownstreamGroupReleasedAfterMaxLag(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 2})
	ctx := context.Background()
	const (
		group  = "relay"
		maxLag = 3 * time.Second
		hold   = time.Second // how long the live group keeps an entry pending
	)
	abandoned, live := 0, 1
	sA, sB := storeOn(t, v.e, abandoned), storeOn(t, v.e, live)
	for p := range 2 {
		require.NoError(t, v.e.CreateGroup(ctx, p, group))
	}
	for i := range 10 {
		_, err := v.e.Set(ctx, engine.SetRequest{Store: sA, SKU: "a", OnHand: int64(i + 1)}, engine.Op{})
		require.NoError(t, err)
	}
	_, err := v.e.Set(ctx, engine.SetRequest{Store: sB, SKU: "b", OnHand: 1}, engine.Op{})
	require.NoError(t, err)
	first, err := v.rdb.XRangeN(ctx, v.e.StreamKey(abandoned), "-", "+", 1).Result()
	require.NoError(t, err)
	firstID, err := engine.ParseStreamID(first[0].ID)
	require.NoError(t, err)
	firstAt := time.UnixMilli(int64(firstID.Ms))

	core, logs := observer.New(zapcore.InfoLevel)
	p, _ := v.startPersister(t, persist.PersisterConfig{RetentionWindow: time.Nanosecond, Downstream: []string{group},
		DownstreamMaxLag: maxLag, Logger: zap.New(core)})

	// The live group: one event every 100ms, each read at once and
	// acknowledged after `hold`, checked to be still in the stream then.
	cons := engine.Consumer{Group: group, Name: "live"}
	type pending struct {
		id string
		at time.Time
	}
	var (
		queue               []pending
		written, read, lost int
	)
	ack := func(now time.Time, all bool) {
		for len(queue) > 0 && (all || now.Sub(queue[0].at) >= hold) {
			id := queue[0].id
			queue = queue[1:]
			in, err := v.rdb.XRange(ctx, v.e.StreamKey(live), id, id).Result()
			require.NoError(t, err)
			if len(in) != 1 {
				lost++
			}
			_, err = v.e.Ack(ctx, live, group, id)
			require.NoError(t, err)
		}
	}
	written = 1 // the item's creation
	heldA := 0
	deadline := time.Now().Add(60 * time.Second)
	for time.Since(firstAt) < maxLag+2*time.Second && time.Now().Before(deadline) {
		// While the abandoned group is within its lag, its partition keeps
		// every entry although all of them are persisted.
		before := time.Now()
		n := v.rdb.XLen(ctx, v.e.StreamKey(abandoned)).Val()
		if before.Sub(firstAt) < maxLag-200*time.Millisecond {
			require.Equal(t, int64(10), n, "trimmed %s after the first entry, within the max lag", before.Sub(firstAt))
			heldA++
		}
		_, err := v.e.Adjust(ctx, engine.AdjustRequest{Store: sB, SKU: "b", Delta: 1}, engine.Op{})
		require.NoError(t, err)
		written++
		msgs, err := v.e.ReadNew(ctx, live, cons, 100, 0)
		require.NoError(t, err)
		for _, m := range msgs {
			queue = append(queue, pending{m.ID, time.Now()})
			read++
		}
		ack(time.Now(), false)
		time.Sleep(100 * time.Millisecond)
	}
	require.Positive(t, heldA, "the abandoned group's partition was looked at within its lag")
	testsupport.WaitFor(t, 20*time.Second, "the abandoned group's partition trimmed", func() bool {
		return v.rdb.XLen(ctx, v.e.StreamKey(abandoned)).Val() == 0
	})
	msgs, err := v.e.ReadNew(ctx, live, cons, 1000, 0)
	require.NoError(t, err)
	for _, m := range msgs {
		queue = append(queue, pending{m.ID, time.Now()})
		read++
	}
	ack(time.Now(), true)
	require.Equal(t, written, read, "the live group read every entry of its partition")
	require.Zero(t, lost, "no entry was trimmed while the live group had it pending")
	testsupport.WaitFor(t, 20*time.Second, "the live group's partition trimmed once acknowledged", func() bool {
		return v.rdb.XLen(ctx, v.e.StreamKey(live)).Val() == 0
	})

	st := p.Stats().Downstream[group]
	require.Equal(t, int64(1), st.Releases, "one release, however many trims since")
	require.Equal(t, []int{abandoned}, st.Released)
	rel := logs.FilterMessageSnippet("no longer holds").All()
	require.Len(t, rel, 1)
	require.Equal(t, zapcore.ErrorLevel, rel[0].Level)
	require.Equal(t, int64(abandoned), rel[0].ContextMap()["partition"])

	// New entries do not make the released group hold again: it has not
	// caught up.
	_, err = v.e.Adjust(ctx, engine.AdjustRequest{Store: sA, SKU: "a", Delta: 1}, engine.Op{})
	require.NoError(t, err)
	testsupport.WaitFor(t, 20*time.Second, "the new entry trimmed too", func() bool {
		return v.rdb.XLen(ctx, v.e.StreamKey(abandoned)).Val() == 0
	})
	require.Equal(t, int64(1), p.Stats().Downstream[group].Releases)
	require.Empty(t, logs.FilterMessageSnippet("holds the stream's trimming again").All())
}

// A downstream group with more unacknowledged entries than
// DownstreamMaxBacklog holds nothing, however recent they are; a negative
// DownstreamMaxLag never releases a group for its lag.
func TestDownstreamGroupReleasedPastMaxBacklog(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	require.NoError(t, v.e.CreateGroup(ctx, 0, "webhooks"))
	for i := range 5 {
		_, err := v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "a", OnHand: int64(i + 1)}, engine.Op{})
		require.NoError(t, err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	p, _ := v.startPersister(t, persist.PersisterConfig{RetentionWindow: time.Nanosecond, Downstream: []string{"webhooks"},
		DownstreamMaxLag: -1, DownstreamMaxBacklog: 8, Logger: zap.New(core)})
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	time.Sleep(300 * time.Millisecond) // several trims
	require.Equal(t, int64(5), v.rdb.XLen(ctx, v.e.StreamKey(0)).Val(), "5 entries are within the backlog")
	for i := range 5 {
		_, err := v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "a", OnHand: int64(i + 10)}, engine.Op{})
		require.NoError(t, err)
	}
	testsupport.WaitFor(t, 10*time.Second, "10 entries are not: trimmed", func() bool {
		return v.rdb.XLen(ctx, v.e.StreamKey(0)).Val() == 0
	})
	require.Equal(t, int64(1), p.Stats().Downstream["webhooks"].Releases)
	require.Equal(t, []int{0}, p.Stats().Downstream["webhooks"].Released)

	// Once the group has caught up it holds again.
	require.NoError(t, v.rdb.XGroupSetID(ctx, v.e.StreamKey(0), "webhooks", "$").Err())
	testsupport.WaitFor(t, 10*time.Second, "holds again", func() bool {
		return len(logs.FilterMessageSnippet("holds the stream's trimming again").All()) == 1
	})
	require.Empty(t, p.Stats().Downstream["webhooks"].Released)
	_, err := v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "a", OnHand: 99}, engine.Op{})
	require.NoError(t, err)
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, int64(1), v.rdb.XLen(ctx, v.e.StreamKey(0)).Val(), "the new entry is held for the group")
	require.Len(t, logs.FilterMessageSnippet("no longer holds").All(), 1)
}
