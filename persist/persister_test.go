package persist_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

var (
	testStores = []string{"s1", "s2", "s3", "store-4"}
	testSKUs   = []string{"sofa", "chair", "lamp", "rug", "desk"}
)

func TestPersisterRandomWorkloadLedgerInvariants(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	// Two workers share every partition, as two processes would.
	p1, _ := v.startPersister(t, persist.PersisterConfig{Consumer: "one", BatchSize: 50})
	p2, _ := v.startPersister(t, persist.PersisterConfig{Consumer: "two", BatchSize: 50})
	workload(t, v, 1, 6, 300, testStores, testSKUs)
	testsupport.WaitFor(t, 30*time.Second, "persister to catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
	s1, s2 := p1.Stats(), p2.Stats()
	require.Positive(t, s1.Batches+s2.Batches)
	require.Equal(t, testsupport.Count(t, v.pool, `SELECT count(*) FROM inventory_events`), s1.EventsPersisted+s2.EventsPersisted)
	require.Zero(t, s1.DeadLetters+s2.DeadLetters)
	require.Zero(t, s1.Forks+s2.Forks)
	// Out-of-order batches between the two workers may have left transient
	// gap records; a check run clears them and finds nothing.
	rc, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	rep, err := rc.Reconcile(context.Background(), persist.ModeCheck)
	require.NoError(t, err)
	require.Empty(t, rep.Findings)
	require.Zero(t, rep.Lagging)
	require.Zero(t, testsupport.Count(t, v.pool, `SELECT count(*) FROM ledger_gaps`))
	testsupport.WaitFor(t, 10*time.Second, "lag to read zero", func() bool {
		l := p1.Stats().Lag
		if len(l) != v.e.Partitions() {
			return false
		}
		for _, n := range l {
			if n != 0 {
				return false
			}
		}
		return true
	})
	require.Zero(t, testsupport.Count(t, v.pool, `SELECT count(*) FROM drift_findings`))
	// Everything the ledger has carries its stream id and operation id.
	require.Zero(t, testsupport.Count(t, v.pool, `SELECT count(*) FROM inventory_events WHERE stream_id = '' OR op_id = ''`))
	// RESERVE rows carry the hold's expiry.
	require.Zero(t, testsupport.Count(t, v.pool, `SELECT count(*) FROM inventory_events WHERE (type = 'RESERVE') <> (expires_at IS NOT NULL)`))
	// History newest first.
	evs, err := persist.NewLedger(v.pool).History(context.Background(), "s1", "sofa", 5)
	require.NoError(t, err)
	require.Len(t, evs, 5)
	for i := 1; i < len(evs); i++ {
		require.Equal(t, evs[i-1].Version-1, evs[i].Version)
	}
}

// crashAt makes a hook that fails the first time it sees an event, like a
// process dying at that point.
func crashAt(crashed *atomic.Bool) func(context.Context, int, []engine.Event) error {
	return func(ctx context.Context, p int, evs []engine.Event) error {
		if crashed.CompareAndSwap(false, true) {
			return errors.New("crash")
		}
		return nil
	}
}

func TestPersisterCrashExactlyOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		where func(*persist.PersisterConfig, *atomic.Bool)
	}{
		{"before COMMIT", func(c *persist.PersisterConfig, b *atomic.Bool) { c.BeforeCommit = crashAt(b) }},
		{"between COMMIT and XACK", func(c *persist.PersisterConfig, b *atomic.Bool) { c.AfterCommit = crashAt(b) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newEnv(t, envOpt{partitions: 2})
			workload(t, v, 2, 3, 100, testStores, testSKUs)
			var crashed atomic.Bool
			cfg := persist.PersisterConfig{Consumer: "worker-a", BatchSize: 40}
			tc.where(&cfg, &crashed)
			_, stop := v.startPersister(t, cfg)
			testsupport.WaitFor(t, 10*time.Second, "the crash", crashed.Load)
			err := stop()
			require.ErrorContains(t, err, "crash", "Run returns the injected failure")

			// The same consumer restarts and re-reads its pending entries.
			p2, _ := v.startPersister(t, persist.PersisterConfig{Consumer: "worker-a", BatchSize: 40})
			testsupport.WaitFor(t, 20*time.Second, "catch up after restart", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
			testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
			require.Zero(t, p2.Stats().Claimed, "own pending entries are re-read, not claimed")
			require.Zero(t, testsupport.Count(t, v.pool, `SELECT count(*) FROM drift_findings`), "re-delivery is not a fork")
			testsupport.WaitFor(t, 10*time.Second, "nothing pending", func() bool { return pendingTotal(t, v) == 0 })
		})
	}
}

func pendingTotal(t testing.TB, v *env) int64 {
	var n int64
	for p := 0; p < v.e.Partitions(); p++ {
		ps, err := v.rdb.XPending(context.Background(), v.e.StreamKey(p), "persister").Result()
		require.NoError(t, err)
		n += ps.Count
	}
	return n
}

func TestPersisterReclaimsDeadConsumersEntries(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 2})
	workload(t, v, 3, 2, 80, testStores, testSKUs)
	// A consumer that read entries and died without a trace.
	ctx := context.Background()
	for p := 0; p < 2; p++ {
		require.NoError(t, v.rdb.XGroupCreateMkStream(ctx, v.e.StreamKey(p), "persister", "0").Err())
		_, err := v.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "persister", Consumer: "dead", Streams: []string{v.e.StreamKey(p), ">"}, Count: 30, Block: -1}).Result()
		require.NoError(t, err)
	}
	require.Equal(t, int64(60), pendingTotal(t, v))
	p, _ := v.startPersister(t, persist.PersisterConfig{Consumer: "alive", ClaimIdle: 300 * time.Millisecond, ClaimInterval: 100 * time.Millisecond})
	testsupport.WaitFor(t, 20*time.Second, "catch up with the dead consumer's entries", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
	require.GreaterOrEqual(t, p.Stats().Claimed, int64(60))
	testsupport.WaitFor(t, 10*time.Second, "nothing pending", func() bool { return pendingTotal(t, v) == 0 })
}

