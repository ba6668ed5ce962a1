package persist_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

func kinds(rep *persist.Report) map[string]string {
	out := map[string]string{}
	for _, f := range rep.Findings {
		out[f.Store+"/"+f.SKU] = f.Kind
	}
	return out
}

func TestReconcileEachDriftCase(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	mpc := int64(5)
	for _, sku := range []string{"a", "b", "c", "d", "e", "f"} {
		req := engine.SetRequest{Store: "s1", SKU: sku, OnHand: 10}
		if sku == "a" {
			req.MaxPerCustomer = &mpc
		}
		_, err := v.e.Set(ctx, req, engine.Op{})
		require.NoError(t, err)
		_, err = v.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: sku, Delta: 5}, engine.Op{})
		require.NoError(t, err)
	}
	_, err := v.e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Customer: "c1", Lines: []engine.Line{{SKU: "a", Qty: 2}}}, engine.Op{})
	require.NoError(t, err)
	_, stop := v.startPersister(t, persist.PersisterConfig{})
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	require.NoError(t, stop())

	// redis_missing: the ledger has an item Redis lost (a SET, then a sale
	// to c1 under a purchase limit).
	_, err = v.pool.Exec(ctx, `INSERT INTO inventory_events (store_id, sku, version, type, delta_on_hand, delta_reserved,
		on_hand, reserved, max_per_customer, customer, op_id, occurred_at, stream_id) VALUES
		('s1', 'h', 1, 'SET', 6, 0, 6, 0, 5, '', 'op-h1', now(), '1-1'),
		('s1', 'h', 2, 'SALE', -2, 0, 4, 0, 5, 'c1', 'op-h2', now(), '1-2')`)
	require.NoError(t, err)
	_, err = v.pool.Exec(ctx, `INSERT INTO inventory_items (store_id, sku, on_hand, reserved, version, max_per_customer, updated_at)
		VALUES ('s1', 'h', 4, 0, 2, 5, now())`)
	require.NoError(t, err)
	// redis_behind: Redis went back to an older version (lost writes).
	require.NoError(t, v.e.RestoreItem(ctx, engine.ItemState{Store: "s1", SKU: "b", OnHand: 10, Version: 1, ReorderPoint: -1, MaxPerCustomer: -1}, -1))
	// redis_ahead: two changes whose events vanished before being persisted.
	before, err := v.rdb.XLen(ctx, v.e.StreamKey(0)).Result()
	require.NoError(t, err)
	_, err = v.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "c", Delta: -3}, engine.Op{})
	require.NoError(t, err)
	_, err = v.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "c", Delta: 7}, engine.Op{})
	require.NoError(t, err)
	// ... and a new item whose creation was lost the same way.
	_, err = v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "g", OnHand: 4}, engine.Op{})
	require.NoError(t, err)
	lost, err := v.rdb.XRange(ctx, v.e.StreamKey(0), "-", "+").Result()
	require.NoError(t, err)
	for _, m := range lost[before:] {
		require.NoError(t, v.rdb.XDel(ctx, v.e.StreamKey(0), m.ID).Err())
	}
	// lag: a change still waiting in the stream.
	_, err = v.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "d", Delta: 1}, engine.Op{})
	require.NoError(t, err)
	// corrupt: same version, different numbers.
	cur, err := v.e.GetItem(ctx, "s1", "e")
	require.NoError(t, err)
	require.NoError(t, v.e.RestoreItem(ctx, engine.ItemState{Store: "s1", SKU: "e", OnHand: 99, Reserved: cur.Reserved, Version: cur.Version,
		ReorderPoint: -1, MaxPerCustomer: -1, UpdatedAt: cur.UpdatedAt}, cur.Version))

	want := map[string]string{
		"s1/h": persist.KindRedisMissing, "s1/b": persist.KindRedisBehind, "s1/c": persist.KindRedisAhead,
		"s1/g": persist.KindRedisAhead, "s1/e": persist.KindCorrupt,
	}
	rc, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{BatchSize: 2})
	require.NoError(t, err)

	// check: reports, records, changes nothing.
	redisBefore := testsupport.RedisItems(t, v.e)
	eventsBefore := testsupport.Count(t, v.pool, `SELECT count(*) FROM inventory_events`)
	rep, err := rc.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Equal(t, want, kinds(rep))
	require.Equal(t, int64(1), rep.Lagging, "d is lag, not drift")
	require.Equal(t, int64(8), rep.ItemsChecked)
	for _, f := range rep.Findings {
		require.Equal(t, "none (check mode)", f.Action)
	}
	require.Equal(t, redisBefore, testsupport.RedisItems(t, v.e))
	require.Equal(t, eventsBefore, testsupport.Count(t, v.pool, `SELECT count(*) FROM inventory_events`))
	require.Equal(t, int64(5), testsupport.Count(t, v.pool, `SELECT count(*) FROM drift_findings WHERE run_id = $1`, rep.RunID))
	require.Equal(t, int64(5), testsupport.Count(t, v.pool, `SELECT findings FROM reconciliation_runs WHERE id = $1 AND finished_at IS NOT NULL AND mode = 'check'`, rep.RunID))

	// repair: fixes each case.
	rep, err = rc.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	require.Equal(t, want, kinds(rep))
	for _, f := range rep.Findings {
		require.NotContains(t, f.Action, "none", "%s/%s %s", f.Store, f.SKU, f.Kind)
		switch f.Kind {
		case persist.KindRedisAhead:
			require.Contains(t, f.Action, "RECONCILE")
		default:
			require.Equal(t, "restored Redis from the ledger", f.Action)
		}
	}
	require.Equal(t, int64(5), testsupport.Count(t, v.pool, `SELECT count(*) FROM drift_findings WHERE run_id = $1 AND before IS NOT NULL`, rep.RunID))
	it, err := v.e.GetItem(ctx, "s1", "h")
	require.NoError(t, err)
	require.Equal(t, int64(2), it.Version)
	require.Equal(t, int64(4), it.OnHand)
	require.Equal(t, "2", v.rdb.HGet(ctx, v.e.KeyBase(0)+"cu:s1:h", "c1").Val(), "customer units come back from the ledger")
	// The purchase limit holds across the restore: c1 has 2 of 5.
	_, err = v.e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Customer: "c1", Lines: []engine.Line{{SKU: "h", Qty: 4}}}, engine.Op{})
	var ple *engine.PurchaseLimitError
	require.ErrorAs(t, err, &ple)
	require.Equal(t, int64(2), ple.Already)
	it, err = v.e.GetItem(ctx, "s1", "b")
	require.NoError(t, err)
	require.Equal(t, int64(2), it.Version)
	require.Equal(t, int64(15), it.OnHand)
	it, err = v.e.GetItem(ctx, "s1", "e")
	require.NoError(t, err)
	require.Equal(t, int64(15), it.OnHand)
	// RECONCILE rows: versions 3 (no change) and 4 (the difference) of c.
	require.Equal(t, int64(2), testsupport.Count(t, v.pool, `SELECT count(*) FROM inventory_events WHERE store_id = 's1' AND sku = 'c' AND type = 'RECONCILE'`))
	require.Equal(t, int64(0), testsupport.Count(t, v.pool, `SELECT delta_on_hand FROM inventory_events WHERE store_id = 's1' AND sku = 'c' AND version = 3`))
	require.Equal(t, int64(4), testsupport.Count(t, v.pool, `SELECT delta_on_hand FROM inventory_events WHERE store_id = 's1' AND sku = 'c' AND version = 4`))

	// The persister drains the lagging event; then everything agrees.
	_, _ = v.startPersister(t, persist.PersisterConfig{})
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
	rep, err = rc.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Empty(t, rep.Findings)
	require.Zero(t, rep.Lagging)
	// The next write continues the versions.
	res, err := v.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "c", Delta: 1}, engine.Op{})
	require.NoError(t, err)
	require.Equal(t, int64(5), res.Item.Version)
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
}

