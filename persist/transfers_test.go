package persist_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// transferEnv is an env whose engine can be stopped between the two
// halves of a transfer step, as a crash would.
func transferEnv(t *testing.T, crash *atomic.Bool) *env {
	t.Helper()
	rdb := testsupport.RedisClient(t, 64)
	prefix := testsupport.IsolatedPrefix(t, rdb)
	clk := &clock{}
	e, err := engine.New(engine.Config{Client: rdb, Prefix: prefix, Partitions: 4, Clock: clk.Now,
		BetweenTransferSteps: func(string) error {
			if crash.Load() {
				return errors.New("crashed between the steps")
			}
			return nil
		}})
	require.NoError(t, err)
	require.NoError(t, e.Init(context.Background()))
	schema, pool := testsupport.LedgerSchema(t)
	return &env{e: e, rdb: rdb, pool: pool, schema: schema, clock: clk}
}

func (v *env) rebuild(t *testing.T, p int) {
	t.Helper()
	v.deletePartition(t, p)
	rb, err := persist.NewRebuilder(v.e, v.pool, persist.RebuilderConfig{})
	require.NoError(t, err)
	require.NoError(t, rb.RebuildPartition(context.Background(), p))
}

func transferLines(sku string, qty int64) []engine.Line { return []engine.Line{{SKU: sku, Qty: qty}} }

