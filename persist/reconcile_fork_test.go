package persist_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// failover simulates a Redis failover that lost an item's writes after the
// persister wrote them: Redis goes back to the ledger's state at version v.
func (v *env) failover(t *testing.T, store, sku string, to int64) {
	t.Helper()
	ctx := context.Background()
	cur, err := v.e.GetItem(ctx, store, sku)
	require.NoError(t, err)
	var oh, rs int64
	require.NoError(t, v.pool.QueryRow(ctx, `SELECT on_hand, reserved FROM inventory_events WHERE store_id = $1 AND sku = $2 AND version = $3`,
		store, sku, to).Scan(&oh, &rs))
	require.NoError(t, v.e.RestoreItem(ctx, engine.ItemState{Store: store, SKU: sku, OnHand: oh, Reserved: rs, Version: to,
		ReorderPoint: -1, MaxPerCustomer: -1, KeepCustomerUnits: true}, cur.Version))
}

func (v *env) adjust(t *testing.T, store, sku string, delta int64, op string) engine.Item {
	t.Helper()
	r, err := v.e.Adjust(context.Background(), engine.AdjustRequest{Store: store, SKU: sku, Delta: delta}, engine.Op{IdempotencyKey: op})
	require.NoError(t, err)
	return r.Item
}

// drained waits until the persister has read every entry written to the
// streams so far and acknowledged (so written) each one. It compares
// entry ids, not counts: the persister trims persisted entries, so the
// stream's length says nothing about how many were read.
func (v *env) drained(t *testing.T, _ *persist.Persister) {
	t.Helper()
	ctx := context.Background()
	testsupport.WaitFor(t, 10*time.Second, "every entry acknowledged", func() bool {
		for part := 0; part < v.e.Partitions(); part++ {
			info, err := v.rdb.XInfoStream(ctx, v.e.StreamKey(part)).Result()
			require.NoError(t, err)
			groups, err := v.rdb.XInfoGroups(ctx, v.e.StreamKey(part)).Result()
			require.NoError(t, err)
			read := false
			for _, g := range groups {
				if g.Name == "persister" {
					read = g.LastDeliveredID == info.LastGeneratedID
				}
			}
			if !read {
				return false
			}
		}
		return pendingTotal(t, v) == 0
	})
}

// forkedItem makes s1/a with the ledger at version 3 (on_hand 14) and a
// Redis history that diverged after version 1 (on_hand 10): versions 2'
// (-2) and 3' (-1) fork, 4' (+4) runs past the ledger. s1/b is written in
// the same batches and is not forked.
func forkedItem(t *testing.T, v *env) *persist.Persister {
	t.Helper()
	ctx := context.Background()
	_, err := v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "a", OnHand: 10}, engine.Op{IdempotencyKey: "a-set"})
	require.NoError(t, err)
	v.adjust(t, "s1", "a", 5, "a-lost-1")
	v.adjust(t, "s1", "a", -1, "a-lost-2")
	_, err = v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "b", OnHand: 3}, engine.Op{IdempotencyKey: "b-set"})
	require.NoError(t, err)
	p, _ := v.startPersister(t, persist.PersisterConfig{})
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	v.failover(t, "s1", "a", 1)
	for i, d := range []int64{-2, -1, 4} {
		it := v.adjust(t, "s1", "a", d, "a-new-"+string(rune('1'+i)))
		require.Equal(t, int64(2+i), it.Version)
		v.adjust(t, "s1", "b", 1, "b-"+string(rune('1'+i)))
	}
	v.drained(t, p)
	return p
}

