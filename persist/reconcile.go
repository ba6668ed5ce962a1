package persist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/shelfline/inventory/engine"
)

// Mode is what a reconciliation run may do.
type Mode string

const (
	// ModeCheck only reports (and records) what differs.
	ModeCheck Mode = "check"
	// ModeRepair also fixes it, per DESIGN §6.
	ModeRepair Mode = "repair"
)

// ParseMode returns the Mode named s ("check" or "repair").
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeCheck, ModeRepair:
		return Mode(s), nil
	}
	return "", fmt.Errorf("mode %q: must be check or repair", s)
}

// Finding kinds.
const (
	// KindRedisMissing: PostgreSQL has the item, Redis does not (a ready
	// partition lost a key). Repair restores Redis from the ledger.
	KindRedisMissing = "redis_missing"
	// KindRedisBehind: Redis' version is below the ledger's: Redis lost
	// writes. Repair restores Redis from the ledger.
	KindRedisBehind = "redis_behind"
	// KindRedisAhead: Redis' version is above the ledger's and the events in
	// between are gone from the stream (lost before they were persisted).
	// Repair writes RECONCILE events that bring the ledger to Redis' state.
	KindRedisAhead = "redis_ahead"
	// KindCorrupt: same version, different numbers. Repair restores Redis
	// (and inventory_items) from the ledger's event of that version.
	KindCorrupt = "corrupt"
	// KindPartitionNotReady: a partition has no readiness marker. Repair
	// rebuilds it from the ledger.
	KindPartitionNotReady = "partition_not_ready"
	// KindPersisterFailing: a persister's attempts to write a partition's
	// events to the ledger have kept failing for longer than its
	// FailingAfter (PostgreSQL unreachable, say); the events wait in the
	// stream. One finding per failing worker, naming the partition, the
	// worker and its last error. Nothing to repair here: the persister
	// retries on its own once the cause is fixed.
	KindPersisterFailing = "persister_failing"
	// KindFork: recorded by the persister when an event meets a stored one
	// of the same version with another operation id (two histories of one
	// item after a Redis failover); the persister holds back the item's
	// events from there on. A run reports every item with unresolved forks
	// under this kind; repair merges the histories (reconcile_fork.go).
	KindFork = "fork"
)

// ItemSnapshot is an item's state on one side, in a Finding.
type ItemSnapshot struct {
	Version        int64  `json:"version"`
	OnHand         int64  `json:"on_hand"`
	Reserved       int64  `json:"reserved"`
	ReorderPoint   *int64 `json:"reorder_point"`
	MaxPerCustomer *int64 `json:"max_per_customer"`
}

func (s *ItemSnapshot) sameNumbers(o *ItemSnapshot) bool {
	return s.OnHand == o.OnHand && s.Reserved == o.Reserved &&
		eqOpt(s.ReorderPoint, o.ReorderPoint) && eqOpt(s.MaxPerCustomer, o.MaxPerCustomer)
}

