package persist

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/shelfline/inventory/engine"
)

// ErrRebuildInProgress is returned by RebuildPartition when another process
// holds the partition's rebuild lock.
var ErrRebuildInProgress = errors.New("rebuild of this partition in progress elsewhere")

// RebuilderConfig configures a Rebuilder. The zero value of every field
// selects its documented default.
type RebuilderConfig struct {
	// Partitions lists the partitions this process watches. Defaults to all.
	Partitions []int
	// Interval is how often the readiness markers are checked. Defaults to 1s.
	Interval time.Duration
	// LockTTL is the life of a partition's rebuild lock; it is renewed while
	// the rebuild makes progress. Defaults to 30s.
	LockTTL time.Duration
	// Workers is how many restore calls of one partition are in flight at
	// once. Defaults to 4.
	Workers int
	// Parallel is how many partitions are rebuilt at once: Redis runs one
	// script at a time, but reading the ledger, encoding the items and the
	// round trips overlap. Defaults to 4.
	Parallel int
	// RestoreBatch is how many items one restore call writes. Defaults to
	// 500.
	RestoreBatch int
	// Group is the persister's consumer group, whose progress tells which
	// stream entries are already in the ledger. Defaults to "persister".
	Group string
	// Logger receives the rebuilder's logs. Defaults to zap.NewNop().
	Logger *zap.Logger
}

