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

// customerUnits returns the units each customer has counted against the
// purchase limit of every item of partition p, by "store/sku".
func (v *env) customerUnits(t testing.TB, p int) map[string]map[string]string {
	t.Helper()
	return v.snapshot(t, p).units
}

// countedField returns the raw per-line counted units a reservation holds in
// Redis ("" when it counted none).
func (v *env) countedField(t testing.TB, id string) string {
	t.Helper()
	p, err := v.e.ReservationPartition(id)
	require.NoError(t, err)
	s, _ := v.rdb.HGet(context.Background(), v.e.KeyBase(p)+"r:"+id, "u").Result()
	return s
}

// TestRebuildCustomerUnitsAfterLimitChanges: a purchase limit set after
// holds and sales, cleared and set again, with releases, expiries and a
// commit in between; after Redis loses the partition, the rebuild brings
// back exactly the units Redis counted, and restored holds give back exactly
// what they counted. A reconciler repair does the same for one item.
func TestRebuildCustomerUnitsAfterLimitChanges(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	_, _ = v.startPersister(t, persist.PersisterConfig{})
	setLimit := func(sku string, onHand, limit int64) {
		t.Helper()
		req := engine.SetRequest{Store: "s1", SKU: sku, OnHand: onHand}
		if limit < 0 {
			req.ClearMaxPerCustomer = true
		} else {
			req.MaxPerCustomer = &limit
		}
		_, err := v.e.Set(ctx, req, engine.Op{})
		require.NoError(t, err)
	}
	reserve := func(cust string, ttl time.Duration, lines ...engine.Line) string {
		t.Helper()
		r, err := v.e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Customer: cust, Lines: lines, TTL: ttl}, engine.Op{})
		require.NoError(t, err)
		return r.Reservation.ID
	}
	buy := func(cust string, sku string, q int64) error {
		_, err := v.e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Customer: cust, Lines: []engine.Line{{SKU: sku, Qty: q}}}, engine.Op{})
		return err
	}
	tv := func(q int64) engine.Line { return engine.Line{SKU: "tv", Qty: q} }

	setLimit("tv", 50, -1)
	setLimit("lamp", 20, 5)
	a := reserve("ann", time.Hour, tv(2)) // no limit yet: not counted
	a2 := reserve("ann", time.Hour, tv(3))
	require.NoError(t, buy("bob", "tv", 1))
	setLimit("tv", 50, 4)
	b := reserve("ann", time.Hour, tv(1)) // counted: ann 1
	require.NoError(t, buy("ann", "tv", 1))
	_, err := v.e.Release(ctx, a2, engine.Op{}) // counted nothing, gives nothing back
	require.NoError(t, err)
	reserve("bob", time.Second, tv(2)) // counted, then expires
	v.clock.Advance(2 * time.Second)
	n, err := v.e.ExpireDue(ctx, 0, 100)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	d := reserve("bob", time.Hour, tv(3))
	_, err = v.e.Commit(ctx, d, engine.Op{}) // stays counted: bob 3
	require.NoError(t, err)
	setLimit("tv", 50, -1) // the counts stay
	e := reserve("ann", 30*time.Minute, tv(1))
	h := reserve("ann", time.Hour, tv(1), engine.Line{SKU: "lamp", Qty: 2}) // lamp counted, tv not
	require.NoError(t, buy("ann", "tv", 2))
	setLimit("tv", 50, 4)
	f := reserve("ann", 30*time.Minute, tv(1)) // counted: ann 3

	want := map[string]map[string]string{"s1/tv": {"ann": "3", "bob": "3"}, "s1/lamp": {"ann": "2"}}
	require.Equal(t, want, v.customerUnits(t, 0))
	counted := map[string]string{}
	for _, id := range []string{a, b, e, f, h} {
		counted[id] = v.countedField(t, id)
	}
	require.Equal(t, map[string]string{a: "", b: "[1]", e: "", f: "[1]", h: "[0,2]"}, counted)
	testsupport.WaitFor(t, 20*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	before := v.snapshot(t, 0)

	// Redis loses the partition; the rebuild restores it from the ledger.
	v.deletePartition(t, 0)
	rb, err := persist.NewRebuilder(v.e, v.pool, persist.RebuilderConfig{})
	require.NoError(t, err)
	require.NoError(t, rb.RebuildPartition(ctx, 0))
	require.Equal(t, before, v.snapshot(t, 0))
	require.Equal(t, want, v.customerUnits(t, 0), "customer units as Redis counted them")
	for id, c := range counted {
		require.Equal(t, c, v.countedField(t, id), "counted units of reservation %s", id)
	}

	// The restored holds give back exactly what they counted.
	var ple *engine.PurchaseLimitError
	require.ErrorAs(t, buy("ann", "tv", 2), &ple)
	require.Equal(t, int64(3), ple.Already)
	for _, id := range []string{a, b, h} {
		_, err := v.e.Release(ctx, id, engine.Op{})
		require.NoError(t, err)
	}
	require.Equal(t, map[string]map[string]string{"s1/tv": {"ann": "2", "bob": "3"}}, v.customerUnits(t, 0))
	v.clock.Advance(time.Hour)
	n, err = v.e.ExpireDue(ctx, 0, 100)
	require.NoError(t, err)
	require.Equal(t, 2, n, "e and f expire")
	require.Equal(t, map[string]map[string]string{"s1/tv": {"ann": "1", "bob": "3"}}, v.customerUnits(t, 0))
	require.ErrorAs(t, buy("ann", "tv", 4), &ple)
	require.Equal(t, int64(1), ple.Already)
	require.NoError(t, buy("ann", "tv", 3))
	require.ErrorAs(t, buy("bob", "tv", 2), &ple)
	require.NoError(t, buy("ann", "lamp", 5))

	// The ledger agrees after the releases and expiries too: a second loss
	// and rebuild bring back the same counts.
	testsupport.WaitFor(t, 20*time.Second, "catch up after the rebuild", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	testsupport.CheckLedger(t, v.pool, v.e, persist.LedgerCheck{})
	before = v.snapshot(t, 0)
	require.Equal(t, map[string]map[string]string{"s1/tv": {"ann": "4", "bob": "3"}, "s1/lamp": {"ann": "5"}}, before.units)
	v.deletePartition(t, 0)
	require.NoError(t, rb.RebuildPartition(ctx, 0))
	require.Equal(t, before, v.snapshot(t, 0))

	// A reconciler repair of an item Redis lost brings back its counts, also
	// with the limit cleared.
	setLimit("tv", 50, -1)
	testsupport.WaitFor(t, 20*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	before = v.snapshot(t, 0)
	require.NoError(t, v.e.DeleteItem(ctx, "s1", "tv"))
	rc, err := persist.NewReconciler(v.e, v.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	_, err = rc.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	after := v.snapshot(t, 0)
	require.Equal(t, before.items["s1/tv"].Version, after.items["s1/tv"].Version)
	require.Equal(t, map[string]string{"ann": "4", "bob": "3"}, after.units["s1/tv"])
	require.Equal(t, before.units, after.units)
}