func eqOpt(a, b *int64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func snapshotOf(it *engine.Item) *ItemSnapshot {
	if it == nil {
		return nil
	}
	return &ItemSnapshot{Version: it.Version, OnHand: it.OnHand, Reserved: it.Reserved,
		ReorderPoint: it.ReorderPoint, MaxPerCustomer: it.MaxPerCustomer}
}

// Finding is one difference a run found: what (Kind), where, the state
// before and after (of the side repaired, or that would be), and the action
// taken.
type Finding struct {
	Kind  string `json:"kind"`
	Store string `json:"store"`
	SKU   string `json:"sku"`
	// Partition names the partition of a finding about a whole partition
	// (partition_not_ready, persister_failing); absent otherwise.
	Partition *int          `json:"partition,omitempty"`
	Before    *ItemSnapshot `json:"before"`
	After     *ItemSnapshot `json:"after"`
	Action    string        `json:"action"`
	Detail    string        `json:"detail,omitempty"`
}

// Report is the outcome of one reconciliation run. It is recorded in
// reconciliation_runs and drift_findings, and serializes to JSON for the
// admin route.
type Report struct {
	RunID        int64     `json:"run_id"`
	Mode         Mode      `json:"mode"`
	StartedAt    time.Time `json:"started_at"`
	FinishedAt   time.Time `json:"finished_at"`
	ItemsChecked int64     `json:"items_checked"`
	// Lagging counts items whose difference is explained by events still in
	// the stream (persister lag, not drift).
	Lagging  int64     `json:"lagging"`
	Findings []Finding `json:"findings"`
}

// ReconcilerConfig configures a Reconciler. The zero value of every field
// selects its documented default.
type ReconcilerConfig struct {
	// Partitions lists the partitions to reconcile. Defaults to all.
	Partitions []int
	// BatchSize is how many items are compared per round trip. Defaults to 500.
	BatchSize int
	// Interval is the time between runs of Run. Defaults to 5m.
	Interval time.Duration
	// Mode is the mode of Run's periodic runs. Defaults to ModeRepair.
	Mode Mode
	// Group is the persister's consumer group. Defaults to "persister".
	Group string
	// Clock returns the current time. Defaults to time.Now.
	Clock func() time.Time
	// Logger receives the reconciler's logs. Defaults to zap.NewNop().
	Logger *zap.Logger
}

func (c ReconcilerConfig) withDefaults(e *engine.Engine) ReconcilerConfig {
	if c.Partitions == nil {
		c.Partitions = allPartitions(e)
	} else {
		c.Partitions = append([]int(nil), c.Partitions...)
	}
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.Interval == 0 {
		c.Interval = 5 * time.Minute
	}
	if c.Mode == "" {
		c.Mode = ModeRepair
	}
	if c.Group == "" {
		c.Group = "persister"
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

func (c ReconcilerConfig) validate(e *engine.Engine) error {
	if err := validPartitions("reconciler", c.Partitions, e); err != nil {
		return err
	}
	if _, err := ParseMode(string(c.Mode)); err != nil {
		return fmt.Errorf("reconciler config: Mode: %w", err)
	}
	switch {
	case c.BatchSize < 1 || c.BatchSize > 10000:
		return fmt.Errorf("reconciler config: BatchSize must be 1..10000, got %d", c.BatchSize)
	case c.Interval < time.Second:
		return fmt.Errorf("reconciler config: Interval must be at least 1s, got %s", c.Interval)
	}
	return nil
}

// Reconciler compares Redis with the ledger item by item and, in repair
// mode, fixes what drifted (DESIGN §6). It is safe to run while traffic
// flows: every repair of Redis is guarded by the version it saw, and every
// write to the ledger by its primary key.
type Reconciler struct {
	e    *engine.Engine
	pool *pgxpool.Pool
	cfg  ReconcilerConfig
	log  *zap.Logger
	rb   *Rebuilder
	// beforeForkRestore, when set (tests), runs in a fork merge just before
	// Redis is restored.
	beforeForkRestore func(engine.ItemRef)
}

// NewReconciler returns a Reconciler of e against the ledger in pool. It
// errors on an invalid config.
func NewReconciler(e *engine.Engine, pool *pgxpool.Pool, cfg ReconcilerConfig) (*Reconciler, error) {
	if e == nil || pool == nil {
		return nil, errors.New("reconciler: engine and pool are required")
	}
	cfg = cfg.withDefaults(e)
	if err := cfg.validate(e); err != nil {
		return nil, err
	}
	rb, err := NewRebuilder(e, pool, RebuilderConfig{Partitions: cfg.Partitions, Group: cfg.Group, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	return &Reconciler{e: e, pool: pool, cfg: cfg, log: cfg.Logger, rb: rb}, nil
}

// Run reconciles in the configured Mode every Interval until ctx is done,
// then returns nil. A failed run is logged and recorded; the next one runs
// on schedule.
func (r *Reconciler) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		rep, err := r.Reconcile(ctx, r.cfg.Mode)
		switch {
		case errors.Is(err, ErrReconcileInProgress):
			r.log.Info("reconciliation skipped: another run is in progress")
		case err != nil && ctx.Err() == nil:
			r.log.Error("reconciliation run", zap.Error(err))
		case err == nil && len(rep.Findings) > 0:
			r.log.Warn("reconciliation found drift", zap.Int64(logRunID, rep.RunID), zap.Int(logFindings, len(rep.Findings)))
		}
	}
}

const (
	insertRunSQL = `INSERT INTO reconciliation_runs (mode, started_at) VALUES ($1, $2) RETURNING id`
	finishRunSQL = `UPDATE reconciliation_runs SET finished_at = $2, items_checked = $3, lagging = $4, findings = $5, error = $6 WHERE id = $1`
	findingSQL   = `INSERT INTO drift_findings (run_id, kind, store_id, sku, version, before, after, action, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
)

// ErrReconcileInProgress is returned by Reconcile when another run on the
// same ledger and key prefix holds the reconciliation lock.
var ErrReconcileInProgress = errors.New("a reconciliation run is in progress")

// runLockSQL takes a session advisory lock per ledger schema and key
// prefix; it goes away with the session if the process dies.
const (
	runLockSQL   = `SELECT pg_try_advisory_lock(hashtextextended('inventory-reconcile:' || current_schema() || ':' || $1, 0))`
	runUnlockSQL = `SELECT pg_advisory_unlock(hashtextextended('inventory-reconcile:' || current_schema() || ':' || $1, 0))`
)

// Reconcile runs one reconciliation over every configured partition and
// returns its report; the run and its findings are recorded. In ModeCheck
// nothing but the record is written. One run at a time per ledger: a
// concurrent call, in this process or another, gets ErrReconcileInProgress.
// Other errors: an invalid mode, or Redis or PostgreSQL failing (the partial
// report is still returned and recorded).
func (r *Reconciler) Reconcile(ctx context.Context, mode Mode) (*Report, error) {
	if _, err := ParseMode(string(mode)); err != nil {
		return nil, err
	}
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, runLockSQL, r.e.Prefix()).Scan(&locked); err != nil {
		return nil, fmt.Errorf("reconcile: lock: %w", err)
	}
	if !locked {
		return nil, ErrReconcileInProgress
	}
	defer func() {
		var ok bool
		if err := conn.QueryRow(context.WithoutCancel(ctx), runUnlockSQL, r.e.Prefix()).Scan(&ok); err != nil || !ok {
			conn.Conn().Close(context.WithoutCancel(ctx)) // closing the session drops the lock
		}
	}()
	return r.reconcile(ctx, mode)
}

func (r *Reconciler) reconcile(ctx context.Context, mode Mode) (*Report, error) {
	rep := &Report{Mode: mode, StartedAt: r.cfg.Clock().UTC(), Findings: []Finding{}}
	if err := r.pool.QueryRow(ctx, insertRunSQL, string(mode), rep.StartedAt).Scan(&rep.RunID); err != nil {
		return nil, fmt.Errorf("reconcile: record run: %w", err)
	}
	stores, runErr := storesByPartition(ctx, r.e, r.pool)
	if runErr == nil {
		for _, p := range r.cfg.Partitions {
			if err := r.persisterFailures(ctx, p, rep); err != nil {
				runErr = err
				break
			}
			if err := r.partition(ctx, p, stores[p], rep); err != nil {
				runErr = err
				break
			}
		}
	}
	rep.FinishedAt = r.cfg.Clock().UTC()
	if err := r.record(context.WithoutCancel(ctx), rep, runErr); err != nil && runErr == nil {
		runErr = err
	}
	return rep, runErr
}

func (r *Reconciler) record(ctx context.Context, rep *Report, runErr error) error {
	b := &pgx.Batch{}
	for _, f := range rep.Findings {
		var v int64
		if f.After != nil {
			v = f.After.Version
		}
		before, _ := json.Marshal(f.Before)
		after, _ := json.Marshal(f.After)
		b.Queue(findingSQL, rep.RunID, f.Kind, storable(f.Store), storable(f.SKU), v, before, after, storable(f.Action), storable(f.Detail))
	}
	msg := ""
	if runErr != nil {
		msg = storable(runErr.Error())
	}
	b.Queue(finishRunSQL, rep.RunID, rep.FinishedAt, rep.ItemsChecked, rep.Lagging, len(rep.Findings), msg)
	if err := r.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("reconcile: record findings: %w", err)
	}
	return nil
}

// storable returns s as text PostgreSQL stores: valid UTF-8 without NUL. A
// finding may quote what the ledger refused.
func storable(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// persisterFailures reports every persister worker whose writes of
// partition p's events are failing (see PersisterConfig.FailingAfter), from
// the records the workers keep in Redis.
func (r *Reconciler) persisterFailures(ctx context.Context, p int, rep *Report) error {
	all, err := r.e.PersisterHealth(ctx, p)
	if err != nil {
		return fmt.Errorf("reconcile partition %d: persister health: %w", p, err)
	}
	now := r.cfg.Clock()
	consumers := make([]string, 0, len(all))
	for c := range all {
		consumers = append(consumers, c)
	}
	sort.Strings(consumers)
	for _, c := range consumers {
		var h healthRecord
		if err := json.Unmarshal(all[c], &h); err != nil || !h.failing(now) {
			continue // unreadable, failing too briefly yet, or left by a worker that stopped
		}
		part := p
		rep.Findings = append(rep.Findings, Finding{Kind: KindPersisterFailing, Partition: &part,
			Action: "none: the persister retries on its own once the cause is fixed",
			Detail: fmt.Sprintf("partition %d: persister %s has failed %d times since %s, its events wait in the stream: %s",
				p, h.Consumer, h.Failures, h.FailingSince.UTC().Format(time.RFC3339), h.Error)})
	}
	return nil
}

// refusedBy returns the action of a finding whose repair PostgreSQL
// refused for its content (interpretWriteError), so the run goes on
// without it; ok is false for any other error, which ends the run.
func refusedBy(err error, what string) (action string, ok bool) {
	if err == nil || interpretWriteError(err) != failContent {
		return "", false
	}
	return "none: PostgreSQL refused " + what + ": " + err.Error(), true
}

// ledgerItem is an item as inventory_items holds it.
type ledgerItem struct {
	ref  engine.ItemRef
	snap ItemSnapshot
}

const pageItemsSQL = `SELECT store_id, sku, on_hand, reserved, version, reorder_point, max_per_customer
FROM inventory_items
WHERE store_id = ANY($1) AND (store_id, sku) > ($2, $3)
ORDER BY store_id, sku LIMIT $4`

const absentItemsSQL = `SELECT r.store_id, r.sku FROM unnest($1::text[], $2::text[]) AS r(store_id, sku)
WHERE NOT EXISTS (SELECT 1 FROM inventory_items i WHERE i.store_id = r.store_id AND i.sku = r.sku)`

// candidate is an item Redis has at a higher version than the ledger.
type candidate struct {
	ref engine.ItemRef
}

// partition reconciles one partition: first the items with forks, then
// the gaps the persister saw, then every other ledger item (read from
// PostgreSQL before Redis, so a concurrent persist never looks like Redis
// being behind), then the Redis items the ledger lacks, then the items
// Redis has ahead of the ledger.
func (r *Reconciler) partition(ctx context.Context, p int, stores []string, rep *Report) error {
	ready, err := r.e.PartitionReady(ctx, p)
	if err != nil {
		return err
	}
	if !ready {
		part := p
		f := Finding{Kind: KindPartitionNotReady, Store: "", SKU: "", Partition: &part, Action: "none (check mode)",
			Detail: "partition " + strconv.Itoa(p) + " has no readiness marker"}
		if rep.Mode == ModeRepair {
			err := r.rb.RebuildPartition(ctx, p)
			switch {
			case err == nil:
				f.Action = "rebuilt the partition from the ledger"
			case errors.Is(err, ErrRebuildInProgress):
				f.Action = "none: a rebuild is in progress elsewhere"
			default:
				return err
			}
		}
		rep.Findings = append(rep.Findings, f)
		return nil
	}
	forked, err := r.forks(ctx, p, stores, rep)
	if err != nil {
		return err
	}
	if err := r.gaps(ctx, p, stores, rep); err != nil {
		return err
	}
	var cands []candidate
	after := engine.ItemRef{}
	for len(stores) > 0 {
		rows, err := r.pool.Query(ctx, pageItemsSQL, stores, after.Store, after.SKU, r.cfg.BatchSize)
		if err != nil {
			return fmt.Errorf("reconcile partition %d: %w", p, err)
		}
		page, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ledgerItem, error) {
			var li ledgerItem
			err := row.Scan(&li.ref.Store, &li.ref.SKU, &li.snap.OnHand, &li.snap.Reserved, &li.snap.Version, &li.snap.ReorderPoint, &li.snap.MaxPerCustomer)
			return li, err
		})
		if err != nil {
			return fmt.Errorf("reconcile partition %d: %w", p, err)
		}
		if len(page) == 0 {
			break
		}
		refs := make([]engine.ItemRef, len(page))
		for i := range page {
			refs[i] = page[i].ref
		}
		red, err := r.e.LoadItems(ctx, refs)
		if err != nil {
			return err
		}
		for i := range page {
			if forked[page[i].ref] {
				continue // settled by the fork phase
			}
			rep.ItemsChecked++
			c, err := r.compare(ctx, rep, &page[i], red[i])
			if err != nil {
				return err
			}
			if c != nil {
				cands = append(cands, *c)
			}
		}
		after = page[len(page)-1].ref
		if len(page) < r.cfg.BatchSize {
			break
		}
	}
	err = r.e.ScanItems(ctx, p, r.cfg.BatchSize, func(refs []engine.ItemRef) error {
		ss, ks := make([]string, len(refs)), make([]string, len(refs))
		for i, ref := range refs {
			ss[i], ks[i] = ref.Store, ref.SKU
		}
		rows, err := r.pool.Query(ctx, absentItemsSQL, ss, ks)
		if err != nil {
			return fmt.Errorf("reconcile partition %d: %w", p, err)
		}
		absent, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (engine.ItemRef, error) {
			var ref engine.ItemRef
			err := row.Scan(&ref.Store, &ref.SKU)
			return ref, err
		})
		if err != nil {
			return fmt.Errorf("reconcile partition %d: %w", p, err)
		}
		rep.ItemsChecked += int64(len(absent))
		for _, ref := range absent {
			cands = append(cands, candidate{ref: ref})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(cands) == 0 {
		return nil
	}
	return r.ahead(ctx, p, rep, cands)
}

// compare handles one item the ledger has; it returns a candidate when Redis
// is ahead (decided later, against the stream).
func (r *Reconciler) compare(ctx context.Context, rep *Report, li *ledgerItem, red *engine.Item) (*candidate, error) {
	led := li.snap
	rs := snapshotOf(red)
	switch {
	case red == nil:
		f := Finding{Kind: KindRedisMissing, Store: li.ref.Store, SKU: li.ref.SKU, After: &led}
		return nil, r.restoreRedis(ctx, rep, f, 0)
	case red.Version < led.Version:
		f := Finding{Kind: KindRedisBehind, Store: li.ref.Store, SKU: li.ref.SKU, Before: rs, After: &led}
		return nil, r.restoreRedis(ctx, rep, f, red.Version)
	case red.Version > led.Version:
		return &candidate{ref: li.ref}, nil
	case !rs.sameNumbers(&led):
		// Corruption on one side or the other: the ledger's event of this
		// version is the truth.
		ev, err := r.eventAt(ctx, li.ref, led.Version)
		if err != nil {
			return nil, err
		}
		if ev == nil {
			ev = &led
		}
		f := Finding{Kind: KindCorrupt, Store: li.ref.Store, SKU: li.ref.SKU, Before: rs, After: ev,
			Detail: "same version, different numbers"}
		if !led.sameNumbers(ev) {
			f.Detail += "; inventory_items also differs from the ledger's event"
		}
		if rs.sameNumbers(ev) {
			// Redis is right, inventory_items is not.
			f.Before = &led
			f.Detail = "inventory_items differs from the ledger's event of the same version"
			f.Action = "none (check mode)"
			if rep.Mode == ModeRepair {
				f.Action = "rewrote inventory_items from the ledger"
				if err := r.fixItemsRow(ctx, li.ref, ev); err != nil {
					a, ok := refusedBy(err, "the rewrite of inventory_items")
					if !ok {
						return nil, err
					}
					f.Action = a
				}
			}
			rep.Findings = append(rep.Findings, f)
			return nil, nil
		}
		if rep.Mode == ModeRepair && !led.sameNumbers(ev) {
			if err := r.fixItemsRow(ctx, li.ref, ev); err != nil {
				a, ok := refusedBy(err, "the rewrite of inventory_items")
				if !ok {
					return nil, err
				}
				f.Action = a
				rep.Findings = append(rep.Findings, f)
				return nil, nil
			}
		}
		return nil, r.restoreRedis(ctx, rep, f, red.Version)
	}
	return nil, nil
}

const eventAtSQL = `SELECT version, on_hand, reserved, reorder_point, max_per_customer
FROM inventory_events WHERE store_id = $1 AND sku = $2 AND version = $3`

func (r *Reconciler) eventAt(ctx context.Context, ref engine.ItemRef, v int64) (*ItemSnapshot, error) {
	var s ItemSnapshot
	err := r.pool.QueryRow(ctx, eventAtSQL, ref.Store, ref.SKU, v).Scan(&s.Version, &s.OnHand, &s.Reserved, &s.ReorderPoint, &s.MaxPerCustomer)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger event %s/%s v%d: %w", ref.Store, ref.SKU, v, err)
	}
	return &s, nil
}

const fixItemsRowSQL = `UPDATE inventory_items SET on_hand = $4, reserved = $5, reorder_point = $6, max_per_customer = $7
WHERE store_id = $1 AND sku = $2 AND version = $3`

func (r *Reconciler) fixItemsRow(ctx context.Context, ref engine.ItemRef, s *ItemSnapshot) error {
	if _, err := r.pool.Exec(ctx, fixItemsRowSQL, ref.Store, ref.SKU, s.Version, s.OnHand, s.Reserved, s.ReorderPoint, s.MaxPerCustomer); err != nil {
		return fmt.Errorf("fix inventory_items %s/%s: %w", ref.Store, ref.SKU, err)
	}
	return nil
}

// itemCustomerUnitsSQL is customerUnitsSQL for one item.
const itemCustomerUnitsSQL = `SELECT e.customer,
	sum(CASE e.type WHEN 'SALE' THEN -e.delta_on_hand ELSE e.delta_reserved END)::bigint
FROM inventory_events e
WHERE e.store_id = $1 AND e.sku = $2 AND e.customer <> '' AND (
	(e.type IN ('SALE', 'RESERVE') AND e.max_per_customer IS NOT NULL)
	OR (e.type IN ('RELEASE', 'EXPIRE') AND e.reservation_id <> '' AND EXISTS (
		SELECT 1 FROM inventory_events r
		WHERE r.store_id = e.store_id AND r.reservation_id = e.reservation_id AND r.sku = e.sku
			AND r.type = 'RESERVE' AND r.max_per_customer IS NOT NULL)))
GROUP BY e.customer`

// restoreRedis records f and, in repair mode, overwrites the Redis item with
// f.After (the ledger's state, with its customer units), guarded by the
// version Redis had (expect; 0 for absent).
func (r *Reconciler) restoreRedis(ctx context.Context, rep *Report, f Finding, expect int64) error {
	f.Action = "none (check mode)"
	if rep.Mode == ModeRepair {
		s := engine.ItemState{Store: f.Store, SKU: f.SKU, OnHand: f.After.OnHand, Reserved: f.After.Reserved,
			Version: f.After.Version, ReorderPoint: -1, MaxPerCustomer: -1, UpdatedAt: r.cfg.Clock()}
		if f.After.ReorderPoint != nil {
			s.ReorderPoint = *f.After.ReorderPoint
		}
		if f.After.MaxPerCustomer != nil {
			s.MaxPerCustomer = *f.After.MaxPerCustomer
		}
		// customer units are kept when a limit is cleared, so they are restored either way
		rows, err := r.pool.Query(ctx, itemCustomerUnitsSQL, f.Store, f.SKU)
		if err != nil {
			return fmt.Errorf("customer units of %s/%s: %w", f.Store, f.SKU, err)
		}
		var (
			c string
			n int64
		)
		s.CustomerUnits = map[string]int64{}
		if _, err := pgx.ForEachRow(rows, []any{&c, &n}, func() error {
			if n > 0 {
				s.CustomerUnits[c] = n
			}
			return nil
		}); err != nil {
			return fmt.Errorf("customer units of %s/%s: %w", f.Store, f.SKU, err)
		}
		err = r.e.RestoreItem(ctx, s, expect)
		var vm *engine.VersionMismatchError
		switch {
		case err == nil:
			f.Action = "restored Redis from the ledger"
			n, err := r.restoreHolds(ctx, engine.ItemRef{Store: f.Store, SKU: f.SKU})
			if err != nil {
				return err
			}
			if n > 0 {
				f.Action += fmt.Sprintf(", with %d open reservations", n)
			}
		case errors.As(err, &vm):
			f.Action = fmt.Sprintf("none: the item changed meanwhile (now version %d); the next run decides", vm.Current)
		default:
			return err
		}
	}
	rep.Findings = append(rep.Findings, f)
	return nil
}

// itemOpenHoldsSQL lists the lines of every open reservation (as
// openHoldsSQL finds them) with a line on one item.
const itemOpenHoldsSQL = `SELECT e.reservation_id, e.store_id, e.customer, e.sku, e.delta_reserved, e.expires_at,
	CASE WHEN e.max_per_customer IS NOT NULL AND e.customer <> '' THEN e.delta_reserved ELSE 0 END
FROM inventory_events e
WHERE e.store_id = $1 AND e.type = 'RESERVE' AND e.reservation_id IN (
		SELECT reservation_id FROM inventory_events
		WHERE store_id = $1 AND sku = $2 AND type = 'RESERVE' AND reservation_id <> '')
	AND NOT EXISTS (SELECT 1 FROM inventory_events f
		WHERE f.store_id = e.store_id AND f.reservation_id = e.reservation_id
			AND f.reservation_id <> '' AND f.type <> 'RESERVE')
ORDER BY e.reservation_id, e.stream_id`

// restoreHolds puts back in Redis every open reservation of the ledger with
// a line on ref that Redis lacks (lost with the writes restoreRedis just
// restored), so its units can be committed, released or expire. It returns
// how many it put back.
func (r *Reconciler) restoreHolds(ctx context.Context, ref engine.ItemRef) (int, error) {
	rows, err := r.pool.Query(ctx, itemOpenHoldsSQL, ref.Store, ref.SKU)
	if err != nil {
		return 0, fmt.Errorf("open reservations of %s/%s: %w", ref.Store, ref.SKU, err)
	}
	holds, err := collectHolds(rows)
	if err != nil {
		return 0, fmt.Errorf("open reservations of %s/%s: %w", ref.Store, ref.SKU, err)
	}
	n := 0
	for _, h := range holds {
		_, err := r.e.GetReservation(ctx, h.ID)
		if err == nil {
			continue
		}
		if !errors.Is(err, engine.ErrNotFound) {
			return n, err
		}
		if err := r.e.RestoreReservation(ctx, h); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// streamScanChunk is how many entries one XRANGE of the lag check reads.
const streamScanChunk = 5000

// ahead decides, for the items Redis has at a higher version than the
// ledger, whether that is persister lag (some of the missing versions are
// still in the stream) or lost events, and in repair mode brings the ledger
// to Redis' state for the latter.
func (r *Reconciler) ahead(ctx context.Context, p int, rep *Report, cands []candidate) error {
	// Fresh reads, ledger first: the persister may have caught up.
	refs := make([]engine.ItemRef, len(cands))
	ss, ks := make([]string, len(cands)), make([]string, len(cands))
	for i, c := range cands {
		refs[i] = c.ref
		ss[i], ks[i] = c.ref.Store, c.ref.SKU
	}
	led, err := r.ledgerStates(ctx, ss, ks)
	if err != nil {
		return fmt.Errorf("reconcile partition %d: %w", p, err)
	}
	red, err := r.e.LoadItems(ctx, refs)
	if err != nil {
		return err
	}
	// The versions of these items still in the stream, read after Redis:
	// an event of a version Redis had when read is there unless it was
	// persisted (then the ledger read below shows it) or lost.
	want := map[engine.ItemRef]bool{}
	for _, ref := range refs {
		want[ref] = true
	}
	inStream, err := r.streamVersions(ctx, p, want)
	if err != nil {
		return err
	}
	now, err := r.ledgerStates(ctx, ss, ks)
	if err != nil {
		return fmt.Errorf("reconcile partition %d: %w", p, err)
	}
	dead := r.deadLetteredOnce(ctx, p, want)
	for i, ref := range refs {
		it := red[i]
		l := led[ref]
		var lv int64
		if l != nil {
			lv = l.Version
		}
		if it == nil || it.Version <= lv {
			if it != nil {
				rep.Lagging++ // caught up meanwhile
			}
			continue
		}
		lag := false
		for v := lv + 1; v <= it.Version; v++ {
			if inStream[ref][v] {
				lag = true
				break
			}
		}
		if n := now[ref]; lag || (n != nil && n.Version > lv) {
			rep.Lagging++ // still in the stream, or persisted meanwhile
			continue
		}
		f := Finding{Kind: KindRedisAhead, Store: ref.Store, SKU: ref.SKU, Before: l, After: snapshotOf(it),
			Action: "none (check mode)",
			Detail: fmt.Sprintf("events of versions %d..%d are neither in the ledger nor in the stream", lv+1, it.Version)}
		if dl, err := dead(); err != nil {
			return err
		} else if note := deadNote(dl[ref], lv+1, it.Version); note != "" {
			f.Detail += "; " + note
		}
		if rep.Mode == ModeRepair {
			ok, err := r.reconcileLedger(ctx, rep.RunID, ref, l, it)
			if a, refused := refusedBy(err, "the RECONCILE events"); refused {
				f.Action = a
				rep.Findings = append(rep.Findings, f)
				continue
			}
			if err != nil {
				return err
			}
			if ok {
				f.Action = fmt.Sprintf("wrote %d RECONCILE events to the ledger", it.Version-lv)
			} else {
				f.Action = "none: the ledger changed meanwhile; the next run decides"
			}
		}
		rep.Findings = append(rep.Findings, f)
	}
	return nil
}

// reconcileLedger brings the ledger from state l (nil: no history) to Redis'
// state it with RECONCILE events, one per missing version so versions stay
// 1..N without a gap: versions l+1..N-1 carry no change (their real events
// are lost; we do not invent them) and version N carries the whole
// difference, so the sums of deltas still equal the state. It reports false,
// writing nothing, when some of those versions reached the ledger meanwhile.
func (r *Reconciler) reconcileLedger(ctx context.Context, runID int64, ref engine.ItemRef, l *ItemSnapshot, it *engine.Item) (bool, error) {
	base := ItemSnapshot{}
	if l != nil {
		base = *l
	}
	now := r.cfg.Clock().UTC()
	op := "reconcile:" + strconv.FormatInt(runID, 10)
	n := it.Version - base.Version
	rows := make([][]any, 0, n)
	for v := base.Version + 1; v <= it.Version; v++ {
		ev := engine.Event{Store: ref.Store, SKU: ref.SKU, Version: v, Type: engine.EventReconcile,
			OnHand: base.OnHand, Reserved: base.Reserved, ReorderPoint: base.ReorderPoint, MaxPerCustomer: base.MaxPerCustomer,
			IdempotencyKey: op, Principal: "reconciler", Time: now,
			Reason: fmt.Sprintf("reconciliation run %d: event lost before it was persisted", runID)}
		if v == it.Version {
			ev.DeltaOnHand, ev.DeltaReserved = it.OnHand-base.OnHand, it.Reserved-base.Reserved
			ev.OnHand, ev.Reserved = it.OnHand, it.Reserved
			ev.ReorderPoint, ev.MaxPerCustomer = it.ReorderPoint, it.MaxPerCustomer
			ev.Reason = fmt.Sprintf("reconciliation run %d: brings the ledger to Redis' state", runID)
		}
		rows = append(rows, eventRow(&ev))
	}
	ok := false
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, stagingDDL); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"persist_staging"}, stagingColumns, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, insertEventsSQL)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != n {
			return errRace
		}
		if _, err := tx.Exec(ctx, upsertItemsSQL); err != nil {
			return err
		}
		ok = true
		return nil
	})
	if errors.Is(err, errRace) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reconcile ledger of %s/%s: %w", ref.Store, ref.SKU, err)
	}
	return ok, nil
}

var errRace = errors.New("ledger changed meanwhile")

// streamVersions returns, for the wanted items, the versions whose events
// are in p's stream at or above the persisted floor (everything below it is
// in the ledger).
func (r *Reconciler) streamVersions(ctx context.Context, p int, want map[engine.ItemRef]bool) (map[engine.ItemRef]map[int64]bool, error) {
	out := map[engine.ItemRef]map[int64]bool{}
	gs, _, err := r.e.GroupState(ctx, p, r.cfg.Group)
	if err != nil {
		return nil, fmt.Errorf("reconcile partition %d: %w", p, err)
	}
	// From the persisted floor on; from the start when the group is gone
	// (the zero floor).
	err = r.e.ScanStream(ctx, p, gs.Floor, streamScanChunk, func(msgs []engine.StreamEntry) error {
		for _, m := range msgs {
			ev, err := engine.ParseEvent(m.ID, m.Values)
			if err != nil {
				continue // a poison entry: the persister dead-letters it
			}
			ref := engine.ItemRef{Store: ev.Store, SKU: ev.SKU}
			if !want[ref] {
				continue
			}
			v := ev.Version
			if out[ref] == nil {
				out[ref] = map[int64]bool{}
			}
			out[ref][v] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile partition %d: %w", p, err)
	}
	return out, nil
}

// deadLetters returns, for the wanted items, the versions of their events
// in partition p's dead-letter stream, with why each was dead-lettered.
// Entries that do not parse as events are passed over.
func (r *Reconciler) deadLetters(ctx context.Context, p int, want map[engine.ItemRef]bool) (map[engine.ItemRef]map[int64]string, error) {
	out := map[engine.ItemRef]map[int64]string{}
	err := r.e.ScanDeadLetters(ctx, p, streamScanChunk, func(dls []engine.DeadLetter) error {
		for _, d := range dls {
			ev, err := engine.ParseEvent(d.EntryID, d.Values)
			if err != nil {
				continue
			}
			ref := engine.ItemRef{Store: ev.Store, SKU: ev.SKU}
			if !want[ref] {
				continue
			}
			if out[ref] == nil {
				out[ref] = map[int64]string{}
			}
			out[ref][ev.Version] = d.Error
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile partition %d: dead letters: %w", p, err)
	}
	return out, nil
}

// deadLetteredOnce returns a function that reads deadLetters on its first
// call and returns the same on later ones.
func (r *Reconciler) deadLetteredOnce(ctx context.Context, p int, want map[engine.ItemRef]bool) func() (map[engine.ItemRef]map[int64]string, error) {
	var (
		done bool
		dl   map[engine.ItemRef]map[int64]string
		err  error
	)
	return func() (map[engine.ItemRef]map[int64]string, error) {
		if !done {
			dl, err = r.deadLetters(ctx, p, want)
			done = true
		}
		return dl, err
	}
}

// deadNote says which of the versions lo..hi the persister dead-lettered,
// and why; "" when none.
func deadNote(vs map[int64]string, lo, hi int64) string {
	var in []int64
	for v := range vs {
		if v >= lo && v <= hi {
			in = append(in, v)
		}
	}
	if len(in) == 0 {
		return ""
	}
	sort.Slice(in, func(i, j int) bool { return in[i] < in[j] })
	const most = 5
	parts := make([]string, 0, min(len(in), most))
	for _, v := range in[:min(len(in), most)] {
		parts = append(parts, fmt.Sprintf("version %d: %s", v, vs[v]))
	}
	note := "dead-lettered by the persister: " + strings.Join(parts, "; ")
	if len(in) > most {
		note += fmt.Sprintf("; and %d more", len(in)-most)
	}
	return note
}

const ledgerStatesSQL = `SELECT i.store_id, i.sku, i.on_hand, i.reserved, i.version, i.reorder_point, i.max_per_customer
FROM inventory_items i
JOIN unnest($1::text[], $2::text[]) AS r(store_id, sku) ON i.store_id = r.store_id AND i.sku = r.sku`

// ledgerStates reads inventory_items for the given items (parallel slices).
func (r *Reconciler) ledgerStates(ctx context.Context, stores, skus []string) (map[engine.ItemRef]*ItemSnapshot, error) {
	rows, err := r.pool.Query(ctx, ledgerStatesSQL, stores, skus)
	if err != nil {
		return nil, err
	}
	out := map[engine.ItemRef]*ItemSnapshot{}
	var (
		ref engine.ItemRef
		s   ItemSnapshot
	)
	if _, err := pgx.ForEachRow(rows, []any{&ref.Store, &ref.SKU, &s.OnHand, &s.Reserved, &s.Version, &s.ReorderPoint, &s.MaxPerCustomer}, func() error {
		c := s
		out[ref] = &c
		return nil
	}); err != nil {
		return nil, err
	}
	return out, nil
}
