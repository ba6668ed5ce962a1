package scaleout

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/redistest"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// startPersister runs an in-process persister over every partition on its
// own cluster client (as a separate worker would have), stopped when the
// test ends.
func (d *deployment) startPersister() *persist.Persister {
	d.t.Helper()
	ctx := context.Background()
	c := d.cl.NewClient(&redis.ClusterOptions{PoolSize: 2*partitions + 16, ClusterStateReloadInterval: time.Second})
	e, err := engine.New(engine.Config{Client: c, Prefix: d.prefix, Partitions: partitions})
	require.NoError(d.t, err)
	require.NoError(d.t, e.LoadScripts(ctx))
	p, err := persist.NewPersister(e, d.pool, persist.PersisterConfig{Consumer: "in-process", ClaimIdle: time.Second})
	require.NoError(d.t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(rctx) }()
	d.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				d.t.Errorf("persister: %v", err)
			}
		case <-time.After(15 * time.Second):
			d.t.Errorf("persister did not stop")
		}
		c.Close()
	})
	return p
}

// waitReplicas waits until every master's replica holds what it has.
func waitReplicas(t *testing.T, cl *redistest.Cluster) {
	t.Helper()
	ctx := context.Background()
	ms, err := cl.Masters(ctx)
	require.NoError(t, err)
	for _, m := range ms {
		mc := redis.NewClient(&redis.Options{Addr: m.Addr})
		n, err := mc.Do(ctx, "WAIT", 1, 10000).Int()
		mc.Close()
		require.NoError(t, err)
		require.Equal(t, 1, n, "replica of %s in sync", m.Addr)
	}
}

func findingsSummary(rep *persist.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "run %d (%s): %d items checked, %d lagging, %d findings", rep.RunID, rep.Mode, rep.ItemsChecked, rep.Lagging, len(rep.Findings))
	for i, f := range rep.Findings {
		if i == 10 {
			fmt.Fprintf(&b, "\n  … %d more", len(rep.Findings)-10)
			break
		}
		bj, _ := json.Marshal(f.Before)
		aj, _ := json.Marshal(f.After)
		fmt.Fprintf(&b, "\n  %s %s/%s before %s after %s: %s", f.Kind, f.Store, f.SKU, bj, aj, f.Action)
	}
	return b.String()
}

func kinds(rep *persist.Report) map[string]int {
	out := map[string]int{}
	for _, f := range rep.Findings {
		out[f.Kind]++
	}
	return out
}

