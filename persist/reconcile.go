package persist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
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
	Version  int64 `json:"version"`
	OnHand   int64 `json:"on_hand"`
	Reserved int64 `json:"reserved"`
	// States are the states of docs/design.md §2.1.
	engine.States
	ReorderPoint   *int64 `json:"reorder_point"`
	MaxPerCustomer *int64 `json:"max_per_customer"`
	SafetyStock    *int64 `json:"safety_stock"`
}

// snapStateColumns are the columns of an item's states in inventory_items
// and inventory_events, in the order of statesDest.
const snapStateColumns = `committed, damaged, quality_control, display, incoming, safety_stock`

// statesDest returns scan destinations for snapStateColumns.
func (s *ItemSnapshot) statesDest() []any {
	return []any{&s.Committed, &s.Damaged, &s.QualityControl, &s.Display, &s.Incoming, &s.SafetyStock}
}

// scanDest returns dest followed by statesDest.
func (s *ItemSnapshot) scanDest(dest ...any) []any { return append(dest, s.statesDest()...) }

func (s *ItemSnapshot) sameNumbers(o *ItemSnapshot) bool {
	return s.OnHand == o.OnHand && s.Reserved == o.Reserved && s.States == o.States &&
		eqOpt(s.ReorderPoint, o.ReorderPoint) && eqOpt(s.MaxPerCustomer, o.MaxPerCustomer) &&
		eqOpt(s.SafetyStock, o.SafetyStock)
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
	return &ItemSnapshot{Version: it.Version, OnHand: it.OnHand, Reserved: it.Reserved, States: it.States,
		ReorderPoint: it.ReorderPoint, MaxPerCustomer: it.MaxPerCustomer, SafetyStock: it.SafetyStock}
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
	// Parallel is how many partitions a run reconciles at once. Defaults
	// to 4.
	Parallel int
	// ProgressInterval is how often a run logs its progress. Defaults to
	// 10s.
	ProgressInterval time.Duration
	// CancelPollInterval is how often a run checks its record for a
	// cancellation asked from another process (RequestCancel). Defaults to
	// 1s.
	CancelPollInterval time.Duration
	// Clock returns the current time. Defaults to time.Now.
	Clock func() time.Time
	// Logger receives the reconciler's logs. Defaults to zap.NewNop().
	Logger *zap.Logger
	// Repaired, when set, hears of the stock changes a repair made that no
	// stream event announced, so the webhooks' crossings fire from
	// reconciliation too (webhook.Store.Enqueue): the RECONCILE event that
	// brings the ledger to Redis' state (redis_ahead), and, when Redis is
	// restored from the ledger (redis_behind, corrupt), a RECONCILE event
	// from Redis' state before to the ledger's (an item Redis did not have
	// is not announced). Its error is logged; the repair stands.
	Repaired func(ctx context.Context, events []engine.Event) error
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
	if c.Parallel == 0 {
		c.Parallel = 4
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = 10 * time.Second
	}
	if c.CancelPollInterval == 0 {
		c.CancelPollInterval = time.Second
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
	case c.Parallel < 1 || c.Parallel > 256:
		return fmt.Errorf("reconciler config: Parallel must be 1..256, got %d", c.Parallel)
	case c.ProgressInterval < time.Millisecond:
		return fmt.Errorf("reconciler config: ProgressInterval must be at least 1ms, got %s", c.ProgressInterval)
	case c.CancelPollInterval < time.Millisecond:
		return fmt.Errorf("reconciler config: CancelPollInterval must be at least 1ms, got %s", c.CancelPollInterval)
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
	// counters are the runs' counts, for Stats.
	counters reconcilerCounters
	// progress follows the run in progress.
	progress runProgress
	// beforeForkRestore, when set (tests), runs in a fork merge just before
	// Redis is restored.
	beforeForkRestore func(engine.ItemRef)
	// afterPage, when set (tests), runs after each page of ledger items a
	// run compared.
	afterPage func(ctx context.Context, p int)
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
var ErrReconcileInProgress error = inProgressError{}

// inProgressError is ErrReconcileInProgress: a state that passes, so callers
// that map errors to answers treat it as unavailable for now (an HTTP API
// answers 503 with Retry-After).
type inProgressError struct{}

func (inProgressError) Error() string     { return "a reconciliation run is in progress" }
func (inProgressError) Unavailable() bool { return true }

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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.progress.begin(rep.RunID, cancel, len(r.cfg.Partitions))
	defer r.progress.end()
	stopWatch := r.watchCancel(ctx, rep.RunID)
	defer stopWatch()
	r.log.Info("reconciliation run started", zap.Int64(logRunID, rep.RunID), zap.String(logMode, string(mode)),
		zap.Int(logPartitions, len(r.cfg.Partitions)), zap.Int(logParallel, r.cfg.Parallel))
	stopLog := r.logProgress(ctx, rep.RunID)
	stores, runErr := storesByPartition(ctx, r.e, r.pool)
	if runErr == nil {
		runErr = r.partitions(ctx, rep, stores)
	}
	if runErr == nil {
		runErr = r.transfers(ctx, rep)
	}
	stopLog()
	if runErr != nil && (r.progress.cancelled() || errors.Is(runErr, context.Canceled)) {
		runErr = fmt.Errorf("reconcile run %d after %d items: %w", rep.RunID, rep.ItemsChecked, ErrReconcileCancelled)
	}
	rep.FinishedAt = r.cfg.Clock().UTC()
	if err := r.record(context.WithoutCancel(ctx), rep, runErr); err != nil && runErr == nil {
		runErr = err
	}
	r.counters.count(rep, runErr)
	r.log.Info("reconciliation run over", zap.Int64(logRunID, rep.RunID), zap.String(logMode, string(mode)),
		zap.Int64(logChecked, rep.ItemsChecked), zap.Int(logFindings, len(rep.Findings)),
		zap.Duration(logTook, rep.FinishedAt.Sub(rep.StartedAt)), zap.Error(runErr))
	return rep, runErr
}

// partitions reconciles the configured partitions, Parallel at a time, each
// into a report of its own, and adds those to rep in partition order. The
// first error cancels the partitions still running and is returned; what
// every partition found until then is kept.
func (r *Reconciler) partitions(ctx context.Context, rep *Report, stores map[int][]string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parts := make([]*Report, len(r.cfg.Partitions))
	var (
		errMu    sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
		cancel()
	}
	sem := make(chan struct{}, r.cfg.Parallel)
	var wg sync.WaitGroup
	for i, p := range r.cfg.Partitions {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if err := ctx.Err(); err != nil {
			fail(err)
			break
		}
		parts[i] = &Report{RunID: rep.RunID, Mode: rep.Mode, StartedAt: rep.StartedAt, Findings: []Finding{}}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := r.persisterFailures(ctx, p, parts[i])
			if err == nil {
				err = r.partition(ctx, p, stores[p], parts[i])
			}
			if err == nil {
				err = r.missingTransfers(ctx, p, stores[p], rep.Mode, parts[i])
			}
			if err != nil {
				fail(err)
				return
			}
			r.progress.partitionDone()
			r.log.Debug("partition reconciled", zap.Int64(logRunID, rep.RunID), zap.Int(logPartition, p),
				zap.Int64(logChecked, parts[i].ItemsChecked), zap.Int(logFindings, len(parts[i].Findings)))
		}()
	}
	wg.Wait()
	for _, pr := range parts {
		if pr == nil {
			continue
		}
		rep.ItemsChecked += pr.ItemsChecked
		rep.Lagging += pr.Lagging
		rep.Findings = append(rep.Findings, pr.Findings...)
	}
	return firstErr
}

