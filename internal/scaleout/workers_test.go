package scaleout

import (
	"context"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/redistest"
	"github.com/shelfline/inventory/internal/testsupport"
)

// TestPersisterWorkersTakeOver runs three `inventory persist` processes on a
// Redis Cluster, each owning two thirds of the partitions so that every
// partition has two workers in its consumer group, while an in-process engine
// takes writes. One worker is frozen while it holds entries read but not
// acknowledged, then SIGKILLed: the others reclaim those entries
// (XAUTOCLAIM after the default 5s idle) and carry on. Afterwards nothing is
// lost (every acknowledged write's event, with its operation id, is in the
// ledger), nothing is duplicated (versions 1..N per item), the deltas sum to
// Redis' state and inventory_items equals Redis.
func TestPersisterWorkersTakeOver(t *testing.T) {
	t.Parallel()
	cl := redistest.Shared(t)
	d := newDeployment(t, cl)
	ctx := context.Background()
	stores, _ := d.storesOnEveryMaster(4)
	tr := newTraffic(d.e, stores, []string{"sofa", "lamp", "rug"}, "take")
	tr.seed(t, 1_000_000)

	own := map[string]string{"worker-a": "0-10", "worker-b": "5-15", "worker-c": "0-4,11-15"}
	procs := map[string]*proc{}
	names := []string{"worker-a", "worker-b", "worker-c"}
	for _, name := range names {
		procs[name] = d.start(name, "persist", "--own", own[name], "--consumer", name)
	}

	stop := make(chan struct{})
	wait := tr.run(8, 50000, stop)
	stopped := false
	stopTraffic := func() {
		if !stopped {
			stopped = true
			close(stop)
			wait()
		}
	}
	defer stopTraffic()
	testsupport.WaitFor(t, 30*time.Second, "traffic persisted by the workers", func() bool {
		return tr.okCount() >= 600 && d.count(`SELECT count(*) FROM inventory_events`) >= 300
	})

	// Freeze worker-a at a moment it holds pending entries, then kill it.
	victim := procs["worker-a"]
	var pendingAtKill int64
	caught := testsupport.Poll(15*time.Second, func() bool {
		_ = victim.cmd.Process.Signal(syscall.SIGSTOP)
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, _, per, err := d.groupState(cctx)
		cancel()
		if err == nil && per["worker-a"] > 0 {
			pendingAtKill = per["worker-a"]
			return true
		}
		_ = victim.cmd.Process.Signal(syscall.SIGCONT)
		return false
	})
	require.True(t, caught, "worker-a caught with entries pending")
	victim.kill()
	killedAt := time.Now()
	okAtKill := tr.okCount()
	t.Logf("worker-a SIGKILLed with %d entries read and not acknowledged", pendingAtKill)

	testsupport.WaitFor(t, 30*time.Second, "traffic after the kill", func() bool { return tr.okCount() >= okAtKill+600 })
	// The others reclaim worker-a's entries while traffic goes on.
	testsupport.WaitFor(t, 30*time.Second, "worker-a's entries reclaimed", func() bool {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, _, per, err := d.groupState(cctx)
		return err == nil && per["worker-a"] == 0
	})
	reclaimedAfter := time.Since(killedAt)
	stopTraffic()
	stoppedAt := time.Now()
	d.waitDrained(30 * time.Second)
	t.Logf("traffic: %s; worker-a's entries reclaimed %s after the kill; drained %s after the traffic stopped",
		tr.summary(), reclaimedAfter.Round(time.Millisecond), time.Since(stoppedAt).Round(time.Millisecond))
	require.Empty(t, tr.unexpected)

	for _, name := range names[1:] {
		require.True(t, procs[name].running(), "%s still running", name)
	}
	require.Empty(t, d.ledgerProblems(tr), "the ledger agrees with Redis")
	missing := d.missingAcked(tr)
	require.Empty(t, missing, "every acknowledged write is in the ledger")
	events := d.count(`SELECT count(*) FROM inventory_events`)
	forks := d.count(`SELECT count(*) FROM drift_findings WHERE kind = 'fork'`)
	require.Zero(t, forks)
	dead := int64(0)
	for p := 0; p < partitions; p++ {
		n, err := d.rdb.XLen(ctx, d.e.KeyBase(p)+"deadletter").Result()
		require.NoError(t, err)
		dead += n
	}
	require.Zero(t, dead, "no dead letters")
	per := perStoreCounts(t, d)
	t.Logf("ledger: %d events for %d acknowledged item versions; events per store: %v", events, tr.ackedCount(), per)
}

func perStoreCounts(t *testing.T, d *deployment) []int64 {
	rows, err := d.pool.Query(context.Background(), `SELECT count(*) FROM inventory_events GROUP BY store_id ORDER BY store_id`)
	require.NoError(t, err)
	var out []int64
	for rows.Next() {
		var n int64
		require.NoError(t, rows.Scan(&n))
		out = append(out, n)
	}
	require.NoError(t, rows.Err())
	sort.Slice(out, func(i, j int) bool { return out[i] > out[j] })
	return out
}