// TestFailoverDuringTrafficReconciled kills a master during traffic on a
// private cluster while two `inventory persist` workers drain the streams
// into the ledger (they follow the failover by reloading the slot map). The
// engine answers "unavailable" briefly and recovers by itself. Afterwards a
// reconciler check reports the drift (if the failover lost acknowledged
// writes), a repair fixes it, a second check finds nothing, and the ledger
// agrees with Redis item by item.
func TestFailoverDuringTrafficReconciled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cl, err := redistest.StartCluster(sctx, redistest.Options{})
	require.NoError(t, err)
	t.Cleanup(cl.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node logs:\n%s", cl.Logs(20))
		}
	})
	d := newDeployment(t, cl)
	// Two `inventory persist` workers share every partition.
	for _, name := range []string{"fo-1", "fo-2"} {
		d.start(name, "persist", "--consumer", name)
	}
	stores, masterOf := d.storesOnEveryMaster(4)
	tr := newTraffic(d.e, stores, []string{"sofa", "lamp", "rug"}, "fo")
	tr.seed(t, 1_000_000)
	d.waitDrained(20 * time.Second)
	waitReplicas(t, cl)

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
	testsupport.WaitFor(t, 20*time.Second, "traffic before the kill", func() bool { return tr.okCount() >= 500 })

	victim := stores[0]
	slot, err := d.rdb.ClusterKeySlot(ctx, d.e.StreamKey(d.e.Partition(victim))).Result()
	require.NoError(t, err)
	killedAt := time.Now()
	killed, err := cl.KillMaster(ctx, int(slot))
	require.NoError(t, err)
	fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
	defer fcancel()
	_, err = cl.WaitFailover(fctx, killed)
	require.NoError(t, err)
	failedOver := time.Since(killedAt)

	var probeErr error
	require.True(t, testsupport.Poll(20*time.Second, func() bool {
		for _, s := range stores {
			octx, cancel := context.WithTimeout(ctx, 2*time.Second)
			op := "probe-" + testsupport.RandomHex(6)
			r, err := d.e.Adjust(octx, engine.AdjustRequest{Store: s, SKU: "sofa", Delta: 1, Reason: "probe"}, engine.Op{IdempotencyKey: op})
			cancel()
			if err != nil {
				probeErr = err
				return false
			}
			tr.success(op, r.Item)
		}
		return true
	}), "every store writable within 20s of the failover: %v", probeErr)
	recovered := time.Since(killedAt)
	okAt := tr.okCount()
	testsupport.WaitFor(t, 20*time.Second, "traffic after the recovery", func() bool { return tr.okCount() >= okAt+500 })
	stopTraffic()
	t.Logf("killed master %s (stores %v): failover after %s, every store writable after %s; traffic: %s",
		killed.Addr, storesOn(masterOf, killed.Addr), failedOver.Round(time.Millisecond), recovered.Round(time.Millisecond), tr.summary())
	require.Empty(t, tr.unexpected, "infrastructure errors map to unavailable or the caller's deadline")
	tr.mu.Lock()
	require.Positive(t, tr.unavailable+tr.timedOut, "the traffic met the failover")
	tr.mu.Unlock()

	d.waitDrained(30 * time.Second)
	lostInRedis := 0
	for item, vs := range tr.acked {
		s, k, _ := strings.Cut(item, "/")
		it, err := d.e.GetItem(ctx, s, k)
		require.NoError(t, err)
		for v := range vs {
			if v > it.Version {
				lostInRedis++
			}
		}
	}
	forks := d.count(`SELECT count(*) FROM drift_findings WHERE kind = 'fork'`)
	t.Logf("persisters: %d events in the ledger, %d forks recorded; acknowledged item versions above Redis' version now: %d",
		d.count(`SELECT count(*) FROM inventory_events`), forks, lostInRedis)

	rec, err := persist.NewReconciler(d.e, d.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	check, err := rec.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	t.Logf("check: %s", findingsSummary(check))
	repair, err := rec.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	t.Logf("repair: %s", findingsSummary(repair))
	require.Equal(t, kinds(check), kinds(repair), "repair finds what check found")
	again, err := rec.Reconcile(ctx, persist.ModeCheck)
	require.NoError(t, err)
	require.Empty(t, again.Findings, "nothing left after the repair: %s", findingsSummary(again))

	problems := d.ledgerProblems(tr)
	missing := d.missingAcked(tr)
	t.Logf("after repair: %d ledger problems, %d acknowledged item versions not in the ledger under their operation id", len(problems), len(missing))
	// Acknowledged writes can be missing only on the killed master's stores:
	// lost with it before the persister read them (asynchronous
	// replication), their versions since reused by other writes.
	onKilled := map[string]bool{}
	for _, s := range storesOn(masterOf, killed.Addr) {
		onKilled[s] = true
	}
	for _, m := range missing {
		s, _, _ := strings.Cut(m, "/")
		require.True(t, onKilled[s], "acknowledged write missing from the ledger on a master that did not fail: %s", m)
	}
	if len(missing) > 0 {
		t.Logf("acknowledged writes lost with the master before the persister read them: %v", missing)
	}
	if forks == 0 {
		require.Empty(t, problems, "the ledger agrees with Redis")
		return
	}
	// A fork: the lost tail was persisted and its versions issued again;
	// the repair merged both histories (TestFailoverLostTailForkRepair).
	t.Logf("forks met; ledger problems: %v; missing: %v", problems, missing)
	require.Empty(t, problems, "the ledger agrees with Redis after a fork")
}

