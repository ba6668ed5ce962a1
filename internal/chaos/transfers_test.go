package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// Transfers under faults (docs/design.md §20): callers die between the two
// halves of a step, replies are lost, Redis restarts empty. Afterwards the
// transfer workers finish every step exactly once, DESIGN §11's invariant
// holds over the chain, and the ledger's sums are exact.

const (
	chainFrom, chainTo = "wh", "s2"
	chainStart         = 100000
)

// childTransfers runs transfer traffic from CHAOS_T_WORKERS goroutines:
// creates, receipts and cancels between wh and s2. Once CHAOS_T_OK steps
// have gone through, every caller that reaches the point between the two
// halves of a step stops there for good; when all have stopped it prints
// STUCK and waits to be SIGKILLed.
func childTransfers(ctx context.Context) error {
	parts, _ := strconv.Atoi(os.Getenv("CHAOS_PARTS"))
	workers, _ := strconv.Atoi(os.Getenv("CHAOS_T_WORKERS"))
	okSteps, _ := strconv.Atoi(os.Getenv("CHAOS_T_OK"))
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("CHAOS_REDIS"), PoolSize: 64})
	var passed, stuck atomic.Int64
	var once sync.Once
	e, err := engine.New(engine.Config{Client: rdb, Prefix: os.Getenv("CHAOS_PREFIX"), Partitions: parts,
		BetweenTransferSteps: func(string) error {
			if passed.Add(1) <= int64(okSteps) {
				return nil
			}
			if stuck.Add(1) == int64(workers) {
				once.Do(func() { fmt.Println("STUCK") })
			}
			select {} // killed here, between the halves
		}})
	if err != nil {
		return err
	}
	fmt.Println("READY")
	var wg sync.WaitGroup
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			transferTraffic(ctx, e, rand.New(rand.NewSource(int64(g))), 1<<30)
		}(g)
	}
	wg.Wait()
	return nil
}

// transferTraffic runs up to n random transfer operations (creates from wh
// or from a supplier, receipts of random parts, cancels) until ctx ends.
// Errors are expected (conflicts, faults) and ignored: the checks look at
// the state afterwards.
func transferTraffic(ctx context.Context, e *engine.Engine, rnd *rand.Rand, n int) {
	var ids []string
	for i := 0; i < n && ctx.Err() == nil; i++ {
		switch k := rnd.Intn(6); {
		case k < 3 || len(ids) == 0:
			from := chainFrom
			if k == 0 {
				from = "" // a supplier's delivery
			}
			r, err := e.CreateTransfer(ctx, engine.TransferRequest{From: from, To: chainTo,
				Lines: []engine.Line{{SKU: "sofa", Qty: int64(1 + rnd.Intn(3))}}}, engine.Op{})
			if err == nil {
				ids = append(ids, r.Transfer.ID)
			}
		case k < 5:
			l := engine.ReceiveLine{SKU: "sofa", Received: 1}
			if rnd.Intn(4) == 0 {
				l = engine.ReceiveLine{SKU: "sofa", Damaged: 1}
			} else if rnd.Intn(4) == 0 {
				l = engine.ReceiveLine{SKU: "sofa", Missing: 1}
			}
			_, _ = e.ReceiveTransfer(ctx, ids[rnd.Intn(len(ids))], []engine.ReceiveLine{l}, engine.Op{})
		default:
			_, _ = e.CancelTransfer(ctx, ids[rnd.Intn(len(ids))], engine.Op{})
		}
	}
}