// logProgress logs the run's progress every ProgressInterval until the
// returned function is called.
func (r *Reconciler) logProgress(ctx context.Context, run int64) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(r.cfg.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				st := r.progress.snapshot()
				r.log.Info("reconciliation progress", zap.Int64(logRunID, run),
					zap.Int(logPartitions+"_done", st.PartitionsDone), zap.Int(logPartitions, st.Partitions),
					zap.Int64(logChecked, st.ItemsChecked), zap.Duration(logTook, time.Duration(st.Seconds*float64(time.Second))))
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// ErrReconcileCancelled is returned by Reconcile when the run was cancelled
// (Cancel, or its context): the run is recorded with what it found until
// then, and its lock released.
var ErrReconcileCancelled = errors.New("reconciliation run cancelled")

// Cancel cancels the reconciliation run in progress in this Reconciler, if
// any, and reports whether there was one. The run stops within a round trip
// or two, records what it found and releases its lock; its Reconcile
// returns ErrReconcileCancelled.
func (r *Reconciler) Cancel() bool { return r.progress.cancel() }

// RunProgress is the progress of the run in progress, or of the last run.
type RunProgress struct {
	// Running is true while a run is in progress.
	Running bool `json:"running"`
	// Partitions counts the run's partitions, PartitionsDone those
	// finished.
	Partitions     int `json:"partitions"`
	PartitionsDone int `json:"partitions_done"`
	// ItemsChecked counts the ledger's items compared so far.
	ItemsChecked int64 `json:"items_checked"`
	// Seconds is how long the run has run (or ran).
	Seconds float64 `json:"seconds"`
}

// runProgress follows the run in progress.
type runProgress struct {
	mu             sync.Mutex
	running        bool
	run            int64
	start          time.Time
	took           time.Duration
	stop           context.CancelFunc
	wasCancelled   bool
	partitions     int
	partitionsDone int
	checked        atomic.Int64
}

func (g *runProgress) begin(run int64, stop context.CancelFunc, partitions int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running, g.run, g.start, g.stop, g.wasCancelled = true, run, time.Now(), stop, false
	g.partitions, g.partitionsDone = partitions, 0
	g.checked.Store(0)
}

func (g *runProgress) end() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running, g.stop, g.took = false, nil, time.Since(g.start)
}

func (g *runProgress) partitionDone() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.partitionsDone++
}

func (g *runProgress) addChecked(n int) { g.checked.Add(int64(n)) }

func (g *runProgress) cancel() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.running || g.stop == nil {
		return false
	}
	g.wasCancelled = true
	g.stop()
	return true
}

// cancelRun cancels the run in progress if it is run.
func (g *runProgress) cancelRun(run int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running && g.stop != nil && g.run == run {
		g.wasCancelled = true
		g.stop()
	}
}

func (g *runProgress) cancelled() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.wasCancelled
}

func (g *runProgress) snapshot() RunProgress {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := RunProgress{Running: g.running, Partitions: g.partitions, PartitionsDone: g.partitionsDone,
		ItemsChecked: g.checked.Load(), Seconds: g.took.Seconds()}
	if g.running {
		st.Seconds = time.Since(g.start).Seconds()
	}
	return st
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

// repaired tells Repaired of ev, if it is set.
func (r *Reconciler) repaired(ctx context.Context, ev engine.Event) {
	if r.cfg.Repaired == nil {
		return
	}
	if err := r.cfg.Repaired(ctx, []engine.Event{ev}); err != nil {
		r.log.Warn("announce a repair", zap.String("store", ev.Store), zap.String("sku", ev.SKU), zap.Error(err))
	}
}