func storesOn(masterOf map[string]string, addr string) []string {
	var out []string
	for s, m := range masterOf {
		if m == addr {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// TestFailoverLostTailForkRepair forces the lost acknowledged tail the way
// engine's TestClusterFailoverLostTail does: the master's replica is cut off
// (its replication user disabled), three sales of each of two items are
// acknowledged and persisted to the ledger, then the master is killed. The
// replica takes over at the older versions; new sales (two units each) take
// the lost version numbers under other operation ids: one sale of sofa,
// four of lamp, so lamp's new history runs past the lost one. A hold on rug
// is lost too, and rug is not written again.
//
// What happens: the persister records a fork for every reused version
// (sofa v2; lamp v2..v4) and keeps the ledger's events; lamp's v5 is new
// to the ledger and is inserted on top of the lost history. The reconciler
// finds sofa and rug behind the ledger and restores them in Redis from the
// ledger; it sees nothing wrong with lamp (same version, same numbers). A
// check after the repair finds nothing.
//
// The bugs it shows (asserted with INVENTORY_SCALEOUT_KNOWN_BUGS=1): the
// acknowledged sales made after the failover are in no ledger event (sofa's
// is dropped by the repair: its units come back into stock), and lamp's
// ledger no longer sums to its state (conservation broken for good, no
// finding left to show it but the persister's fork records); rug's unit is
// reserved again but its hold is not restored, so it can be neither
// committed, released nor expired: the unit is held for good.
func TestFailoverLostTailForkRepair(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cl, err := redistest.StartCluster(sctx, redistest.Options{ExtraArgs: []string{
		"--user", "repl", "on", ">repl-secret", "~*", "&*", "+@all",
		"--masteruser", "repl", "--masterauth", "repl-secret",
	}})
	require.NoError(t, err)
	t.Cleanup(cl.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node logs:\n%s", cl.Logs(20))
		}
	})
	d := newDeployment(t, cl)
	p := d.startPersister()
	const store = "s1"
	skus := []string{"sofa", "lamp"}
	tr := newTraffic(d.e, []string{store}, append(skus, "rug"), "tail")
	tr.seed(t, 100)
	d.waitDrained(20 * time.Second)
	waitReplicas(t, cl)

	slot, err := d.rdb.ClusterKeySlot(ctx, d.e.StreamKey(d.e.Partition(store))).Result()
	require.NoError(t, err)
	master, err := cl.MasterForSlot(ctx, int(slot))
	require.NoError(t, err)
	mc := redis.NewClient(&redis.Options{Addr: master.Addr})
	defer mc.Close()
	replicas := func() string {
		info, err := mc.Info(ctx, "replication").Result()
		require.NoError(t, err)
		for _, l := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "connected_slaves:"); ok {
				return v
			}
		}
		return "?"
	}
	require.NoError(t, mc.Do(ctx, "ACL", "SETUSER", "repl", "off").Err())
	require.NoError(t, mc.ClientKillByFilter(ctx, "TYPE", "replica").Err())
	require.True(t, testsupport.Poll(5*time.Second, func() bool { return replicas() == "0" }), "replica disconnected")

	sale := func(sku string, qty int64, op string) engine.Item {
		t.Helper()
		var r engine.CheckoutResult
		var err error
		ok := testsupport.Poll(20*time.Second, func() bool {
			octx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			r, err = d.e.Checkout(octx, engine.CheckoutRequest{Store: store, Lines: []engine.Line{{SKU: sku, Qty: qty}}}, engine.Op{IdempotencyKey: op})
			return err == nil
		})
		require.True(t, ok, "sale %s: %v", op, err)
		tr.success(op, r.Items...)
		return r.Items[0]
	}
	for _, k := range skus {
		for i := 0; i < 3; i++ {
			it := sale(k, 1, fmt.Sprintf("lost-%s-%d", k, i))
			require.Equal(t, int64(2+i), it.Version)
		}
	}
	// And a hold on rug, also acknowledged, persisted and lost.
	hold, err := d.e.Reserve(ctx, engine.ReserveRequest{Store: store, Lines: []engine.Line{{SKU: "rug", Qty: 1}}, TTL: time.Hour},
		engine.Op{IdempotencyKey: "lost-rug-hold"})
	require.NoError(t, err)
	tr.success("lost-rug-hold", hold.Items...)
	testsupport.WaitFor(t, 20*time.Second, "the lost tail persisted", func() bool {
		return d.count(`SELECT count(*) FROM inventory_events WHERE store_id = $1 AND version = 4`, store) == 2 &&
			d.count(`SELECT count(*) FROM inventory_events WHERE store_id = $1 AND sku = 'rug' AND version = 2`, store) == 1
	})
	require.Equal(t, "0", replicas(), "the replica never saw the sales")

	killed, err := cl.KillMaster(ctx, int(slot))
	require.NoError(t, err)
	fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
	defer fcancel()
	_, err = cl.WaitFailover(fctx, killed)
	require.NoError(t, err)
	for _, k := range skus {
		var it engine.Item
		require.True(t, testsupport.Poll(20*time.Second, func() bool {
			it, err = d.e.GetItem(ctx, store, k)
			return err == nil
		}), "readable after the failover: %v", err)
		require.Equal(t, int64(1), it.Version, "%s: the three acknowledged sales are lost with the master", k)
		require.Equal(t, int64(100), it.OnHand)
	}

	// New sales take the lost version numbers under other operation ids.
	after := map[string]int{"sofa": 1, "lamp": 4}
	for _, k := range skus {
		for i := 0; i < after[k]; i++ {
			it := sale(k, 2, fmt.Sprintf("after-%s-%d", k, i))
			require.Equal(t, int64(2+i), it.Version)
		}
	}
	d.waitDrained(30 * time.Second)
	testsupport.WaitFor(t, 10*time.Second, "the persister records the forks", func() bool { return p.Stats().Forks >= 4 })
	rows, err := d.pool.Query(ctx, `SELECT sku, version, before->>'op_id', after->>'op_id' FROM drift_findings
WHERE kind = 'fork' ORDER BY sku, version`)
	require.NoError(t, err)
	var forks []string
	for rows.Next() {
		var sku, kept, incoming string
		var v int64
		require.NoError(t, rows.Scan(&sku, &v, &kept, &incoming))
		forks = append(forks, fmt.Sprintf("%s v%d kept %s, incoming %s", sku, v, kept, incoming))
	}
	require.NoError(t, rows.Err())
	t.Logf("forks recorded: %v", forks)
	require.Equal(t, []string{
		"lamp v2 kept lost-lamp-0, incoming after-lamp-0",
		"lamp v3 kept lost-lamp-1, incoming after-lamp-1",
		"lamp v4 kept lost-lamp-2, incoming after-lamp-2",
		"sofa v2 kept lost-sofa-0, incoming after-sofa-0",
	}, forks, "one fork per reused version, the ledger's event kept")

	// `inventory reconcile --mode check` on the cluster reports the drift
	// (exit status 3) and changes nothing.
	binCheck := func() (int, persist.Report) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		cmd := d.command(cctx, "reconcile", "--mode", "check")
		var stderr lockedBuffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err, "inventory reconcile: %s", stderr.String())
		}
		var rep persist.Report
		require.NoError(t, json.Unmarshal(out, &rep), "report: %s\n%s", out, stderr.String())
		return code, rep
	}
	code, check := binCheck()
	t.Logf("inventory reconcile --mode check: exit status %d; %s", code, findingsSummary(&check))
	require.Equal(t, 3, code, "drift found")
	require.Equal(t, map[string]int{persist.KindFork: 2, persist.KindRedisBehind: 1}, kinds(&check), "sofa and lamp forked, rug behind the ledger")

	rec, err := persist.NewReconciler(d.e, d.pool, persist.ReconcilerConfig{})
	require.NoError(t, err)
	repair, err := rec.Reconcile(ctx, persist.ModeRepair)
	require.NoError(t, err)
	t.Logf("repair: %s", findingsSummary(repair))
	require.Equal(t, kinds(&check), kinds(repair))
	code, again := binCheck()
	require.Equal(t, 0, code)
	require.Empty(t, again.Findings, "a check after the repair finds nothing: %s", findingsSummary(&again))

	state := map[string]engine.Item{}
	for _, k := range skus {
		it, err := d.e.GetItem(ctx, store, k)
		require.NoError(t, err)
		state[k] = it
		var sum int64
		require.NoError(t, d.pool.QueryRow(ctx, `SELECT coalesce(sum(delta_on_hand), 0) FROM inventory_events WHERE store_id = $1 AND sku = $2`, store, k).Scan(&sum))
		t.Logf("%s after repair: Redis v%d on_hand %d; the ledger's deltas sum to %d; every acknowledged sale counted would leave %d",
			k, it.Version, it.OnHand, sum, 100-3-2*int64(after[k]))
	}
	// sofa: both histories merged by a RECONCILE event at version 5. Redis
	// and the ledger agree.
	require.Equal(t, int64(5), state["sofa"].Version)
	require.Equal(t, int64(95), state["sofa"].OnHand, "sofa: the lost tail and the sale after the failover both counted")
	sofa := newTraffic(d.e, []string{store}, []string{"sofa"}, "")
	require.Empty(t, d.ledgerProblems(sofa), "sofa: Redis and the ledger agree after the repair")
	// lamp: Redis ran past the lost tail; merged the same way.
	require.Equal(t, int64(5), state["lamp"].Version)
	require.Equal(t, int64(100-3-8), state["lamp"].OnHand)
	// rug: the lost hold's unit is reserved again in Redis, from the ledger.
	// Is the hold itself back, so that it can be committed, released or
	// expire?
	rug, err := d.e.GetItem(ctx, store, "rug")
	require.NoError(t, err)
	require.Equal(t, int64(2), rug.Version)
	require.Equal(t, int64(1), rug.Reserved, "rug restored with the lost hold's unit reserved")
	_, holdErr := d.e.GetReservation(ctx, hold.Reservation.ID)
	_, relErr := d.e.Release(ctx, hold.Reservation.ID, engine.Op{IdempotencyKey: "release-lost-hold"})
	rug, err = d.e.GetItem(ctx, store, "rug")
	require.NoError(t, err)
	t.Logf("rug after repair: reserved %d; the restored unit's hold %s: read %v, release %v", rug.Reserved, hold.Reservation.ID, holdErr, relErr)
	d.waitDrained(20 * time.Second)
	testsupport.WaitFor(t, 10*time.Second, "the release persisted", func() bool {
		return d.count(`SELECT version FROM inventory_items WHERE store_id = $1 AND sku = 'rug'`, store) == rug.Version
	})

	problems := d.ledgerProblems(tr)
	missing := d.missingAcked(tr)
	t.Logf("after repair: ledger problems %v; acknowledged writes not in the ledger: %v", problems, missing)
	{
		assert.NoError(t, holdErr, "the hold whose unit the repair reserved again exists")
		assert.NoError(t, relErr, "and can be released")
		assert.Zero(t, rug.Reserved, "releasing it frees the unit")
		assert.Empty(t, problems, "lamp: the ledger's deltas sum to Redis' state after the repair")
		assert.Empty(t, missing, "every acknowledged sale, before and after the failover, is in the ledger")
		for _, k := range skus {
			assert.Equal(t, 100-3-2*int64(after[k]), state[k].OnHand, "%s: every acknowledged sale counted in the stock", k)
		}
	}
}