// settleTransfers runs a transfer worker until no step is pending.
func (w *world) settleTransfers(d time.Duration) {
	w.t.Helper()
	stop := background(w.t, "transfer worker", engine.NewTransferWorker(w.ins, engine.TransferWorkerConfig{Interval: 50 * time.Millisecond}).Run)
	testsupport.WaitFor(w.t, d, "every pending transfer step finished", func() bool {
		pending, _, err := w.ins.PendingTransferSteps(context.Background())
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
	require.NoError(w.t, stop())
}

// checkChain checks DESIGN §11's invariant in Redis: on_hand at both
// locations plus the open units of in-transit transfers from wh equals the
// start less the missing units of transfers from wh; incoming is what is
// open; every outbound marker has its record (every shipped transfer was
// expected, once).
func (w *world) checkChain() {
	w.t.Helper()
	w.checkChainFrom(chainStart)
}

// checkChainFrom is checkChain where the chain held start units of sofa
// before any transfer, sales included.
func (w *world) checkChainFrom(start int64) {
	w.t.Helper()
	ctx := context.Background()
	var all []engine.Transfer
	cursor := ""
	for {
		page, next, err := w.ins.ListTransfers(ctx, engine.TransferFilter{Cursor: cursor, Limit: 1000})
		require.NoError(w.t, err)
		all = append(all, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	var openFromWH, openAll, missingWH, arrivedSupplier int64
	for _, tr := range all {
		for _, l := range tr.Lines {
			open := int64(0)
			if tr.Status == engine.TransferInTransit {
				open = l.Open()
			}
			openAll += open
			if tr.From != nil {
				openFromWH += open
				missingWH += l.Missing
			} else {
				arrivedSupplier += l.Received + l.Damaged
			}
		}
	}
	// every outbound marker has its record
	markers := 0
	iter := w.direct.Scan(ctx, 0, w.prefix+":*:to:*", 1000).Iterator()
	for iter.Next(ctx) {
		markers++
	}
	require.NoError(w.t, iter.Err())
	fromWH := 0
	for _, tr := range all {
		if tr.From != nil {
			fromWH++
		}
	}
	if markers != fromWH {
		recs := 0
		iter := w.direct.Scan(ctx, 0, w.prefix+":*:t:*", 1000).Iterator()
		for iter.Next(ctx) {
			recs++
		}
		pend := 0
		iter = w.direct.Scan(ctx, 0, w.prefix+":*:tpend", 1000).Iterator()
		for iter.Next(ctx) {
			n, _ := w.direct.ZCard(ctx, iter.Val()).Result()
			pend += int(n)
		}
		w.t.Logf("records in Redis %d, listed %d, outbound markers %d, pending steps %d", recs, len(all), markers, pend)
		listed := map[string]bool{}
		for _, tr := range all {
			listed[tr.ID] = true
		}
		iter = w.direct.Scan(ctx, 0, w.prefix+":*:to:*", 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			id := k[strings.LastIndex(k, ":")+1:]
			if listed[id] {
				continue
			}
			h, _ := w.direct.HGetAll(ctx, k).Result()
			w.t.Logf("marker without a record: %s %v", k, h)
			if w.dpool != nil {
				rows, err := w.dpool.Query(ctx, `SELECT store_id, type, version, delta_on_hand, delta_incoming, principal, op_id FROM inventory_events WHERE transfer_id = $1 ORDER BY id`, id)
				if err == nil {
					for rows.Next() {
						var st, ty, pr, op string
						var v, dh, di int64
						_ = rows.Scan(&st, &ty, &v, &dh, &di, &pr, &op)
						w.t.Logf("  event %s %s v%d oh%+d inc%+d %s %s", st, ty, v, dh, di, pr, op)
					}
					rows.Close()
				}
				var status, src string
				_ = w.dpool.QueryRow(ctx, `SELECT coalesce(status, ''), src_state FROM transfers WHERE id = $1`, id).Scan(&status, &src)
				w.t.Logf("  ledger: status %q src %q", status, src)
			}
		}
	}
	require.Equal(w.t, markers, fromWH, "every shipped transfer was expected at its destination")
	wh, err := w.ins.GetItem(ctx, chainFrom, "sofa")
	require.NoError(w.t, err)
	shop, err := w.ins.GetItem(ctx, chainTo, "sofa")
	require.NoError(w.t, err)
	require.Equal(w.t, openAll, shop.Incoming, "incoming is what is open in transit")
	require.Equal(w.t, start-missingWH+arrivedSupplier, wh.OnHand+shop.OnHand+openFromWH,
		"on_hand over the chain plus open units: %d transfers, %d missing from wh, %d arrived from suppliers", len(all), missingWH, arrivedSupplier)
	w.t.Logf("%d transfers, %d open units, %d missing", len(all), openAll, missingWH)
}

// checkTransferLedger waits for the ledger, checks its invariants, that
// each transfer's steps are in it once (one TRANSFER_EXPECTED per line,
// TRANSFER_OUT and the source's TRANSFER_CANCEL at most once per line) and
// that the reconciler finds nothing.
func (w *world) checkTransferLedger() {
	w.t.Helper()
	w.waitDrained(pick(30*time.Second, 90*time.Second))
	w.checkLedger()
	for _, q := range []string{
		`SELECT count(*) FROM (SELECT transfer_id, store_id, sku FROM inventory_events WHERE type = 'TRANSFER_EXPECTED' GROUP BY 1, 2, 3 HAVING count(*) > 1) d`,
		`SELECT count(*) FROM (SELECT transfer_id, store_id, sku FROM inventory_events WHERE type = 'TRANSFER_OUT' GROUP BY 1, 2, 3 HAVING count(*) > 1) d`,
		`SELECT count(*) FROM (SELECT transfer_id, store_id, sku FROM inventory_events WHERE type = 'TRANSFER_CANCEL' AND delta_on_hand > 0 GROUP BY 1, 2, 3 HAVING count(*) > 1) d`,
	} {
		require.Zero(w.t, w.count(q), "a step applied twice: %s", q)
	}
	rec, err := persist.NewReconciler(w.ins, w.dpool, persist.ReconcilerConfig{})
	require.NoError(w.t, err)
	rep, err := rec.Reconcile(context.Background(), persist.ModeCheck)
	require.NoError(w.t, err)
	require.Empty(w.t, rep.Findings)
}

// Scenario 13: processes running transfers are SIGKILLed between the two
// halves of their steps (ship then expect, cancel then return), round
// after round; the transfer worker finishes every step once.
func TestTransfersKilledBetweenSteps(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{})
	ctx := context.Background()
	_, err := w.ins.Set(ctx, engine.SetRequest{Store: chainFrom, SKU: "sofa", OnHand: chainStart}, engine.Op{})
	require.NoError(t, err)
	_, _ = w.startPersister(w.dpool, persist.PersisterConfig{})
	const workers = 6
	for r := 0; r < pick(2, 6); r++ {
		c := startChild(t, "transfers", "CHAOS_REDIS="+w.redis.Addr(), "CHAOS_PREFIX="+w.prefix,
			"CHAOS_PARTS="+strconv.Itoa(w.parts), "CHAOS_T_WORKERS="+strconv.Itoa(workers), "CHAOS_T_OK="+strconv.Itoa(pick(60, 600)))
		c.expect("STUCK", 60*time.Second)
		c.kill()
		pending, _, err := w.ins.PendingTransferSteps(ctx)
		require.NoError(t, err)
		var n int64
		for _, x := range pending {
			n += x
		}
		require.GreaterOrEqual(t, n, int64(1), "round %d left steps undone", r)
		w.settleTransfers(30 * time.Second)
		w.checkChain()
	}
	w.checkTransferLedger()
}

// Scenario 14: transfer traffic while replies are lost (the Redis proxy
// swallows replies or cuts connections as they come back), then Redis
// restarts empty and the rebuild restores transfers and incoming from the
// ledger, then more traffic: the workers finish every step once, and the
// chain's invariant and the ledger hold.
func TestTransfersUnderFaults(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{client: lossyClient, engine: func(c *engine.Config) { c.GroupTimeout = time.Second }})
	ctx := context.Background()
	_, err := w.ins.Set(ctx, engine.SetRequest{Store: chainFrom, SKU: "sofa", OnHand: chainStart}, engine.Op{})
	require.NoError(t, err)
	_, _ = w.startPersister(w.dpool, persist.PersisterConfig{})
	traffic := func(seed int64) {
		tctx, cancel := context.WithTimeout(ctx, pick(5*time.Second, 60*time.Second))
		defer cancel()
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(g int64) {
				defer wg.Done()
				transferTraffic(tctx, w.e, rand.New(rand.NewSource(seed+g)), pick(300, 20000))
			}(int64(g))
		}
		wg.Wait()
	}
	stop := background(t, "fault loop", func(ctx context.Context) error {
		rng := rand.New(rand.NewSource(1))
		for i := 0; i < 10000 && ctx.Err() == nil; i++ { // bounded; stops with the traffic
			sleepCtx(ctx, time.Duration(200+rng.Intn(300))*time.Millisecond)
			if rng.Intn(2) == 0 {
				w.rproxy.Add("lost", "timeout", "downstream", `{"timeout":0}`)
			} else {
				w.rproxy.Add("lost", "reset_peer", "downstream", `{"timeout":0}`)
			}
			sleepCtx(ctx, time.Duration(100+rng.Intn(300))*time.Millisecond)
			w.rproxy.Remove("lost")
		}
		return nil
	})
	traffic(100)
	require.NoError(t, stop())
	w.settleTransfers(30 * time.Second)
	w.checkChain()

	// Redis loses everything once the ledger has it all; the rebuild
	// restores the transfers and the stopped steps.
	w.waitDrained(30 * time.Second)
	w.restartRedis()
	rb, err := persist.NewRebuilder(w.ins, w.dpool, persist.RebuilderConfig{Interval: 100 * time.Millisecond})
	require.NoError(t, err)
	stopRB := background(t, "rebuilder", rb.Run)
	testsupport.WaitFor(t, 30*time.Second, "every partition rebuilt", func() bool {
		for p := 0; p < w.parts; p++ {
			if ok, err := w.ins.PartitionReady(ctx, p); err != nil || !ok {
				return false
			}
		}
		return true
	})
	require.NoError(t, stopRB())
	w.checkChain()
	traffic(200)
	w.settleTransfers(30 * time.Second)
	w.checkChain()
	w.checkTransferLedger()
}

// Scenario 15: Redis restarts empty in the middle of transfer traffic
// (transfers created, received and cancelled, sales at both ends, a
// transfer worker running), the rebuild restores every partition from the
// ledger while traffic goes on, then more traffic. The ledger is a prefix of
// each partition's history, so a step may be in it while the step of the
// other partition that ran before it is not: the rebuild makes that one up
// (docs/design.md §20.6), and a persister batch read from the old Redis
// must not bring the original of a step made up into the ledger after the
// rebuild read it (§7.3). Afterwards DESIGN §11's invariant holds exactly
// (with the sales the ledger has), no step is in the ledger twice, its
// versions have no gap, and the reconciler finds nothing.
func TestTransfersRedisLostMidTraffic(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{client: failFastClient})
	ctx := context.Background()
	_, err := w.ins.Set(ctx, engine.SetRequest{Store: chainFrom, SKU: "sofa", OnHand: chainStart}, engine.Op{})
	require.NoError(t, err)
	_, err = w.ins.Set(ctx, engine.SetRequest{Store: chainTo, SKU: "sofa", OnHand: 500}, engine.Op{})
	require.NoError(t, err)
	_, _ = w.startPersister(w.dpool, persist.PersisterConfig{})
	stopWorker := background(t, "transfer worker",
		engine.NewTransferWorker(w.e, engine.TransferWorkerConfig{Interval: 50 * time.Millisecond}).Run)

	var sold atomic.Int64
	tctx, cancel := context.WithTimeout(ctx, pick(10*time.Second, 60*time.Second))
	defer cancel()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int64) {
			defer wg.Done()
			transferTraffic(tctx, w.e, rand.New(rand.NewSource(300+g)), pick(3000, 40000))
		}(int64(g))
	}
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(int64(400 + g)))
			for i := 0; i < pick(3000, 40000) && tctx.Err() == nil; i++ {
				store := chainFrom
				if rnd.Intn(2) == 0 {
					store = chainTo
				}
				if _, err := w.e.Checkout(tctx, engine.CheckoutRequest{Store: store,
					Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{}); err == nil {
					sold.Add(1)
				} else if errors.Is(err, engine.ErrPartitionNotReady) {
					sleepCtx(tctx, 20*time.Millisecond) // the rebuild is on its way
				}
			}
		}(g)
	}

	time.Sleep(pick(1500*time.Millisecond, 10*time.Second)) // traffic before the loss
	w.restartRedis()
	// No waiting for the persister's batches read from the old Redis: the
	// rebuild starts at once, and the fence (docs/design.md §7.3) keeps
	// any of them from committing after it read the ledger.
	rb, err := persist.NewRebuilder(w.ins, w.dpool, persist.RebuilderConfig{Interval: 100 * time.Millisecond})
	require.NoError(t, err)
	stopRB := background(t, "rebuilder", rb.Run)
	testsupport.WaitFor(t, 30*time.Second, "every partition rebuilt", func() bool {
		for p := 0; p < w.parts; p++ {
			if ok, err := w.ins.PartitionReady(ctx, p); err != nil || !ok {
				return false
			}
		}
		return true
	})
	wg.Wait() // traffic goes on after the rebuild until its time is up
	require.NoError(t, stopRB())
	require.NoError(t, stopWorker())
	w.settleTransfers(30 * time.Second)
	w.waitDrained(pick(30*time.Second, 90*time.Second))
	// What the chain should hold: every non-transfer change the ledger has
	// (the two SETs, the sales that survived), less the missing units.
	base := w.count(`SELECT coalesce(sum(delta_on_hand), 0) FROM inventory_events
		WHERE sku = 'sofa' AND store_id IN ('wh', 's2') AND transfer_id = ''`)
	w.checkChainFrom(base)
	w.checkTransferLedger()
	n := w.count(`SELECT count(*) FROM inventory_events WHERE transfer_id <> '' AND principal = 'rebuild'`)
	t.Logf("%d sales acknowledged; %d transfer events made up by the rebuild", sold.Load(), n)
}