func TestPersisterHoldsBackForkedItem(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	p := forkedItem(t, v)
	require.Equal(t, int64(2), p.Stats().Forks)
	require.Equal(t, int64(1), p.Stats().HeldBack)

	// The ledger keeps its history of a untouched; b goes on.
	require.Equal(t, int64(3), testsupport.Count(t, v.pool, `SELECT count(*) FROM inventory_events WHERE sku = 'a'`))
	require.Equal(t, int64(0), testsupport.Count(t, v.pool, `SELECT count(*) FROM inventory_events WHERE sku = 'a' AND op_id LIKE 'a-new-%'`))
	items := testsupport.ItemRows(t, v.pool)
	require.Equal(t, testsupport.ItemRow{OnHand: 14, Version: 3}, items["s1/a"])
	require.Equal(t, testsupport.ItemRow{OnHand: 6, Version: 4}, items["s1/b"])
	require.Zero(t, testsupport.Count(t, v.pool, `SELECT count(*) FROM ledger_gaps`))
	// Each held-back event is recorded whole.
	rows, err := v.pool.Query(ctx, `SELECT kind, version, after->>'op_id', after->>'type', (after->>'delta_on_hand')::bigint,
	(after->>'on_hand')::bigint, after->>'stream_id' <> '', coalesce(before->>'op_id', '')
FROM drift_findings WHERE sku = 'a' AND resolved_run_id IS NULL ORDER BY version`)
	require.NoError(t, err)
	type rec struct {
		kind       string
		version    int64
		op, typ    string
		delta, oh  int64
		hasStream  bool
		ledgerOpID string
	}
	var got []rec
	for rows.Next() {
		var r rec
		require.NoError(t, rows.Scan(&r.kind, &r.version, &r.op, &r.typ, &r.delta, &r.oh, &r.hasStream, &r.ledgerOpID))
		got = append(got, r)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []rec{
		{persist.KindFork, 2, "a-new-1", "ADJUST", -2, 8, true, "a-lost-1"},
		{persist.KindFork, 3, "a-new-2", "ADJUST", -1, 7, true, "a-lost-2"},
		{persist.KindHeldBack, 4, "a-new-3", "ADJUST", 4, 11, true, ""},
	}, got)

	// Re-delivery of the whole stream records nothing twice and inserts
	// nothing.
	acked := p.Stats().EntriesAcked
	n, err := v.rdb.XLen(ctx, v.e.StreamKey(0)).Result()
	require.NoError(t, err)
	require.NoError(t, v.rdb.XGroupSetID(ctx, v.e.StreamKey(0), "persister", "0").Err())
	testsupport.WaitFor(t, 10*time.Second, "the stream read again", func() bool { return p.Stats().EntriesAcked >= acked+n })
	require.Equal(t, int64(3), testsupport.Count(t, v.pool, `SELECT count(*) FROM drift_findings`))
	require.Equal(t, int64(3+4), testsupport.Count(t, v.pool, `SELECT count(*) FROM inventory_events`))
}

func TestReconcileMergesFork(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	p := forkedItem(t, v)
	rc, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)

	// check: reports the fork with the merge a repair would make.
	redisBefore := testsupport.RedisItems(t, v.e)
	rep, err := rc.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"s1/a": persist.KindFork}, kinds(rep))
	f := rep.Findings[0]
	require.Equal(t, "none (check mode)", f.Action)
	require.Equal(t, int64(4), f.Before.Version)
	require.Equal(t, int64(11), f.Before.OnHand)
	// The ledger's 14 plus Redis' change since version 1 (11 - 10).
	require.Equal(t, int64(4), f.After.Version)
	require.Equal(t, int64(15), f.After.OnHand)
	require.Contains(t, f.Detail, "a-new-1, a-new-2, a-new-3")
	require.Equal(t, redisBefore, testsupport.RedisItems(t, v.e))
	require.Equal(t, int64(3), testsupport.Count(t, v.pool, `SELECT count(*) FROM inventory_events WHERE sku = 'a'`))
	require.Equal(t, int64(3), testsupport.Count(t, v.pool, `SELECT count(*) FROM drift_findings WHERE kind IN ('fork', 'held_back') AND run_id IS NULL AND resolved_run_id IS NULL`))

	// repair: one RECONCILE event carries the merge.
	rep, err = rc.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"s1/a": persist.KindFork}, kinds(rep))
	require.Contains(t, rep.Findings[0].Action, "RECONCILE event at version 4")
	var typ, op string
	var delta int64
	require.NoError(t, v.pool.QueryRow(ctx, `SELECT type, op_id, delta_on_hand FROM inventory_events WHERE sku = 'a' AND version = 4`).Scan(&typ, &op, &delta))
	require.Equal(t, "RECONCILE", typ)
	require.Equal(t, "reconcile-fork:"+strconv.FormatInt(rep.RunID, 10), op)
	require.Equal(t, int64(1), delta)
	require.Equal(t, int64(3), testsupport.Count(t, v.pool, `SELECT count(*) FROM drift_findings WHERE resolved_run_id = $1`, rep.RunID))
	it, err := v.e.GetItem(ctx, "s1", "a")
	require.NoError(t, err)
	require.Equal(t, int64(4), it.Version)
	require.Equal(t, int64(15), it.OnHand)
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
	rep, err = rc.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Empty(t, rep.Findings)

	// The item's next write continues the ledger as usual.
	it = v.adjust(t, "s1", "a", -5, "a-after")
	require.Equal(t, int64(5), it.Version)
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
	require.Equal(t, int64(2), p.Stats().Forks)
	require.Equal(t, int64(1), p.Stats().HeldBack)
}

