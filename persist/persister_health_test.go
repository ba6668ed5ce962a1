package persist_test

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// unpersisted is what the consumer group holds back from the ledger,
// counted entry by entry: pending plus everything after the last delivered
// id.
func (v *env) unpersisted(t testing.TB, p int) int64 {
	t.Helper()
	ctx := context.Background()
	gs, err := v.rdb.XInfoGroups(ctx, v.e.StreamKey(p)).Result()
	require.NoError(t, err)
	require.Len(t, gs, 1)
	after, err := v.rdb.XRange(ctx, v.e.StreamKey(p), "("+gs[0].LastDeliveredID, "+").Result()
	require.NoError(t, err)
	return gs[0].Pending + int64(len(after))
}

// A persister that cannot reach PostgreSQL reports the partition failing,
// with its error, after FailingAfter, in its stats and to the reconciler's
// check; its lag is the real unpersisted count all along (also when Redis
// cannot tell the group's lag); it all clears once PostgreSQL is back.
func TestPersisterFailingPartitionIsReported(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 2})
	ctx := context.Background()
	u, err := url.Parse(testsupport.DatabaseURL())
	require.NoError(t, err)
	px := newProxy(t, u.Host)
	pool := testsupport.Pool(t, v.schema, testsupport.Via(px.addr()))
	p, _ := testsupport.StartPersister(t, v.e, pool, persist.PersisterConfig{FailingAfter: 300 * time.Millisecond})
	rc, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)

	part := v.e.Partition("s1")
	other := 1 - part
	v.setOnHand(t, "s1", "a", 10)
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	rep, err := rc.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Empty(t, rep.Findings)

	px.cut()
	v.adjustBy(t, "s1", "a", 1)
	testsupport.WaitFor(t, 10*time.Second, "a failed write", func() bool { return p.Stats().WriteErrors > 0 })
	for i := 0; i < 4; i++ {
		v.adjustBy(t, "s1", "a", 1)
	}
	// An entry deleted after the group's last delivered one: Redis no
	// longer knows the group's lag.
	id, err := v.rdb.XAdd(ctx, &redis.XAddArgs{Stream: v.e.StreamKey(part), Values: []any{"junk", "1"}}).Result()
	require.NoError(t, err)
	require.NoError(t, v.rdb.XDel(ctx, v.e.StreamKey(part), id).Err())
	gs, err := v.rdb.XInfoGroups(ctx, v.e.StreamKey(part)).Result()
	require.NoError(t, err)
	require.Equal(t, int64(-1), gs[0].Lag, "Redis cannot tell the lag")
	require.Equal(t, int64(5), v.unpersisted(t, part))

	testsupport.WaitFor(t, 10*time.Second, "the partition failing", func() bool { return p.Stats().Partitions[part].Failing })
	testsupport.WaitFor(t, 10*time.Second, "the lag to count every unpersisted event", func() bool {
		st := p.Stats()
		return st.Lag[part] == 5 && st.Partitions[part].Lag == 5
	})
	st := p.Stats()
	ps := st.Partitions[part]
	require.NotEmpty(t, ps.LastError)
	require.NotNil(t, ps.FailingSince)
	require.Positive(t, ps.Failures)
	require.False(t, st.Partitions[other].Failing, "the idle partition is healthy")
	require.Zero(t, st.Lag[other])

	rep, err = rc.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Len(t, rep.Findings, 1, "%+v", rep.Findings)
	f := rep.Findings[0]
	require.Equal(t, persist.KindPersisterFailing, f.Kind)
	require.NotNil(t, f.Partition)
	require.Equal(t, part, *f.Partition)
	require.Contains(t, f.Detail, "partition "+strconv.Itoa(part))
	require.Contains(t, ps.LastError, "failed to connect")
	require.Contains(t, f.Detail, "failed to connect", "the detail carries the error")

	px.restore()
	testsupport.WaitFor(t, 30*time.Second, "catch up after the outage", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.WaitFor(t, 10*time.Second, "the partition healthy and its lag zero", func() bool {
		st := p.Stats()
		return !st.Partitions[part].Failing && st.Lag[part] == 0 && st.Partitions[part].Lag == 0
	})
	require.Empty(t, p.Stats().Partitions[part].LastError)
	rep, err = rc.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Empty(t, rep.Findings)
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
}
