package persist_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// badEvent describes an event an older binary could have written, which
// parses but which PostgreSQL refuses for its content.
type badEvent struct {
	reason, customer string
	// timeMS, when not zero, is the event's time in Unix milliseconds.
	timeMS int64
}

// injectEvent appends to the item's partition stream the event of a change
// by delta (fields as the engine's Lua emit writes them) and moves the item
// in Redis to the state after it, as the engine would have. It returns the
// entry's id.
func (v *env) injectEvent(t testing.TB, store, sku string, delta int64, bad badEvent) string {
	t.Helper()
	ctx := context.Background()
	it, err := v.e.GetItem(ctx, store, sku)
	require.NoError(t, err)
	ver, oh := it.Version+1, it.OnHand+delta
	now := v.e.Now().UnixMilli()
	if bad.timeMS != 0 {
		now = bad.timeMS
	}
	n := fmt.Sprintf("%d,%d,0,%d,%d,-1,-1,%d,0", ver, delta, oh, it.Reserved, now)
	id, err := v.rdb.XAdd(ctx, &redis.XAddArgs{Stream: v.e.StreamKey(v.e.Partition(store)), Values: []any{
		"s", store, "k", sku, "t", engine.EventAdjust, "n", n,
		"rid", "", "c", bad.customer, "op", "old-binary-" + strconv.FormatInt(ver, 10), "rsn", bad.reason, "pr", "admin"}}).Result()
	require.NoError(t, err)
	require.NoError(t, v.e.RestoreItem(ctx, engine.ItemState{Store: store, SKU: sku, OnHand: oh, Reserved: it.Reserved,
		Version: ver, ReorderPoint: -1, MaxPerCustomer: -1, KeepCustomerUnits: true}, it.Version))
	return id
}

func (v *env) adjustBy(t testing.TB, store, sku string, delta int64) {
	t.Helper()
	_, err := v.e.Adjust(context.Background(), engine.AdjustRequest{Store: store, SKU: sku, Delta: delta, Reason: "count"}, engine.Op{})
	require.NoError(t, err)
}

func (v *env) setOnHand(t testing.TB, store, sku string, onHand int64) {
	t.Helper()
	_, err := v.e.Set(context.Background(), engine.SetRequest{Store: store, SKU: sku, OnHand: onHand}, engine.Op{})
	require.NoError(t, err)
}

// versions returns the item's versions in the ledger, in order.
func (v *env) versions(t testing.TB, store, sku string) []int64 {
	t.Helper()
	rows, err := v.pool.Query(context.Background(), `SELECT version FROM inventory_events WHERE store_id = $1 AND sku = $2 ORDER BY version`, store, sku)
	require.NoError(t, err)
	var out []int64
	for rows.Next() {
		var n int64
		require.NoError(t, rows.Scan(&n))
		out = append(out, n)
	}
	require.NoError(t, rows.Err())
	return out
}

func kindCounts(rep *persist.Report) map[string]int {
	out := map[string]int{}
	for _, f := range rep.Findings {
		out[f.Kind]++
	}
	return out
}

// An event PostgreSQL refuses for its content is dead-lettered with the
// error, the rest of its batch is written, the partition goes on, and the
// reconciler brings the ledger back to gap-free versions.
func TestPersisterDeadLettersEventsPostgreSQLRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		bad  badEvent
		want string // in the dead letter's error
	}{
		{"NUL in the reason", badEvent{reason: "broken\x00reason"}, "0x00 (SQLSTATE 22021)"},
		{"customer not UTF-8", badEvent{reason: "count", customer: "caf\xe9"}, "SQLSTATE 22021"},
		{"time before the ledger's range", badEvent{reason: "count", timeMS: -300_000_000_000_000}, "SQLSTATE 22008"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newEnv(t, envOpt{partitions: 1})
			ctx := context.Background()
			v.setOnHand(t, "s1", "a", 10)                          // a v1
			v.setOnHand(t, "s1", "b", 5)                           // b v1
			v.adjustBy(t, "s1", "a", 1)                            // a v2
			badA := v.injectEvent(t, "s1", "a", 2, tc.bad)         // a v3: refused, amid a's history
			v.adjustBy(t, "s1", "a", -1)                           // a v4
			v.adjustBy(t, "s1", "b", 1)                            // b v2
			badB := v.injectEvent(t, "s1", "b", 4, tc.bad)         // b v3: refused, b's last
			v.setOnHand(t, "s2", "c", 7)                           // c v1
			p, _ := v.startPersister(t, persist.PersisterConfig{}) // one batch of all of it

			testsupport.WaitFor(t, 20*time.Second, "the refused events dead-lettered", func() bool { return p.Stats().DeadLetters == 2 })
			testsupport.WaitFor(t, 10*time.Second, "the others written", func() bool {
				return len(v.versions(t, "s1", "a")) == 3 && len(v.versions(t, "s1", "b")) == 2 && len(v.versions(t, "s2", "c")) == 1
			})
			require.Equal(t, []int64{1, 2, 4}, v.versions(t, "s1", "a"))
			require.Equal(t, []int64{1, 2}, v.versions(t, "s1", "b"))

			dl, err := v.rdb.XRange(ctx, persist.DeadLetterKey(v.e, 0), "-", "+").Result()
			require.NoError(t, err)
			require.Len(t, dl, 2)
			require.Equal(t, badA, dl[0].Values["id"])
			require.Equal(t, badB, dl[1].Values["id"])
			for _, d := range dl {
				require.Contains(t, d.Values["error"], tc.want)
				require.Equal(t, tc.bad.reason, d.Values["f:rsn"])
			}
			testsupport.WaitFor(t, 10*time.Second, "nothing pending", func() bool { return pendingTotal(t, v) == 0 })
			testsupport.WaitFor(t, 10*time.Second, "the lag to read zero", func() bool {
				st := p.Stats()
				l, ok := st.Lag[0]
				return ok && l == 0 && st.Partitions[0].Lag == 0
			})
			st := p.Stats()
			require.Zero(t, st.WriteErrors, "a refused event is not retried")
			require.False(t, st.Partitions[0].Failing)

			// The partition goes on.
			v.adjustBy(t, "s1", "a", 3) // a v5
			v.adjustBy(t, "s1", "b", 1) // b v4
			testsupport.WaitFor(t, 10*time.Second, "later events written", func() bool {
				return len(v.versions(t, "s1", "a")) == 4 && len(v.versions(t, "s1", "b")) == 3
			})
			require.Equal(t, int64(2), p.Stats().DeadLetters, "each refused event is dead-lettered once")
			require.Equal(t, int64(2), v.rdb.XLen(ctx, persist.DeadLetterKey(v.e, 0)).Val())

			// The dead-lettered versions are gaps the reconciler reports and
			// closes with RECONCILE events.
			rc, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{})
			require.NoError(t, err)
			rep, err := rc.Reconcile(ctx, persist.ModeCheck)
			require.NoError(t, err)
			require.Equal(t, map[string]int{persist.KindLedgerGap: 2}, kindCounts(rep), "%+v", rep.Findings)
			for _, f := range rep.Findings {
				require.Contains(t, f.Detail, "dead-letter")
			}
			rep, err = rc.Reconcile(ctx, persist.ModeRepair)
			require.NoError(t, err)
			require.Equal(t, map[string]int{persist.KindLedgerGap: 2}, kindCounts(rep), "%+v", rep.Findings)
			testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
			rep, err = rc.Reconcile(ctx, persist.ModeCheck)
			require.NoError(t, err)
			require.Empty(t, rep.Findings)
		})
	}
}