func TestReconcileForkOversoldIsClamped(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	_, err := v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "a", OnHand: 5}, engine.Op{})
	require.NoError(t, err)
	_, err = v.e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "a", Qty: 4}}}, engine.Op{IdempotencyKey: "lost-sale"})
	require.NoError(t, err)
	p, _ := v.startPersister(t, persist.PersisterConfig{})
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	v.failover(t, "s1", "a", 1)
	// The same units sold again in the new history.
	_, err = v.e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "a", Qty: 3}}}, engine.Op{IdempotencyKey: "new-sale"})
	require.NoError(t, err)
	v.drained(t, p)
	require.Equal(t, int64(1), p.Stats().Forks)

	rc, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	rep, err := rc.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	require.Len(t, rep.Findings, 2)
	require.Equal(t, persist.KindFork, rep.Findings[0].Kind)
	o := rep.Findings[1]
	require.Equal(t, persist.KindOversold, o.Kind)
	require.Equal(t, int64(-2), o.Before.OnHand, "1 left in the ledger, 3 sold since")
	require.Equal(t, int64(0), o.After.OnHand)
	require.Contains(t, o.Action, "clamped")
	require.Equal(t, int64(1), testsupport.Count(t, v.pool, `SELECT count(*) FROM drift_findings WHERE kind = 'oversold' AND run_id = $1`, rep.RunID))
	it, err := v.e.GetItem(ctx, "s1", "a")
	require.NoError(t, err)
	require.Equal(t, int64(3), it.Version)
	require.Equal(t, int64(0), it.OnHand)
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
}

func TestReconcileForkRetriedWhenRedisMoves(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	p := forkedItem(t, v)
	rc, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	moved := false
	persist.SetBeforeForkRestore(rc, func(ref engine.ItemRef) {
		if !moved {
			moved = true
			v.adjust(t, ref.Store, ref.SKU, -3, "a-meanwhile")
		}
	})
	rep, err := rc.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	require.True(t, moved)
	require.Empty(t, rep.Findings)
	require.Equal(t, int64(1), rep.Lagging, "the item moved meanwhile: lag, retried by the next run")
	require.Equal(t, int64(3), testsupport.Count(t, v.pool, `SELECT count(*) FROM inventory_events WHERE sku = 'a'`), "rolled back")
	require.Zero(t, testsupport.Count(t, v.pool, `SELECT count(*) FROM drift_findings WHERE resolved_run_id IS NOT NULL`))
	// The write made meanwhile is held back like the rest of the fork.
	v.drained(t, p)
	require.Equal(t, int64(2), p.Stats().HeldBack)

	rep, err = rc.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"s1/a": persist.KindFork}, kinds(rep))
	it, err := v.e.GetItem(ctx, "s1", "a")
	require.NoError(t, err)
	require.Equal(t, int64(4), it.Version)
	require.Equal(t, int64(12), it.OnHand, "the ledger's 14 plus the new history's change since version 1 (10 to 8)")
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
}