func (c RebuilderConfig) withDefaults(e *engine.Engine) RebuilderConfig {
	if c.Partitions == nil {
		c.Partitions = allPartitions(e)
	} else {
		c.Partitions = append([]int(nil), c.Partitions...)
	}
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if c.LockTTL == 0 {
		c.LockTTL = 30 * time.Second
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.Parallel == 0 {
		c.Parallel = 4
	}
	if c.RestoreBatch == 0 {
		c.RestoreBatch = 500
	}
	if c.Group == "" {
		c.Group = "persister"
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

func (c RebuilderConfig) validate(e *engine.Engine) error {
	if err := validPartitions("rebuilder", c.Partitions, e); err != nil {
		return err
	}
	switch {
	case c.Interval < time.Millisecond:
		return fmt.Errorf("rebuilder config: Interval must be at least 1ms, got %s", c.Interval)
	case c.LockTTL < time.Second:
		return fmt.Errorf("rebuilder config: LockTTL must be at least 1s, got %s", c.LockTTL)
	case c.Workers < 1 || c.Workers > 256:
		return fmt.Errorf("rebuilder config: Workers must be 1..256, got %d", c.Workers)
	case c.Parallel < 1 || c.Parallel > 256:
		return fmt.Errorf("rebuilder config: Parallel must be 1..256, got %d", c.Parallel)
	case c.RestoreBatch < 1 || c.RestoreBatch > engine.MaxRestoreBatch:
		return fmt.Errorf("rebuilder config: RestoreBatch must be 1..%d, got %d", engine.MaxRestoreBatch, c.RestoreBatch)
	}
	return nil
}

func allPartitions(e *engine.Engine) []int {
	out := make([]int, e.Partitions())
	for i := range out {
		out[i] = i
	}
	return out
}

func validPartitions(who string, ps []int, e *engine.Engine) error {
	seen := map[int]bool{}
	for _, p := range ps {
		if p < 0 || p >= e.Partitions() {
			return fmt.Errorf("%s config: Partitions: %d is not a partition (0..%d)", who, p, e.Partitions()-1)
		}
		if seen[p] {
			return fmt.Errorf("%s config: Partitions: %d listed twice", who, p)
		}
		seen[p] = true
	}
	return nil
}

// Rebuilder restores Redis partitions that lost their data (readiness marker
// missing: Redis restarted empty or was flushed) from the ledger, then marks
// them ready. Many rebuilders may run at once: a lock in the partition lets
// one work on it at a time.
type Rebuilder struct {
	e        *engine.Engine
	pool     *pgxpool.Pool
	cfg      RebuilderConfig
	log      *zap.Logger
	rebuilds atomic.Int64
	items    atomic.Int64 // restored so far, rebuilds in progress included
	holds    atomic.Int64
	// running counts the partitions being rebuilt now; nanos the time
	// spent rebuilding partitions (each partition's own duration).
	running atomic.Int64
	nanos   atomic.Int64
	// roundMu guards the current round of rebuilds (Run): when it began and
	// how long the last finished one took.
	roundMu    sync.Mutex
	roundStart time.Time
	lastRound  time.Duration
	// beforeMarkReady, when set (tests), runs just before a rebuilt
	// partition is marked ready.
	beforeMarkReady func(p int)
}

// NewRebuilder returns a Rebuilder of e's partitions from the ledger in
// pool. It errors on an invalid config.
func NewRebuilder(e *engine.Engine, pool *pgxpool.Pool, cfg RebuilderConfig) (*Rebuilder, error) {
	if e == nil || pool == nil {
		return nil, errors.New("rebuilder: engine and pool are required")
	}
	cfg = cfg.withDefaults(e)
	if err := cfg.validate(e); err != nil {
		return nil, err
	}
	return &Rebuilder{e: e, pool: pool, cfg: cfg, log: cfg.Logger}, nil
}

// Rebuilds returns how many partitions this Rebuilder has rebuilt.
func (r *Rebuilder) Rebuilds() int64 { return r.rebuilds.Load() }

// RebuilderStats are a Rebuilder's counters since it was made.
type RebuilderStats struct {
	// Partitions counts the partitions rebuilt.
	Partitions int64 `json:"partitions"`
	// Items and Reservations count the items and open reservations
	// restored into Redis, as they are restored: a rebuild in progress
	// adds to them batch by batch (a failed one that is retried counts its
	// items again).
	Items        int64 `json:"items"`
	Reservations int64 `json:"reservations"`
	// Rebuilding counts the partitions being rebuilt now.
	Rebuilding int64 `json:"rebuilding"`
	// Seconds is the time spent rebuilding partitions, summed over
	// partitions (partitions rebuilt at once each count their own time).
	Seconds float64 `json:"seconds"`
	// RoundSeconds is, while Run rebuilds partitions, the time since it
	// found them not ready; afterwards, how long its last such round took
	// until every partition of it was ready (0 before the first).
	RoundSeconds float64 `json:"round_seconds"`
}

// Stats returns a snapshot of the counters. Safe for concurrent use.
func (r *Rebuilder) Stats() RebuilderStats {
	st := RebuilderStats{Partitions: r.rebuilds.Load(), Items: r.items.Load(), Reservations: r.holds.Load(),
		Rebuilding: r.running.Load(), Seconds: time.Duration(r.nanos.Load()).Seconds()}
	r.roundMu.Lock()
	if !r.roundStart.IsZero() {
		st.RoundSeconds = time.Since(r.roundStart).Seconds()
	} else {
		st.RoundSeconds = r.lastRound.Seconds()
	}
	r.roundMu.Unlock()
	return st
}

// Run checks the readiness marker of every watched partition each Interval
// and rebuilds those that lack it, Parallel at a time, until ctx is done;
// then it returns nil. Each partition is marked ready, and serves reads and
// writes, as soon as its own rebuild ends. Failures are logged and retried
// at the next check.
func (r *Rebuilder) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		missing, err := r.missing(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("check readiness markers", zap.Error(err))
		}
		if len(missing) > 0 {
			r.round(ctx, missing)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// round rebuilds the given partitions, Parallel at a time, and returns when
// every one has ended (rebuilt, failed or left to another process).
func (r *Rebuilder) round(ctx context.Context, parts []int) {
	start := time.Now()
	r.roundMu.Lock()
	r.roundStart = start
	r.roundMu.Unlock()
	r.log.Info("rebuilding partitions from the ledger", zap.Ints(logPartitions, parts), zap.Int(logParallel, r.cfg.Parallel))
	sem := make(chan struct{}, r.cfg.Parallel)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, p := range parts {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := r.RebuildPartition(ctx, p)
			switch {
			case err == nil, ctx.Err() != nil:
			case errors.Is(err, ErrRebuildInProgress):
				r.log.Debug("partition being rebuilt elsewhere", zap.Int(logPartition, p))
			default:
				failed.Add(1)
				r.log.Error("rebuild partition", zap.Int(logPartition, p), zap.Error(err))
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	r.roundMu.Lock()
	r.roundStart = time.Time{}
	r.lastRound = took
	r.roundMu.Unlock()
	if ctx.Err() == nil {
		r.log.Info("rebuild round over", zap.Ints(logPartitions, parts), zap.Int64(logFailed, failed.Load()),
			zap.Int64(logRestored, r.items.Load()), zap.Duration(logTook, took))
	}
}

// missing returns the watched partitions without a readiness marker, in one
// round trip.
func (r *Rebuilder) missing(ctx context.Context) ([]int, error) {
	return r.e.PartitionsNotReady(ctx, r.cfg.Partitions)
}

// RebuildPartition rebuilds partition p from the ledger unless it is ready:
// it first writes to the ledger the stream entries not yet persisted (the
// marker may be gone while the stream survived), then restores every item
// of the partition's stores with its version and customer units, and every
// open reservation with its expiry, then sets the readiness marker. An empty
// ledger just marks the partition ready. Errors: ErrRebuildInProgress when
// another process holds the partition's lock; Redis or PostgreSQL errors,
// after which the partition stays not ready and the rebuild can be retried.
func (r *Rebuilder) RebuildPartition(ctx context.Context, p int) (err error) {
	if p < 0 || p >= r.e.Partitions() {
		return fmt.Errorf("rebuild: %d is not a partition", p)
	}
	lock, err := r.e.LockRebuild(ctx, p, r.cfg.LockTTL)
	if errors.Is(err, engine.ErrLockHeld) {
		return ErrRebuildInProgress
	}
	if err != nil {
		return fmt.Errorf("rebuild partition %d: %w", p, err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if uerr := lock.Release(uctx); uerr != nil && err == nil {
			err = uerr
		}
	}()
	ready, err := r.e.PartitionReady(ctx, p)
	if err != nil || ready {
		return err
	}
	start := time.Now()
	r.running.Add(1)
	defer func() {
		r.running.Add(-1)
		r.nanos.Add(int64(time.Since(start)))
	}()
	renew := func() error {
		if err := lock.Extend(ctx); err != nil {
			return fmt.Errorf("rebuild partition %d: %w", p, err)
		}
		return nil
	}
	// The fence goes up before anything here reads the ledger: a persister
	// batch read from the Redis that lost its data either commits before
	// this (the UPDATE waits for it) or never (fence.go).
	f, err := bumpFence(ctx, r.pool, p)
	if err != nil {
		return fmt.Errorf("rebuild partition %d: %w", p, err)
	}
	drained, err := r.drain(ctx, p, f, renew)
	if err != nil {
		return err
	}
	items, holds, err := r.restore(ctx, p, renew)
	if err != nil {
		return err
	}
	stores, err := partitionStores(ctx, r.e, r.pool, p)
	if err != nil {
		return err
	}
	if _, err := restoreTransfers(ctx, r.pool, r.e, p, stores); err != nil {
		return fmt.Errorf("rebuild partition %d: %w", p, err)
	}
	if _, err := r.restoreKeyedOps(ctx, p); err != nil {
		return err
	}
	if r.beforeMarkReady != nil {
		r.beforeMarkReady(p)
	}
	if err := r.e.MarkReady(ctx, p); err != nil {
		return err
	}
	r.rebuilds.Add(1)
	r.log.Info("partition rebuilt from the ledger", zap.Int(logPartition, p), zap.Int(logEntries, drained),
		zap.Int(logItems, items), zap.Int(logReservations, holds), zap.Duration(logTook, time.Since(start)))
	return nil
}

// drainChunk is how many stream entries one drain transaction writes.
const drainChunk = 2000

// drain writes to the ledger, under the rebuild's fence f, every entry of
// p's stream from the persister's floor on (the whole stream when the group
// is gone), so versions continue
// without a fork. Writes are refused while the marker is missing, so the
// stream does not grow meanwhile. Entries that do not parse, and those
// PostgreSQL refuses for their content, are passed over and left to the
// persister, which dead-letters each once, through its consumer group; the
// partition is rebuilt without them (the reconciler closes the versions
// they leave out).
func (r *Rebuilder) drain(ctx context.Context, p int, f *fence, renew func() error) (int, error) {
	gs, _, err := r.e.GroupState(ctx, p, r.cfg.Group)
	if err != nil {
		return 0, fmt.Errorf("rebuild partition %d: %w", p, err)
	}
	total := 0
	var failed error // the scan's own failure, worded already
	// From the persisted floor on; from the start when the group is gone
	// (the zero floor).
	err = r.e.ScanStream(ctx, p, gs.Floor, drainChunk, func(msgs []engine.StreamEntry) error {
		events := make([]engine.Event, 0, len(msgs))
		for _, m := range msgs {
			if ev, err := engine.ParseEvent(m.ID, m.Values); err == nil {
				events = append(events, ev)
			}
		}
		if len(events) > 0 {
			_, refused, err := writeEvents(ctx, r.pool, p, events, f, nil)
			if err != nil {
				failed = fmt.Errorf("rebuild partition %d: persist stream: %w", p, err)
				return failed
			}
			for _, rf := range refused {
				r.log.Warn("PostgreSQL refuses a stream entry: rebuilding without it, the persister dead-letters it",
					zap.Int(logPartition, p), zap.String(logStreamID, events[rf.index].StreamID), zap.Error(rf.err))
			}
			total += len(events) - len(refused)
		}
		if len(msgs) < drainChunk {
			return nil // the last chunk
		}
		failed = renew() // more to come
		return failed
	})
	if err != nil && err != failed {
		err = fmt.Errorf("rebuild partition %d: %w", p, err)
	}
	return total, err
}

// storesSQL lists the distinct stores with a loose index scan: one index
// probe per store rather than a scan of every item.
const storesSQL = `WITH RECURSIVE s AS (
	(SELECT store_id FROM inventory_items ORDER BY store_id LIMIT 1)
	UNION ALL
	SELECT (SELECT i.store_id FROM inventory_items i WHERE i.store_id > s.store_id ORDER BY i.store_id LIMIT 1)
	FROM s WHERE s.store_id IS NOT NULL
)
SELECT store_id FROM s WHERE store_id IS NOT NULL`

const itemsOfStoresSQL = `SELECT store_id, sku, on_hand, reserved, version,
	coalesce(reorder_point, -1), coalesce(max_per_customer, -1), updated_at,
	committed, damaged, quality_control, display, incoming, coalesce(safety_stock, -1)
FROM inventory_items WHERE store_id = ANY($1)`

// customerUnitsSQL sums, per item and customer, the units counted against
// purchase limits, exactly as Redis counts them: a SALE or RESERVE counts
// when the item had a limit (events carry max_per_customer after the change,
// which a sale or hold leaves as it was); a RELEASE or EXPIRE gives back
// what its RESERVE (same reservation and SKU) counted; a COMMIT keeps it
// counted; a later sale (units to committed) counts as a sale. Items whose
// limit was cleared keep their counts.
const customerUnitsSQL = `SELECT e.store_id, e.sku, e.customer,
	sum(CASE e.type WHEN 'SALE' THEN e.delta_committed - e.delta_on_hand ELSE e.delta_reserved END)::bigint AS units
FROM inventory_events e
WHERE e.store_id = ANY($1) AND e.customer <> '' AND (
	(e.type IN ('SALE', 'RESERVE') AND e.max_per_customer IS NOT NULL)
	OR (e.type IN ('RELEASE', 'EXPIRE') AND e.reservation_id <> '' AND EXISTS (
		SELECT 1 FROM inventory_events r
		WHERE r.store_id = e.store_id AND r.reservation_id = e.reservation_id AND r.sku = e.sku
			AND r.type = 'RESERVE' AND r.max_per_customer IS NOT NULL)))
GROUP BY e.store_id, e.sku, e.customer
HAVING sum(CASE e.type WHEN 'SALE' THEN e.delta_committed - e.delta_on_hand ELSE e.delta_reserved END) > 0`

// openHoldsSQL lists the lines of every reservation that was made and
// neither committed, released nor expired, each with the units it counted
// against the customer's purchase limit (all of the line when the item had
// a limit, else none).
const openHoldsSQL = `SELECT e.reservation_id, e.store_id, e.customer, e.sku, e.delta_reserved, e.expires_at,
	CASE WHEN e.max_per_customer IS NOT NULL AND e.customer <> '' THEN e.delta_reserved ELSE 0 END AS counted
FROM inventory_events e
WHERE e.store_id = ANY($1) AND e.type = 'RESERVE' AND e.reservation_id <> ''
	AND NOT EXISTS (SELECT 1 FROM inventory_events f
		WHERE f.store_id = e.store_id AND f.reservation_id = e.reservation_id
			AND f.reservation_id <> '' AND f.type <> 'RESERVE')
ORDER BY e.reservation_id, e.stream_id`

// collectHolds reads the rows of openHoldsSQL (or a query of the same
// columns and order) into reservations.
func collectHolds(rows pgx.Rows) ([]engine.HeldReservation, error) {
	var (
		holds         []engine.HeldReservation
		id, st, c, sk string
		qty, counted  int64
		x             *time.Time
	)
	_, err := pgx.ForEachRow(rows, []any{&id, &st, &c, &sk, &qty, &x, &counted}, func() error {
		if n := len(holds); n == 0 || holds[n-1].ID != id {
			h := engine.HeldReservation{Reservation: engine.Reservation{ID: id, Store: st, Customer: c, Status: engine.StatusHeld}}
			if x != nil {
				h.ExpiresAt = *x
			}
			holds = append(holds, h)
		}
		h := &holds[len(holds)-1]
		h.Lines = append(h.Lines, engine.Line{SKU: sk, Qty: qty})
		if counted > 0 {
			if h.Counted == nil {
				h.Counted = map[string]int64{}
			}
			h.Counted[sk] = counted
		}
		return nil
	})
	return holds, err
}

// partitionStores returns the ledger's stores that map to partition p.
func partitionStores(ctx context.Context, e *engine.Engine, pool *pgxpool.Pool, p int) ([]string, error) {
	all, err := storesByPartition(ctx, e, pool)
	if err != nil {
		return nil, err
	}
	return all[p], nil
}

// storesByPartition returns the ledger's stores grouped by partition.
func storesByPartition(ctx context.Context, e *engine.Engine, pool *pgxpool.Pool) (map[int][]string, error) {
	rows, err := pool.Query(ctx, storesSQL)
	if err != nil {
		return nil, fmt.Errorf("stores of the ledger: %w", err)
	}
	all, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("stores of the ledger: %w", err)
	}
	out := map[int][]string{}
	for _, s := range all {
		p := e.Partition(s)
		out[p] = append(out[p], s)
	}
	return out, nil
}

// loadStates reads the ledger state of the given stores' items, with their
// customer units.
func loadStates(ctx context.Context, pool *pgxpool.Pool, stores []string) (map[engine.ItemRef]*engine.ItemState, error) {
	rows, err := pool.Query(ctx, itemsOfStoresSQL, stores)
	if err != nil {
		return nil, fmt.Errorf("load items: %w", err)
	}
	states := map[engine.ItemRef]*engine.ItemState{}
	var (
		s  engine.ItemState
		ss int64
	)
	_, err = pgx.ForEachRow(rows, []any{&s.Store, &s.SKU, &s.OnHand, &s.Reserved, &s.Version, &s.ReorderPoint, &s.MaxPerCustomer, &s.UpdatedAt,
		&s.Committed, &s.Damaged, &s.QualityControl, &s.Display, &s.Incoming, &ss}, func() error {
		c := s
		if ss >= 0 {
			n := ss
			c.SafetyStock = &n
		}
		states[engine.ItemRef{Store: s.Store, SKU: s.SKU}] = &c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load items: %w", err)
	}
	rows, err = pool.Query(ctx, customerUnitsSQL, stores)
	if err != nil {
		return nil, fmt.Errorf("load customer units: %w", err)
	}
	var (
		store, sku, cust string
		units            int64
	)
	_, err = pgx.ForEachRow(rows, []any{&store, &sku, &cust, &units}, func() error {
		st := states[engine.ItemRef{Store: store, SKU: sku}]
		if st == nil || units <= 0 {
			return nil
		}
		if st.CustomerUnits == nil {
			st.CustomerUnits = map[string]int64{}
		}
		st.CustomerUnits[cust] = units
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load customer units: %w", err)
	}
	return states, nil
}

// restore writes the ledger's items and open reservations of partition p
// into Redis and returns how many of each.
func (r *Rebuilder) restore(ctx context.Context, p int, renew func() error) (int, int, error) {
	stores, err := partitionStores(ctx, r.e, r.pool, p)
	if err != nil || len(stores) == 0 {
		return 0, 0, err
	}
	states, err := loadStates(ctx, r.pool, stores)
	if err != nil {
		return 0, 0, fmt.Errorf("rebuild partition %d: %w", p, err)
	}
	rows, err := r.pool.Query(ctx, openHoldsSQL, stores)
	if err != nil {
		return 0, 0, fmt.Errorf("rebuild partition %d: open reservations: %w", p, err)
	}
	holds, err := collectHolds(rows)
	if err != nil {
		return 0, 0, fmt.Errorf("rebuild partition %d: open reservations: %w", p, err)
	}
	if err := renew(); err != nil {
		return 0, 0, err
	}
	// Items go in batches of RestoreBatch, one restore call each, Workers
	// calls in flight; then the open reservations.
	work := make(chan func() error)
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	for i := 0; i < r.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range work {
				if err := f(); err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
				}
			}
		}()
	}
	failed := func() bool {
		errMu.Lock()
		defer errMu.Unlock()
		return firstErr != nil
	}
	batch := make([]engine.ItemState, 0, r.cfg.RestoreBatch)
	renewed := time.Now()
	send := func() bool {
		b := batch
		work <- func() error {
			if err := r.e.RestoreItems(ctx, b); err != nil {
				return err
			}
			r.items.Add(int64(len(b)))
			return nil
		}
		batch = make([]engine.ItemState, 0, r.cfg.RestoreBatch)
		// The lease is renewed well before it runs out, however slow the
		// calls are.
		if time.Since(renewed) > r.cfg.LockTTL/4 || failed() {
			renewed = time.Now()
			if err := renew(); err != nil {
				work <- func() error { return err }
				return false
			}
			return !failed()
		}
		return true
	}
	ok := true
	for _, s := range states {
		if batch = append(batch, *s); len(batch) == r.cfg.RestoreBatch {
			if ok = send(); !ok {
				break
			}
		}
	}
	if ok && len(batch) > 0 {
		ok = send()
	}
	if ok {
		for _, h := range holds {
			h := h
			work <- func() error {
				if err := r.e.RestoreReservation(ctx, h); err != nil {
					return err
				}
				r.holds.Add(1)
				return nil
			}
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return 0, 0, fmt.Errorf("rebuild partition %d: %w", p, firstErr)
	}
	return len(states), len(holds), nil
}
