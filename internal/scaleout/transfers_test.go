package scaleout

import (
	"context"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/redistest"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// TestTransfersAcrossAFailover: transfers between two stores on different
// masters of a Redis Cluster (so their steps run in different slots, on
// different nodes) while the destination's master is killed and its
// replica takes over. Afterwards the transfer workers have finished every
// step, none twice (one TRANSFER_EXPECTED per transfer line, one return),
// every outbound marker has its record, and once reconciled the ledger
// agrees with Redis.
func TestTransfersAcrossAFailover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cl, err := redistest.StartCluster(sctx, redistest.Options{})
	require.NoError(t, err)
	t.Cleanup(cl.Stop)
	d := newDeployment(t, cl)
	d.startPersister()
	stores, masterOf := d.storesOnEveryMaster(1)
	src, dst := stores[0], stores[1]
	require.NotEqual(t, masterOf[src], masterOf[dst])
	_, err = d.e.Set(ctx, engine.SetRequest{Store: src, SKU: "sofa", OnHand: 1_000_000}, engine.Op{})
	require.NoError(t, err)
	d.waitDrained(20 * time.Second)
	waitReplicas(t, cl)

	wctx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	go func() {
		_ = engine.NewTransferWorker(d.e, engine.TransferWorkerConfig{Interval: 100 * time.Millisecond}).Run(wctx)
	}()

	stop := make(chan struct{})
	var ok atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(int64(g)))
			var ids []string
			for i := 0; i < 20000; i++ { // bounded; stops with the test's signal
				select {
				case <-stop:
					return
				default:
				}
				octx, cancel := context.WithTimeout(ctx, 2*time.Second)
				switch k := rnd.Intn(4); {
				case k < 2 || len(ids) == 0:
					r, err := d.e.CreateTransfer(octx, engine.TransferRequest{From: src, To: dst, Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{})
					if err == nil {
						ids = append(ids, r.Transfer.ID)
						ok.Add(1)
					}
				case k == 2:
					if _, err := d.e.ReceiveTransfer(octx, ids[rnd.Intn(len(ids))], []engine.ReceiveLine{{SKU: "sofa", Received: 1}}, engine.Op{}); err == nil {
						ok.Add(1)
					}
				default:
					if _, err := d.e.CancelTransfer(octx, ids[rnd.Intn(len(ids))], engine.Op{}); err == nil {
						ok.Add(1)
					}
				}
				cancel()
			}
		}(g)
	}
	testsupport.WaitFor(t, 20*time.Second, "transfers before the kill", func() bool { return ok.Load() >= 200 })
	slot, err := d.rdb.ClusterKeySlot(ctx, d.e.StreamKey(d.e.Partition(dst))).Result()
	require.NoError(t, err)
	killed, err := cl.KillMaster(ctx, int(slot))
	require.NoError(t, err)
	fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
	defer fcancel()
	_, err = cl.WaitFailover(fctx, killed)
	require.NoError(t, err)
	at := ok.Load()
	testsupport.WaitFor(t, 30*time.Second, "transfers after the failover", func() bool { return ok.Load() >= at+200 })
	close(stop)
	wg.Wait()

	testsupport.WaitFor(t, 30*time.Second, "every pending transfer step finished", func() bool {
		pending, _, err := d.e.PendingTransferSteps(ctx)
		if err != nil {
			return false
		}
		for _, n := range pending {
			if n > 0 {
				return false
			}
		}
		return true
	})
	stopWorker()
	d.waitDrained(30 * time.Second)
	rec, err := persist.NewReconciler(d.e, d.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	repair, err := rec.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	t.Logf("killed master %s (destination %s); %d successful transfer calls; repair: %s", killed.Addr, dst, ok.Load(), findingsSummary(repair))

	// no step twice, whatever the failover lost
	for _, q := range []string{
		`SELECT count(*) FROM (SELECT transfer_id, sku FROM inventory_events WHERE type = 'TRANSFER_EXPECTED' GROUP BY 1, 2 HAVING count(*) > 1) d`,
		`SELECT count(*) FROM (SELECT transfer_id, sku FROM inventory_events WHERE type = 'TRANSFER_OUT' GROUP BY 1, 2 HAVING count(*) > 1) d`,
		`SELECT count(*) FROM (SELECT transfer_id, sku FROM inventory_events WHERE type = 'TRANSFER_CANCEL' AND delta_on_hand > 0 GROUP BY 1, 2 HAVING count(*) > 1) d`,
	} {
		require.Zero(t, d.count(q), "a step applied twice: %s", q)
	}
	// every outbound marker the source holds has its record
	var all []engine.Transfer
	cursor := ""
	for i := 0; i < 1000; i++ {
		page, next, err := d.e.ListTransfers(ctx, engine.TransferFilter{Store: src, Cursor: cursor, Limit: 1000})
		require.NoError(t, err)
		all = append(all, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	var markers int64
	for p := 0; p < partitions; p++ {
		n, err := d.rdb.ZCard(ctx, d.e.KeyBase(p)+"ts:"+src).Result()
		require.NoError(t, err)
		markers += n
	}
	require.Equal(t, markers, int64(len(all)), "every transfer from %s is readable at its destination", src)
	// the invariant over the chain, in Redis
	var open int64
	for _, tr := range all {
		if tr.Status == engine.TransferInTransit {
			for _, l := range tr.Lines {
				open += l.Open()
			}
		}
	}
	a, err := d.e.GetItem(ctx, src, "sofa")
	require.NoError(t, err)
	b, err := d.e.GetItem(ctx, dst, "sofa")
	require.NoError(t, err)
	require.Equal(t, open, b.Incoming, "incoming is what is open")
	require.Equal(t, int64(1_000_000), a.OnHand+b.OnHand+open, "on_hand over the chain plus what is open")
}