func TestPersisterPoisonEntryGoesToDeadLetter(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	_, err := v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "a", OnHand: 5}, engine.Op{})
	require.NoError(t, err)
	bad, err := v.rdb.XAdd(ctx, &redis.XAddArgs{Stream: v.e.StreamKey(0), Values: []any{"s", "s1", "k", "a", "v", "oops"}}).Result()
	require.NoError(t, err)
	_, err = v.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "a", Delta: 3}, engine.Op{})
	require.NoError(t, err)
	p, _ := v.startPersister(t, persist.PersisterConfig{})
	testsupport.WaitFor(t, 10*time.Second, "catch up past the poison entry", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
	require.Equal(t, int64(1), p.Stats().DeadLetters)
	dl, err := v.rdb.XRange(ctx, persist.DeadLetterKey(v.e, 0), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, dl, 1)
	require.Equal(t, bad, dl[0].Values["id"])
	require.Contains(t, dl[0].Values["error"], "not an integer")
	require.Equal(t, "oops", dl[0].Values["f:v"])
	testsupport.WaitFor(t, 5*time.Second, "nothing pending", func() bool { return pendingTotal(t, v) == 0 })
	// The partition keeps flowing.
	_, err = v.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "a", Delta: 1}, engine.Op{})
	require.NoError(t, err)
	testsupport.WaitFor(t, 10*time.Second, "the next event", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
}

// Fewer persisted entries than RetentionCount, all within the window: the
// stream keeps every one (a feed resuming from an early id finds it); past
// the count, the oldest go.
func TestPersisterKeepsEntriesBelowRetentionCount(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	set := func(n int) {
		for i := 0; i < n; i++ {
			_, err := v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "a", OnHand: int64(i + 1)}, engine.Op{})
			require.NoError(t, err)
		}
	}
	set(6)
	_, _ = v.startPersister(t, persist.PersisterConfig{BatchSize: 2, Linger: -1, RetentionCount: 10})
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	// Trims run every TrimInterval: let several pass with every batch
	// acknowledged (a wait for nothing to happen).
	time.Sleep(10 * testsupport.FastPersister(persist.PersisterConfig{}).TrimInterval)
	require.EqualValues(t, 6, v.rdb.XLen(ctx, v.e.StreamKey(0)).Val())
	set(10)
	testsupport.WaitFor(t, 10*time.Second, "trim to the retention count", func() bool {
		return v.rdb.XLen(ctx, v.e.StreamKey(0)).Val() == 10
	})
}

func TestPersisterTrimsBehindPersistedOnly(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	for i := 0; i < 30; i++ {
		_, err := v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "a", OnHand: int64(i + 1)}, engine.Op{})
		require.NoError(t, err)
	}
	// Retain at most 10 persisted entries; batches of 5, so the cut is exact.
	_, stop := v.startPersister(t, persist.PersisterConfig{BatchSize: 5, Linger: -1, RetentionCount: 10})
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.WaitFor(t, 10*time.Second, "trim to the retention count", func() bool {
		return v.rdb.XLen(ctx, v.e.StreamKey(0)).Val() == 10
	})
	require.NoError(t, stop())
	// Unpersisted entries are never trimmed: with the persister stopped, a
	// zero retention window trims only what is acknowledged.
	for i := 0; i < 7; i++ {
		_, err := v.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "a", Delta: 1}, engine.Op{})
		require.NoError(t, err)
	}
	var seen atomic.Int64
	_, stop = v.startPersister(t, persist.PersisterConfig{BatchSize: 1, Linger: -1, RetentionWindow: time.Nanosecond,
		BeforeCommit: func(ctx context.Context, p int, evs []engine.Event) error {
			// Every entry not yet committed is still in the stream.
			n, err := v.rdb.XRange(ctx, v.e.StreamKey(0), evs[0].StreamID, evs[0].StreamID).Result()
			if err != nil || len(n) != 1 {
				return errors.New("an unpersisted entry was trimmed")
			}
			seen.Add(1)
			return nil
		}})
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.WaitFor(t, 10*time.Second, "trim everything persisted", func() bool { return v.rdb.XLen(ctx, v.e.StreamKey(0)).Val() == 0 })
	require.NoError(t, stop())
	require.Equal(t, int64(7), seen.Load())
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
}

func TestPersisterStopAbandonsUncommittedBatch(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		_, err := v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "a", OnHand: int64(i)}, engine.Op{})
		require.NoError(t, err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	var hooked atomic.Bool
	p, err := persist.NewPersister(v.e, v.pool, testsupport.FastPersister(persist.PersisterConfig{Consumer: "w",
		BeforeCommit: func(ctx context.Context, _ int, _ []engine.Event) error {
			// Stop arrives while the batch is in flight, before COMMIT.
			hooked.Store(true)
			cancel()
			<-ctx.Done()
			return nil
		}}))
	require.NoError(t, err)
	require.NoError(t, p.Run(runCtx), "a stop is not an error")
	require.True(t, hooked.Load())
	require.Zero(t, testsupport.Count(t, v.pool, `SELECT count(*) FROM inventory_events`), "the batch was rolled back")
	require.Equal(t, int64(20), pendingTotal(t, v), "and nothing was acknowledged")
	_, _ = v.startPersister(t, persist.PersisterConfig{Consumer: "w"})
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
}
