package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/redistest"
)

// The engine on a Redis Cluster: these tests run on the shared local cluster
// (see clusterBackend) and put their stores on every master, so each
// operation, fan-out and recovery path crosses nodes.

// clusterStores makes an engine on the cluster and returns it with one store
// id per master, in master order.
func clusterStores(t *testing.T, cfg engine.Config) (*engine.Engine, []string) {
	t.Helper()
	e := clusterBackend().make(t, cfg)
	masters := partitionMasters(t, e)
	ms, err := redistest.Shared(t).Masters(context.Background())
	require.NoError(t, err)
	require.Len(t, ms, 3)
	stores := make([]string, len(ms))
	for i, m := range ms {
		stores[i] = storeOn(t, e, masters, m.Addr, fmt.Sprintf("m%d-s", i))
	}
	return e, stores
}

func TestClusterPartitionsSpreadOverMasters(t *testing.T) {
	t.Parallel()
	e := clusterBackend().make(t, engine.Config{})
	count := map[string]int{}
	for _, m := range partitionMasters(t, e) {
		count[m]++
	}
	require.Len(t, count, 3, "the 16 partitions' hash tags land on every master: %v", count)
}

func TestClusterOperations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFakeClock()
	e, stores := clusterStores(t, engine.Config{Clock: clock.Now})
	var expiring []string
	// One store after another, not subtests: the sweep below needs every
	// store's hold, whatever -run selects.
	for _, s := range stores {
		func() {
			r, err := e.Set(ctx, engine.SetRequest{Store: s, SKU: "sofa", OnHand: 10, MaxPerCustomer: i64(5)}, engine.Op{})
			require.NoError(t, err)
			require.True(t, r.Created)
			a, err := e.Adjust(ctx, engine.AdjustRequest{Store: s, SKU: "sofa", Delta: 5, Reason: "delivery"}, engine.Op{})
			require.NoError(t, err)
			require.Equal(t, int64(15), a.Item.OnHand)
			c, err := e.Checkout(ctx, engine.CheckoutRequest{Store: s, Customer: "c1", Lines: []engine.Line{{SKU: "sofa", Qty: 2}}}, engine.Op{})
			require.NoError(t, err)
			require.Equal(t, int64(13), c.Items[0].OnHand)

			held, err := e.Reserve(ctx, engine.ReserveRequest{Store: s, Customer: "c1", Lines: []engine.Line{{SKU: "sofa", Qty: 2}}}, engine.Op{})
			require.NoError(t, err)
			require.Equal(t, int64(2), held.Items[0].Reserved)
			_, err = e.Reserve(ctx, engine.ReserveRequest{Store: s, Customer: "c1", Lines: []engine.Line{{SKU: "sofa", Qty: 2}}}, engine.Op{})
			var ple *engine.PurchaseLimitError
			require.ErrorAs(t, err, &ple, "2 bought + 2 held + 2 > 5")
			cm, err := e.Commit(ctx, held.Reservation.ID, engine.Op{})
			require.NoError(t, err)
			require.Equal(t, engine.StatusCommitted, cm.Reservation.Status)

			rel, err := e.Reserve(ctx, engine.ReserveRequest{Store: s, Customer: "c2", Lines: []engine.Line{{SKU: "sofa", Qty: 3}}}, engine.Op{})
			require.NoError(t, err)
			rr, err := e.Release(ctx, rel.Reservation.ID, engine.Op{})
			require.NoError(t, err)
			require.Equal(t, engine.StatusReleased, rr.Reservation.Status)
			_, err = e.Commit(ctx, rel.Reservation.ID, engine.Op{})
			require.ErrorIs(t, err, engine.ErrReservationNotHeld)

			exp, err := e.Reserve(ctx, engine.ReserveRequest{Store: s, Customer: "c3", TTL: 2 * time.Second, Lines: []engine.Line{{SKU: "sofa", Qty: 4}}}, engine.Op{})
			require.NoError(t, err)
			require.Equal(t, int64(4), mustGet(t, e, s, "sofa").Reserved)
			expiring = append(expiring, exp.Reservation.ID)
		}()
	}
	// Expire every hold at once: the sweeper walks every partition, on every
	// master.
	clock.Advance(3 * time.Second)
	n := engine.NewSweeper(e, engine.SweeperConfig{}).SweepOnce(ctx)
	require.Equal(t, len(stores), n)
	for _, id := range expiring {
		r, err := e.GetReservation(ctx, id)
		require.NoError(t, err)
		require.Equal(t, engine.StatusExpired, r.Status)
	}
	for _, s := range stores {
		it := mustGet(t, e, s, "sofa")
		require.Equal(t, int64(11), it.OnHand)
		require.Equal(t, int64(0), it.Reserved)
		require.Equal(t, int64(9), it.Version) // set, adjust, sale, hold, commit, hold, release, hold, expire
		checkItemLedger(t, e, s, "sofa")
		evs := itemEvents(t, e, s, "sofa")
		var types []string
		for _, ev := range evs {
			types = append(types, ev.Type)
		}
		require.Equal(t, []string{"SET", "ADJUST", "SALE", "RESERVE", "COMMIT", "RESERVE", "RELEASE", "RESERVE", "EXPIRE"}, types)
	}
}

func TestClusterFanOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, stores := clusterStores(t, engine.Config{})
	// More stores per master, so each node answers for several partitions.
	masters := partitionMasters(t, e)
	var all []string
	want := int64(0)
	for i, s := range stores {
		addr := masters[e.Partition(s)]
		for j := 0; j < 4; j++ {
			st := storeOn(t, e, masters, addr, fmt.Sprintf("%s%d-", s, j))
			all = append(all, st)
			mustSet(t, e, st, "sofa", int64(10*i+j+1))
			want += int64(10*i + j + 1)
		}
		for k := 0; k < 23; k++ {
			mustSet(t, e, s, fmt.Sprintf("sku-%02d", k), int64(k))
		}
	}
	sort.Strings(all)

	a, err := e.Availability(ctx, "sofa")
	require.NoError(t, err)
	require.Equal(t, want, a.Available)
	require.Len(t, a.Stores, len(all))
	for i, it := range a.Stores {
		require.Equal(t, all[i], it.Store)
	}
	got, err := e.Stores(ctx)
	require.NoError(t, err)
	wantStores := append(append([]string{}, all...), stores...)
	sort.Strings(wantStores)
	require.Equal(t, wantStores, got)

	for _, s := range stores {
		var items []engine.Item
		cursor := ""
		for pages := 0; pages < 10; pages++ {
			page, next, err := e.ListItems(ctx, s, cursor, 5)
			require.NoError(t, err)
			items = append(items, page...)
			if next == "" {
				break
			}
			cursor = next
		}
		require.Len(t, items, 23)
		for k, it := range items {
			require.Equal(t, fmt.Sprintf("sku-%02d", k), it.SKU)
		}
	}

	// The reconciler's raw reads cross nodes too.
	refs := []engine.ItemRef{{Store: "nowhere", SKU: "sofa"}}
	for _, s := range all {
		refs = append(refs, engine.ItemRef{Store: s, SKU: "sofa"})
	}
	loaded, err := e.LoadItems(ctx, refs)
	require.NoError(t, err)
	require.Nil(t, loaded[0])
	for i, it := range loaded[1:] {
		require.NotNil(t, it)
		require.Equal(t, all[i], it.Store)
	}
	scanned := 0
	for p := 0; p < e.Partitions(); p++ {
		require.NoError(t, e.ScanItems(ctx, p, 7, func(r []engine.ItemRef) error {
			scanned += len(r)
			return nil
		}))
	}
	require.Equal(t, len(all)+23*len(stores), scanned)
}

func TestClusterIdempotentReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, stores := clusterStores(t, engine.Config{})
	for _, s := range stores {
		mustSet(t, e, s, "sofa", 10)
		op := engine.Op{IdempotencyKey: "order-" + s, Principal: "web"}
		req := engine.CheckoutRequest{Store: s, Lines: []engine.Line{{SKU: "sofa", Qty: 3}}}
		first, err := e.Checkout(ctx, req, op)
		require.NoError(t, err)
		require.False(t, first.Replayed)
		again, err := e.Checkout(ctx, req, op)
		require.NoError(t, err)
		require.True(t, again.Replayed)
		require.Equal(t, first.Items, again.Items)
		_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: s, Lines: []engine.Line{{SKU: "sofa", Qty: 4}}}, op)
		require.ErrorIs(t, err, engine.ErrIdempotencyMismatch)
		other, err := e.Checkout(ctx, req, engine.Op{IdempotencyKey: op.IdempotencyKey, Principal: "pos"})
		require.NoError(t, err, "keys are scoped by principal")
		require.False(t, other.Replayed)
		require.Equal(t, int64(4), mustGet(t, e, s, "sofa").OnHand)
		checkItemLedger(t, e, s, "sofa")
	}
}