func TestReconcileRestoresLostHold(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	_, err := v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "rug", OnHand: 5}, engine.Op{})
	require.NoError(t, err)
	_, err = v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "mat", OnHand: 5}, engine.Op{})
	require.NoError(t, err)
	hold, err := v.e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Customer: "c1",
		Lines: []engine.Line{{SKU: "rug", Qty: 1}, {SKU: "mat", Qty: 2}}, TTL: time.Hour}, engine.Op{})
	require.NoError(t, err)
	_, _ = v.startPersister(t, persist.PersisterConfig{})
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	// The failover loses the hold: the items go back to version 1 and the
	// reservation is gone.
	v.failover(t, "s1", "rug", 1)
	v.failover(t, "s1", "mat", 1)
	require.NoError(t, v.rdb.Del(ctx, v.e.KeyBase(0)+"r:"+hold.Reservation.ID).Err())
	require.NoError(t, v.rdb.ZRem(ctx, v.e.KeyBase(0)+"rexp", hold.Reservation.ID).Err())
	_, err = v.e.GetReservation(ctx, hold.Reservation.ID)
	require.ErrorIs(t, err, engine.ErrNotFound)

	rc, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	rep, err := rc.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"s1/rug": persist.KindRedisBehind, "s1/mat": persist.KindRedisBehind}, kinds(rep))
	actions := map[string]string{}
	for _, f := range rep.Findings {
		actions[f.SKU] = f.Action
	}
	// Put back with the first item restored; the second finds it there.
	require.ElementsMatch(t, []string{"restored Redis from the ledger, with 1 open reservations", "restored Redis from the ledger"},
		[]string{actions["rug"], actions["mat"]})
	got, err := v.e.GetReservation(ctx, hold.Reservation.ID)
	require.NoError(t, err)
	require.Equal(t, engine.StatusHeld, got.Status)
	require.ElementsMatch(t, []engine.Line{{SKU: "rug", Qty: 1}, {SKU: "mat", Qty: 2}}, got.Lines)
	require.EqualValues(t, 1, v.rdb.Exists(ctx, v.e.KeyBase(0)+"r:"+hold.Reservation.ID).Val())
	require.NotEqual(t, redis.Nil, v.rdb.ZScore(ctx, v.e.KeyBase(0)+"rexp", hold.Reservation.ID).Err(), "expires as before")

	// It can be released, which frees the units, and the ledger follows.
	_, err = v.e.Release(ctx, hold.Reservation.ID, engine.Op{})
	require.NoError(t, err)
	for _, sku := range []string{"rug", "mat"} {
		it, err := v.e.GetItem(ctx, "s1", sku)
		require.NoError(t, err)
		require.Zero(t, it.Reserved, sku)
	}
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
}

// Redis rebuilt from the ledger after the fork (its state is then the
// ledger's, not the new history's): the merge still counts the new history
// once, from its recorded events.
func TestReconcileForkAfterRedisRebuilt(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	_, err := v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "a", OnHand: 10}, engine.Op{})
	require.NoError(t, err)
	v.adjust(t, "s1", "a", 5, "a-lost-1")
	v.adjust(t, "s1", "a", -1, "a-lost-2")
	p, _ := v.startPersister(t, persist.PersisterConfig{})
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	v.failover(t, "s1", "a", 1)
	v.adjust(t, "s1", "a", -2, "a-new-1")
	v.drained(t, p)
	require.Equal(t, int64(1), p.Stats().Forks)
	v.failover(t, "s1", "a", 3) // Redis restored from the ledger's state

	rc, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	rep, err := rc.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"s1/a": persist.KindFork}, kinds(rep))
	it, err := v.e.GetItem(ctx, "s1", "a")
	require.NoError(t, err)
	require.Equal(t, int64(4), it.Version)
	require.Equal(t, int64(14-2), it.OnHand, "the ledger's 14 and the sale of 2 made after the failover")
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
}