func TestReconcileRebuildsPartitionWithoutMarker(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 2})
	ctx := context.Background()
	_, _ = v.startPersister(t, persist.PersisterConfig{})
	workload(t, v, 11, 2, 40, testStores, testSKUs)
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	p := v.e.Partition("s1")
	before := v.snapshot(t, p)
	v.deletePartition(t, p)
	rc, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	rep, err := rc.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Len(t, rep.Findings, 1)
	require.Equal(t, persist.KindPartitionNotReady, rep.Findings[0].Kind)
	rep, err = rc.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	require.Len(t, rep.Findings, 1)
	require.Equal(t, "rebuilt the partition from the ledger", rep.Findings[0].Action)
	require.Equal(t, before, v.snapshot(t, p))
	rep, err = rc.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Empty(t, rep.Findings)
}

func TestPersisterRecordsForks(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	_, err := v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "a", OnHand: 3}, engine.Op{IdempotencyKey: "mine"})
	require.NoError(t, err)
	// Another history of the same item already holds version 1 (a Redis
	// failover lost an acknowledged write, and version 1 was issued again).
	_, err = v.pool.Exec(ctx, `INSERT INTO inventory_events (store_id, sku, version, type, delta_on_hand, delta_reserved,
		on_hand, reserved, op_id, occurred_at, stream_id) VALUES ('s1', 'a', 1, 'SET', 8, 0, 8, 0, 'other-op', now(), '1-1')`)
	require.NoError(t, err)
	p, _ := v.startPersister(t, persist.PersisterConfig{})
	testsupport.WaitFor(t, 10*time.Second, "the fork to be recorded", func() bool { return p.Stats().Forks == 1 })
	testsupport.WaitFor(t, 10*time.Second, "nothing pending", func() bool { return pendingTotal(t, v) == 0 })
	require.Equal(t, int64(1), testsupport.Count(t, v.pool, `SELECT count(*) FROM drift_findings WHERE kind = 'fork' AND store_id = 's1' AND sku = 'a'
		AND version = 1 AND before->>'op_id' = 'other-op' AND after->>'op_id' = 'mine'`))
	require.Equal(t, "other-op", func() string {
		evs, err := persist.NewLedger(v.pool).History(ctx, "s1", "a", 10)
		require.NoError(t, err)
		require.Len(t, evs, 1)
		return evs[0].IdempotencyKey
	}(), "the stored event is kept")
}

