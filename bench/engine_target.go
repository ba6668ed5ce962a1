package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/persist"
)

// engineTarget is an in-process engine on real Redis under its own prefix,
// with the persister draining into a ledger in its own schema and the
// sweeper expiring holds.
type engineTarget struct {
	e      *engine.Engine
	rdb    *redis.Client
	prefix string
	ledger *pgLedger // nil without a ledger
	pers   *persist.Persister
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

func newEngineTarget(ctx context.Context, cfg Config, run string) (*engineTarget, error) {
	rdb, err := newRedis(ctx, cfg.RedisURL, cfg.Workers)
	if err != nil {
		return nil, err
	}
	t := &engineTarget{rdb: rdb, prefix: "bench-" + run}
	ecfg := engine.Config{Client: rdb, Prefix: t.prefix, Partitions: cfg.Partitions, Logger: cfg.Logger}
	if cfg.NoLedger {
		// No persister trims the streams, so the backpressure watermark
		// would refuse every write past it: off, as in the engine's own
		// benchmark. The streams go when the target closes.
		ecfg.StreamHighWatermark = -1
	}
	e, err := engine.New(ecfg)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	t.e = e
	if err := e.Init(ctx); err != nil {
		t.Close(ctx)
		return nil, fmt.Errorf("engine target: %w", err)
	}
	bg, stop := context.WithCancel(context.Background())
	t.stop = stop
	if !cfg.NoLedger {
		l, err := newPGLedger(ctx, cfg.DatabaseURL, "bench_ledger_"+run, true)
		if err != nil {
			t.Close(ctx)
			return nil, fmt.Errorf("engine target ledger: %w", err)
		}
		t.ledger = l
		p, err := persist.NewPersister(e, l.pool, persist.PersisterConfig{Consumer: "bench-" + run, Logger: cfg.Logger})
		if err != nil {
			t.Close(ctx)
			return nil, err
		}
		t.pers = p
		t.wg.Add(1)
		go func() { defer t.wg.Done(); _ = p.Run(bg) }()
	}
	sw := engine.NewSweeper(e, engine.SweeperConfig{})
	t.wg.Add(1)
	go func() { defer t.wg.Done(); _ = sw.Run(bg) }()
	return t, nil
}

// newRedis connects to Redis with a pool large enough for every worker.
func newRedis(ctx context.Context, rawURL string, workers int) (*redis.Client, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	opt.PoolSize = workers + 32
	opt.MinIdleConns = 8
	rdb := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis at %s: %w", opt.Addr, err)
	}
	return rdb, nil
}

func (t *engineTarget) Seed(ctx context.Context, items []SeedItem) error {
	return parallel(ctx, len(items), 64, func(ctx context.Context, i int) error {
		it := items[i]
		_, err := t.e.Set(ctx, engine.SetRequest{Store: it.Store, SKU: it.SKU, OnHand: it.OnHand, Reason: "bench seed"}, engine.Op{})
		return err
	})
}

func engineLines(lines []Line) []engine.Line {
	out := make([]engine.Line, len(lines))
	for i, l := range lines {
		out[i] = engine.Line{SKU: l.SKU, Qty: l.Qty}
	}
	return out
}

// engineErr maps an engine error to the harness's kinds.
func engineErr(err error) error {
	var ise *engine.InsufficientStockError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ise):
		return errRefused
	case errors.Is(err, engine.ErrReservationNotHeld):
		return errNotHeld
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &opError{Kind: kindTimeout, Unknown: true, Err: err}
	case errors.Is(err, engine.ErrBackpressure), errors.Is(err, engine.ErrPartitionNotReady):
		return &opError{Kind: kindUnavailable, Err: err}
	case engine.IsUnavailable(err):
		return &opError{Kind: kindTransport, Unknown: true, Err: err}
	}
	return &opError{Kind: kindOther, Err: err}
}

func (t *engineTarget) Checkout(ctx context.Context, store string, lines []Line) error {
	_, err := t.e.Checkout(ctx, engine.CheckoutRequest{Store: store, Lines: engineLines(lines)}, engine.Op{})
	return engineErr(err)
}