func TestClusterReadinessMarker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, stores := clusterStores(t, engine.Config{})
	for _, s := range stores {
		mustSet(t, e, s, "sofa", 10)
	}
	lost, p := stores[1], e.Partition(stores[1])
	require.NoError(t, e.Client().Del(ctx, e.ReadyKey(p)).Err())
	one := []engine.Line{{SKU: "sofa", Qty: 1}}
	_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: lost, Lines: one}, engine.Op{})
	require.ErrorIs(t, err, engine.ErrPartitionNotReady)
	_, err = e.GetItem(ctx, lost, "absent")
	require.ErrorIs(t, err, engine.ErrPartitionNotReady, "a miss on a partition that is not ready is 503, never 404")
	_, err = e.Availability(ctx, "sofa")
	require.ErrorIs(t, err, engine.ErrPartitionNotReady, "one partition missing makes the fan-out incomplete")
	_, err = e.Stores(ctx)
	require.ErrorIs(t, err, engine.ErrPartitionNotReady)
	n, err := e.ExpireDue(ctx, p, 10)
	require.NoError(t, err)
	require.Zero(t, n)
	// Partitions on the other masters carry on.
	for _, s := range []string{stores[0], stores[2]} {
		_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: s, Lines: one}, engine.Op{})
		require.NoError(t, err)
	}
	require.NoError(t, e.MarkReady(ctx, p))
	_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: lost, Lines: one}, engine.Op{})
	require.NoError(t, err)
	a, err := e.Availability(ctx, "sofa")
	require.NoError(t, err)
	require.Equal(t, int64(27), a.Available)
}

// TestClusterScriptFlushRecovery flushes the script cache of every node and
// deletes the engine's function libraries, as a restart or a failover to a
// fresh replica would, and expects every path
// (single writes, group commit, fan-out reads, expiry) to recover by itself.
func TestClusterScriptFlushRecovery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, stores := clusterStores(t, engine.Config{})
	for _, s := range stores {
		mustSet(t, e, s, "sofa", 100)
	}
	require.True(t, e.Scripts().UsesFunctions())
	flushAll := func() {
		t.Helper()
		flushScripts(t, e)
	}
	for round := 0; round < 3; round++ {
		flushAll()
		for _, s := range stores {
			_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: s, Lines: []engine.Line{{SKU: "sofa", Qty: 1}}}, engine.Op{})
			require.NoError(t, err)
		}
		flushAll()
		a, err := e.Availability(ctx, "sofa")
		require.NoError(t, err)
		require.Equal(t, int64(3*(99-round)), a.Available)
		flushAll()
		for _, s := range stores {
			_, err := e.GetItem(ctx, s, "sofa")
			require.NoError(t, err)
		}
		flushAll()
		for p := 0; p < e.Partitions(); p++ {
			_, err := e.ExpireDue(ctx, p, 10)
			require.NoError(t, err)
		}
		// Concurrent writes take the group-commit path when it is on.
		flushAll()
		var wg sync.WaitGroup
		errs := make(chan error, 30)
		for g := 0; g < 30; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				_, err := e.Adjust(ctx, engine.AdjustRequest{Store: stores[g%3], SKU: "sofa", Delta: 1}, engine.Op{})
				errs <- err
			}(g)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		for _, s := range stores {
			_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: s, Lines: []engine.Line{{SKU: "sofa", Qty: 10}}}, engine.Op{})
			require.NoError(t, err)
		}
	}
	for _, s := range stores {
		it := mustGet(t, e, s, "sofa")
		require.Equal(t, int64(100-3-30+30), it.OnHand)
		checkItemLedger(t, e, s, "sofa")
	}
}

// TestClusterFlashSale races 100 buyers on one hot SKU per master at once:
// each sells exactly its stock, with one event per version.
func TestClusterFlashSale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, stores := clusterStores(t, engine.Config{})
	const stock, buyers = 250, 100
	for _, s := range stores {
		mustSet(t, e, s, "hot", stock)
	}
	sold := make([]atomic.Int64, len(stores))
	refused := make([]atomic.Int64, len(stores))
	errs := make(chan error, buyers*len(stores))
	var wg sync.WaitGroup
	for i, s := range stores {
		for g := 0; g < buyers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; n <= stock; n++ { // bounded: no buyer can buy more than the stock
					_, err := e.Checkout(ctx, engine.CheckoutRequest{Store: s, Lines: []engine.Line{{SKU: "hot", Qty: 1}}}, engine.Op{})
					var ise *engine.InsufficientStockError
					switch {
					case err == nil:
						sold[i].Add(1)
					case errors.As(err, &ise):
						refused[i].Add(1)
						return
					default:
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for i, s := range stores {
		require.Equal(t, int64(stock), sold[i].Load(), s)
		require.Equal(t, int64(buyers), refused[i].Load(), s)
		it := mustGet(t, e, s, "hot")
		require.Equal(t, int64(0), it.OnHand)
		require.Equal(t, int64(stock+1), it.Version)
		checkItemLedger(t, e, s, "hot")
	}
}

func TestClusterBackendCleansUp(t *testing.T) {
	t.Parallel()
	var prefix string
	var c *redis.ClusterClient
	t.Run("use", func(t *testing.T) {
		e, stores := clusterStores(t, engine.Config{})
		prefix, c = e.Prefix(), e.Client().(*redis.ClusterClient)
		for _, s := range stores {
			mustSet(t, e, s, "sofa", 1)
		}
		require.Greater(t, clusterKeyCount(t, c, prefix), 16)
	})
	require.Zero(t, clusterKeyCount(t, newClusterClient(t), prefix), "every key of the prefix removed from every master")
}
