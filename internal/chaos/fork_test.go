package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// rollBack simulates a failover that lost an item's last write: Redis goes
// back to the item's previous version (from the ledger's event of it),
// while the ledger keeps the lost version.
func (w *world) rollBack(store, sku string) int64 {
	w.t.Helper()
	ctx := context.Background()
	it, err := w.ins.GetItem(ctx, store, sku)
	require.NoError(w.t, err)
	var prev itemState
	require.NoError(w.t, w.dpool.QueryRow(ctx, `SELECT on_hand, reserved, version FROM inventory_events
WHERE store_id = $1 AND sku = $2 AND version = $3`, store, sku, it.Version-1).Scan(&prev.OnHand, &prev.Reserved, &prev.Version))
	require.NoError(w.t, w.ins.RestoreItem(ctx, engine.ItemState{Store: store, SKU: sku, OnHand: prev.OnHand, Reserved: prev.Reserved,
		Version: prev.Version, ReorderPoint: -1, MaxPerCustomer: -1}, it.Version))
	return it.Version
}

// Scenario 11: a failover rolls an item back one version after the ledger
// persisted it, and the item is written again: the persister meets the
// same version with another operation id and records a fork; the
// reconciler finds Redis and the ledger differ at that version and
// restores Redis from the ledger. Traffic flows before and after.
func TestForkAfterFailoverRepaired(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{})
	ctx := context.Background()
	p, _ := w.startPersister(w.dpool, persist.PersisterConfig{})
	cfg := trafficCfg{stores: []string{"s1", "s2"}, skus: []string{"sofa", "lamp"},
		workers: 4, ops: pick(300, 5000), dur: pick(3*time.Second, 30*time.Second)}
	tr := newTraffic(t, w.e, cfg)
	tr.run(ctx)
	tr.checkClients()
	w.waitDrained(30 * time.Second)
	w.checkLedger()

	// The failover: s1/sofa loses its last version in Redis, and is sold.
	lost := w.rollBack("s1", "sofa")
	_, err := w.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 7, Reason: "after failover"}, engine.Op{})
	require.NoError(t, err)
	testsupport.WaitFor(t, 10*time.Second, "the persister records the fork", func() bool { return p.Stats().Forks >= 1 })
	require.Equal(t, int64(1), w.count(`SELECT count(*) FROM drift_findings WHERE kind = 'fork' AND store_id = 's1' AND sku = 'sofa' AND version = $1`, lost))

	rec, err := persist.NewReconciler(w.ins, w.dpool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	rep, err := rec.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Len(t, rep.Findings, 1, "check finds the fork: %+v", rep.Findings)
	require.Contains(t, []string{persist.KindFork, persist.KindCorrupt}, rep.Findings[0].Kind)
	require.Equal(t, "sofa", rep.Findings[0].SKU)
	rep, err = rec.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	require.NotEmpty(t, rep.Findings)
	for _, f := range rep.Findings {
		t.Logf("repair: %s %s/%s: %s", f.Kind, f.Store, f.SKU, f.Action)
	}
	w.waitDrained(10 * time.Second)
	w.checkLedger()
	rep, err = rec.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Empty(t, rep.Findings, "repaired")

	// Traffic continues on the repaired item.
	tr2 := newTrafficFrom(t, w, cfg)
	tr2.run(ctx)
	tr2.checkClients()
	w.waitDrained(30 * time.Second)
	w.checkLedger()
	w.checkKeys(tr2)
	tr2.rec.check(t)
}

// newTrafficFrom makes traffic on items that exist already, starting from
// their current state.
func newTrafficFrom(t testing.TB, w *world, cfg trafficCfg) *traffic {
	t.Helper()
	init := map[string]itemState{}
	for _, s := range cfg.stores {
		for _, k := range cfg.skus {
			it, err := w.e.GetItem(context.Background(), s, k)
			require.NoError(t, err)
			init[itemName(s, k)] = stateOf(it)
		}
	}
	if cfg.attempt == 0 {
		cfg.attempt = time.Second
	}
	if cfg.giveUp == 0 {
		cfg.giveUp = 4 * time.Second
	}
	return &traffic{t: t, e: w.e, cfg: cfg, rec: newRecorder(init), soldAcked: map[string]int64{}, soldUnknown: map[string]int64{}}
}

// A fork followed by more than one write: the ledger keeps the lost
// version, and the new history's later versions start from a state the
// ledger never had. After the reconciler's repair the ledger's deltas sum
// to the state again, Redis equals the ledger, and a check finds nothing.
func TestForkThenTwoWritesRepaired(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{})
	ctx := context.Background()
	p, _ := w.startPersister(w.dpool, persist.PersisterConfig{})
	_, err := w.e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 10}, engine.Op{})
	require.NoError(t, err)
	_, err = w.e.Adjust(ctx, engine.AdjustRequest{Store: "s1", SKU: "sofa", Delta: 5}, engine.Op{})
	require.NoError(t, err)
	w.waitDrained(10 * time.Second)
	w.rollBack("s1", "sofa")
	for _, n := range []int64{3, 1} {
		_, err = w.e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: n}}}, engine.Op{})
		require.NoError(t, err)
	}
	testsupport.WaitFor(t, 10*time.Second, "the persister records the fork", func() bool { return p.Stats().Forks >= 1 })
	rec, err := persist.NewReconciler(w.ins, w.dpool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	rep, err := rec.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	require.NotEmpty(t, rep.Findings)
	w.waitDrained(10 * time.Second)
	sum := w.count(`SELECT sum(delta_on_hand) FROM inventory_events WHERE store_id = 's1' AND sku = 'sofa'`)
	it, err := w.ins.GetItem(ctx, "s1", "sofa")
	require.NoError(t, err)
	t.Logf("after repair (%d findings): Redis on_hand %d v%d, the ledger's deltas sum to %d", len(rep.Findings), it.OnHand, it.Version, sum)
	require.Equal(t, it.OnHand, sum, "the ledger's deltas sum to the state after the reconciler ran")
	w.checkLedger()
	rep, err = rec.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Empty(t, rep.Findings, "repaired")
}