func TestReconcilerRunRecordsPeriodicRuns(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	_, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{Mode: "fix"})
	require.ErrorContains(t, err, "Mode")
	rc, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{Interval: time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rc.Run(ctx) }()
	testsupport.WaitFor(t, 10*time.Second, "a periodic run", func() bool {
		return testsupport.Count(t, v.pool, `SELECT count(*) FROM reconciliation_runs WHERE mode = 'repair' AND finished_at IS NOT NULL`) >= 1
	})
	cancel()
	require.NoError(t, <-done)
}

func TestReconcileFillsLedgerGap(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	_, err := v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "a", OnHand: 10}, engine.Op{})
	require.NoError(t, err)
	for _, d := range []int64{5, -2, 1} {
		_, err = v.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "a", Delta: d}, engine.Op{})
		require.NoError(t, err)
	}
	// Version 3 (the -2) vanishes from the stream before it is persisted;
	// version 4 after it makes it to the ledger.
	msgs, err := v.rdb.XRange(ctx, v.e.StreamKey(0), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, msgs, 4)
	require.NoError(t, v.rdb.XDel(ctx, v.e.StreamKey(0), msgs[2].ID).Err())
	_, _ = v.startPersister(t, persist.PersisterConfig{})
	testsupport.WaitFor(t, 10*time.Second, "version 4 persisted", func() bool { return testsupport.ItemRows(t, v.pool)["s1/a"].Version == 4 })
	require.Equal(t, int64(1), testsupport.Count(t, v.pool, `SELECT count(*) FROM ledger_gaps WHERE from_version <= 3 AND to_version >= 3`))

	rc, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	rep, err := rc.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"s1/a": persist.KindLedgerGap}, kinds(rep))
	require.Equal(t, int64(3), testsupport.Count(t, v.pool, `SELECT count(*) FROM inventory_events`), "check changes nothing")

	rep, err = rc.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	require.Len(t, rep.Findings, 1)
	f := rep.Findings[0]
	require.Equal(t, "wrote 1 RECONCILE events to the ledger", f.Action)
	require.Equal(t, int64(15), f.Before.OnHand)
	require.Equal(t, int64(13), f.After.OnHand)
	require.Equal(t, int64(-2), testsupport.Count(t, v.pool, `SELECT delta_on_hand FROM inventory_events WHERE version = 3 AND type = 'RECONCILE'`))
	require.Zero(t, testsupport.Count(t, v.pool, `SELECT count(*) FROM ledger_gaps`))
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
	rep, err = rc.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Empty(t, rep.Findings)
}

func TestReconcileOneRunAtATime(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	rc, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	// Another process holds the run lock of this ledger and prefix.
	other, err := v.pool.Acquire(ctx)
	require.NoError(t, err)
	var ok bool
	require.NoError(t, other.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended('inventory-reconcile:' || current_schema() || ':' || $1, 0))`, v.e.Prefix()).Scan(&ok))
	require.True(t, ok)
	_, err = rc.Reconcile(ctx, persist.ModeCheck)
	require.ErrorIs(t, err, persist.ErrReconcileInProgress)
	require.NoError(t, other.QueryRow(ctx, `SELECT pg_advisory_unlock(hashtextextended('inventory-reconcile:' || current_schema() || ':' || $1, 0))`, v.e.Prefix()).Scan(&ok))
	require.True(t, ok)
	other.Release()
	_, err = rc.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	_, err = rc.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err, "the lock is released after a run")
}