// When the refused event is an item's last one, the ledger stays a version
// behind Redis; the reconciler writes the RECONCILE event that catches it up.
func TestReconcileCatchesUpAfterDeadLetteredLastEvent(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	v.setOnHand(t, "s1", "a", 10)
	v.injectEvent(t, "s1", "a", -3, badEvent{reason: "\x00"})
	p, _ := v.startPersister(t, persist.PersisterConfig{})
	testsupport.WaitFor(t, 20*time.Second, "the refused event dead-lettered", func() bool { return p.Stats().DeadLetters == 1 })
	testsupport.WaitFor(t, 10*time.Second, "nothing pending", func() bool { return pendingTotal(t, v) == 0 })
	require.Equal(t, []int64{1}, v.versions(t, "s1", "a"))
	rc, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	rep, err := rc.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	require.Equal(t, map[string]int{persist.KindRedisAhead: 1}, kindCounts(rep), "%+v", rep.Findings)
	require.Contains(t, rep.Findings[0].Detail, "dead-letter")
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
	require.Equal(t, int64(7), testsupport.ItemRows(t, v.pool)["s1/a"].OnHand)
}

// The rebuild of a partition whose stream holds an event PostgreSQL
// refuses writes the others and makes the partition ready; the persister
// dead-letters the refused one afterwards, once.
func TestRebuildSurvivesEventPostgreSQLRefuses(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	v.setOnHand(t, "s1", "a", 10)
	v.setOnHand(t, "s1", "b", 4)
	v.injectEvent(t, "s1", "a", 2, badEvent{reason: "a\x00b"})
	v.adjustBy(t, "s1", "a", 1)
	v.adjustBy(t, "s1", "b", -1)
	// Redis loses the partition's items and its readiness marker while the
	// stream, never persisted, survives.
	iter := v.rdb.Scan(ctx, 0, v.e.KeyBase(0)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if k := iter.Val(); k != v.e.StreamKey(0) {
			require.NoError(t, v.rdb.Del(ctx, k).Err())
		}
	}
	require.NoError(t, iter.Err())
	ready, err := v.e.PartitionReady(ctx, 0)
	require.NoError(t, err)
	require.False(t, ready)

	rb, err := persist.NewRebuilder(v.e, v.pool, persist.RebuilderConfig{Interval: 20 * time.Millisecond})
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rb.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testsupport.WaitFor(t, 20*time.Second, "the partition ready again", func() bool {
		ok, err := v.e.PartitionReady(ctx, 0)
		return err == nil && ok
	})
	require.Equal(t, []int64{1, 2}, v.versions(t, "s1", "b"))
	require.Equal(t, []int64{1, 3}, v.versions(t, "s1", "a"))
	it, err := v.e.GetItem(ctx, "s1", "b")
	require.NoError(t, err)
	require.Equal(t, int64(3), it.OnHand)
	require.Equal(t, int64(2), it.Version)

	// The persister dead-letters the refused entry (once) and writes on.
	p, _ := v.startPersister(t, persist.PersisterConfig{})
	testsupport.WaitFor(t, 20*time.Second, "the refused event dead-lettered", func() bool { return p.Stats().DeadLetters == 1 })
	testsupport.WaitFor(t, 10*time.Second, "nothing pending", func() bool { return pendingTotal(t, v) == 0 })
	v.adjustBy(t, "s1", "b", 2)
	testsupport.WaitFor(t, 10*time.Second, "the next event", func() bool { return len(v.versions(t, "s1", "b")) == 3 })
	require.Equal(t, int64(1), v.rdb.XLen(ctx, persist.DeadLetterKey(v.e, 0)).Val())
	rc, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	_, err = rc.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
}