func (t *engineTarget) Adjust(ctx context.Context, store, sku string, delta int64) error {
	_, err := t.e.Adjust(ctx, engine.AdjustRequest{Store: store, SKU: sku, Delta: delta, Reason: "restock"}, engine.Op{})
	return engineErr(err)
}

func (t *engineTarget) Get(ctx context.Context, store, sku string) error {
	_, err := t.e.GetItem(ctx, store, sku)
	return engineErr(err)
}

func (t *engineTarget) Reserve(ctx context.Context, store string, lines []Line, ttl int) (string, error) {
	r, err := t.e.Reserve(ctx, engine.ReserveRequest{Store: store, Lines: engineLines(lines), TTL: time.Duration(ttl) * time.Second}, engine.Op{})
	if err != nil {
		return "", engineErr(err)
	}
	return r.Reservation.ID, nil
}

func (t *engineTarget) Commit(ctx context.Context, id string) error {
	_, err := t.e.Commit(ctx, id, engine.Op{})
	return engineErr(err)
}

func (t *engineTarget) Release(ctx context.Context, id string) error {
	_, err := t.e.Release(ctx, id, engine.Op{})
	return engineErr(err)
}

// BulkAdjust applies the lines concurrently (up to 256 at once), each on its
// own, so group commit batches them: what the engine can do for an import.
// The API's bulk route, measured by the server and http targets, is the
// product's own use of it.
func (t *engineTarget) BulkAdjust(ctx context.Context, updates []Update) ([]error, error) {
	out := make([]error, len(updates))
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	for i, u := range updates {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int, u Update) {
			defer func() { <-sem; wg.Done() }()
			out[i] = t.Adjust(ctx, u.Store, u.SKU, u.Delta)
		}(i, u)
	}
	wg.Wait()
	return out, nil
}

func (t *engineTarget) Items(ctx context.Context, refs []SeedItem) ([]ItemState, error) {
	out := make([]ItemState, len(refs))
	const chunk = 1000
	for lo := 0; lo < len(refs); lo += chunk {
		hi := min(lo+chunk, len(refs))
		rs := make([]engine.ItemRef, hi-lo)
		for i := range rs {
			rs[i] = engine.ItemRef{Store: refs[lo+i].Store, SKU: refs[lo+i].SKU}
		}
		items, err := t.e.LoadItems(ctx, rs)
		if err != nil {
			return nil, err
		}
		for i, it := range items {
			st := ItemState{Store: rs[i].Store, SKU: rs[i].SKU}
			if it != nil {
				st.OnHand, st.Reserved, st.Version, st.Found = it.OnHand, it.Reserved, it.Version, true
			}
			out[lo+i] = st
		}
	}
	return out, nil
}

// CheckLedger waits for the persister to drain, then checks the ledger.
func (t *engineTarget) CheckLedger(ctx context.Context, items []ItemState) ([]string, error) {
	if t.ledger == nil {
		return nil, nil
	}
	return t.ledger.check(ctx, items, 60*time.Second)
}

func (t *engineTarget) Close(ctx context.Context) error {
	if t.stop != nil {
		t.stop()
	}
	t.wg.Wait()
	var errs []error
	if t.ledger != nil {
		errs = append(errs, t.ledger.drop(ctx))
	}
	errs = append(errs, deletePrefix(ctx, t.rdb, t.prefix))
	errs = append(errs, t.rdb.Close())
	return errors.Join(errs...)
}

// deletePrefix removes every key that starts with prefix.
func deletePrefix(ctx context.Context, rdb *redis.Client, prefix string) error {
	iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := rdb.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("clean %s: %w", prefix, err)
	}
	if len(batch) > 0 {
		return rdb.Unlink(ctx, batch...).Err()
	}
	return nil
}

// parallel runs f for 0..n-1 on up to width goroutines and returns the
// first error.
func parallel(ctx context.Context, n, width int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		first error
		next  int
		wg    sync.WaitGroup
	)
	for w := 0; w < min(width, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil || i >= n
				mu.Unlock()
				if stop || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// HasLedger reports whether there is a ledger to check.
func (t *engineTarget) HasLedger() bool { return t.ledger != nil }

// Persisted counts the events the persister has written to the ledger.
func (t *engineTarget) Persisted() (int64, bool) {
	if t.pers == nil {
		return 0, false
	}
	return t.pers.Stats().EventsPersisted, true
}