// TestTransfersInTheLedger: the ledger keeps every step's events and each
// transfer's record; a rebuild of either side after a Redis loss restores
// open transfers and incoming and queues again a step whose second half
// never ran; the reconciler finds every settled transfer consistent, and
// reports one whose events do not add up.
func TestTransfersInTheLedger(t *testing.T) {
	t.Parallel()
	var crash atomic.Bool
	v := transferEnv(t, &crash)
	ctx := context.Background()
	src, dst := "s1", "s2"
	require.NotEqual(t, v.e.Partition(src), v.e.Partition(dst))
	_, err := v.e.Set(ctx, engine.SetRequest{Store: src, SKU: "sofa", OnHand: 20}, engine.Op{})
	require.NoError(t, err)
	x := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Millisecond)
	mk := func(from string, qty int64) engine.Transfer {
		r, err := v.e.CreateTransfer(ctx, engine.TransferRequest{From: from, To: dst, Lines: transferLines("sofa", qty), ExpectedAt: &x, Reference: "R"}, engine.Op{})
		require.NoError(t, err)
		return r.Transfer
	}
	open := mk(src, 3)
	partial := mk(src, 4)
	_, err = v.e.ReceiveTransfer(ctx, partial.ID, []engine.ReceiveLine{{SKU: "sofa", Received: 1, Damaged: 1, Missing: 1}}, engine.Op{})
	require.NoError(t, err)
	done := mk(src, 2)
	_, err = v.e.ReceiveTransfer(ctx, done.ID, []engine.ReceiveLine{{SKU: "sofa", Received: 2}}, engine.Op{})
	require.NoError(t, err)
	cancelled := mk(src, 1)
	_, err = v.e.CancelTransfer(ctx, cancelled.ID, engine.Op{})
	require.NoError(t, err)
	supplier := mk("", 5)
	// a transfer stopped after shipping, whose expect step never ran
	crash.Store(true)
	_, err = v.e.CreateTransfer(ctx, engine.TransferRequest{From: src, To: dst, Lines: transferLines("sofa", 2)}, engine.Op{})
	require.Error(t, err)
	crash.Store(false)

	_, _ = v.startPersister(t, persist.PersisterConfig{})
	testsupport.WaitFor(t, 20*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
	var rows int
	require.NoError(t, v.pool.QueryRow(ctx, `SELECT count(*) FROM transfers`).Scan(&rows))
	require.Equal(t, 6, rows)
	var withID int
	require.NoError(t, v.pool.QueryRow(ctx, `SELECT count(*) FROM inventory_events WHERE transfer_id <> ''`).Scan(&withID))
	require.Positive(t, withID)

	items := func() map[string]engine.Item {
		out := map[string]engine.Item{}
		for _, s := range []string{src, dst} {
			it, err := v.e.GetItem(ctx, s, "sofa")
			require.NoError(t, err)
			it.UpdatedAt = time.Time{}
			out[s] = it
		}
		return out
	}
	openTo := func() []engine.Transfer {
		ts, err := v.e.OpenTransfers(ctx, dst)
		require.NoError(t, err)
		return ts
	}
	beforeItems, beforeOpen := items(), openTo()
	require.Len(t, beforeOpen, 3, "open, partial and the supplier's")
	require.Equal(t, int64(3+1+5), beforeItems[dst].Incoming)

	rec, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	rep, err := rec.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Empty(t, rep.Findings)

	// the destination loses its data
	v.rebuild(t, v.e.Partition(dst))
	require.Equal(t, beforeItems, items())
	require.Equal(t, beforeOpen, openTo())
	for _, tr := range []engine.Transfer{open, partial, done, cancelled, supplier} {
		_, err := v.e.GetTransfer(ctx, tr.ID)
		require.NoError(t, err, "every record is back")
	}
	ls, _, err := v.e.ListTransfers(ctx, engine.TransferFilter{Store: dst})
	require.NoError(t, err)
	require.Len(t, ls, 5, "the list is back (the sixth is not expected yet)")

	// the source loses its data, with the pending expect step of the
	// stopped transfer: the rebuild queues it again from the ledger
	v.rebuild(t, v.e.Partition(src))
	require.Equal(t, beforeItems, items())
	v.clock.Advance(3 * time.Second)
	w := engine.NewTransferWorker(v.e, engine.TransferWorkerConfig{})
	require.Equal(t, 1, w.FinishDue(ctx))
	require.Len(t, openTo(), 4, "the stopped transfer is expected now")
	require.Equal(t, int64(3+1+5+2), items()[dst].Incoming)

	// the restored source marker takes a cancel's return
	_, err = v.e.CancelTransfer(ctx, open.ID, engine.Op{})
	require.NoError(t, err)
	it, err := v.e.GetItem(ctx, src, "sofa")
	require.NoError(t, err)
	require.Equal(t, beforeItems[src].OnHand+3, it.OnHand)

	testsupport.WaitFor(t, 20*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
	rep, err = rec.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Empty(t, rep.Findings)

	// a record that does not add up with its events is reported
	_, err = v.pool.Exec(ctx, `UPDATE transfers SET lines = '[["sofa",3,0,0,1]]' WHERE id = $1`, done.ID)
	require.NoError(t, err)
	rep, err = rec.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Len(t, rep.Findings, 1)
	require.Equal(t, persist.KindTransferDrift, rep.Findings[0].Kind)
	require.Contains(t, rep.Findings[0].Detail, done.ID)
}

// TestReconcilerRestoresMissingTransfers: a ready partition that lost a
// transfer's record and marker (as a failover's lost tail would) gets them
// back from the ledger in repair mode, with the unfinished step queued.
func TestReconcilerRestoresMissingTransfers(t *testing.T) {
	t.Parallel()
	var crash atomic.Bool
	v := transferEnv(t, &crash)
	ctx := context.Background()
	_, err := v.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 20}, engine.Op{})
	require.NoError(t, err)
	r, err := v.e.CreateTransfer(ctx, engine.TransferRequest{From: "s1", To: "s2", Lines: transferLines("sofa", 3)}, engine.Op{})
	require.NoError(t, err)
	_, _ = v.startPersister(t, persist.PersisterConfig{})
	testsupport.WaitFor(t, 20*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	pd, ps := v.e.Partition("s2"), v.e.Partition("s1")
	require.NoError(t, v.rdb.Del(ctx, v.e.KeyBase(pd)+"t:"+r.Transfer.ID, v.e.KeyBase(ps)+"to:"+r.Transfer.ID).Err())
	_, err = v.e.GetTransfer(ctx, r.Transfer.ID)
	require.ErrorIs(t, err, engine.ErrNotFound)
	rec, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	rep, err := rec.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Len(t, rep.Findings, 2)
	require.Equal(t, persist.KindTransferMissing, rep.Findings[0].Kind)
	rep, err = rec.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	require.Len(t, rep.Findings, 2)
	got, err := v.e.GetTransfer(ctx, r.Transfer.ID)
	require.NoError(t, err)
	require.Equal(t, r.Transfer.Lines, got.Lines)
	rep, err = rec.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Empty(t, rep.Findings)
	// the restored transfer takes its steps
	_, err = v.e.CancelTransfer(ctx, r.Transfer.ID, engine.Op{})
	require.NoError(t, err)
	it, err := v.e.GetItem(ctx, "s1", "sofa")
	require.NoError(t, err)
	require.Equal(t, int64(20), it.OnHand)
}
