package persist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/shelfline/inventory/engine"
)

// Log keys.
const (
	logPartition    = "partition"
	logConsumer     = "consumer"
	logEntries      = "entries"
	logStreamID     = "stream_id"
	logBackoff      = "backoff"
	logForks        = "forks"
	logHeldBack     = "held_back"
	logItems        = "items"
	logReservations = "reservations"
	logTook         = "took"
	logRunID        = "run_id"
	logFindings     = "findings"
	logFailures     = "failures"
	logFailingFor   = "failing_for"
	logPartitions   = "partitions"
	logParallel     = "parallel"
	logRestored     = "items_restored"
	logFailed       = "failed"
	logChecked      = "items_checked"
	logMode         = "mode"
)

// PersisterConfig configures a Persister. The zero value of every field
// selects its documented default.
type PersisterConfig struct {
	// Partitions lists the partitions this worker drains. Defaults to all of
	// the engine's partitions. Workers may overlap: the consumer group shares
	// a partition's entries between them.
	Partitions []int
	// Group is the consumer group. Defaults to "persister".
	Group string
	// Consumer names this worker in the group. A worker restarted under the
	// same name picks up its own pending entries at once; entries of a name
	// that never comes back are reclaimed after ClaimIdle. Defaults to
	// "<hostname>-<pid>".
	Consumer string
	// BatchSize is the most entries written in one transaction. Defaults to
	// 5000.
	BatchSize int
	// Linger is how long a batch waits for more entries once it has some.
	// Defaults to 20ms; negative disables lingering.
	Linger time.Duration
	// Block is how long one read waits for new entries (XREADGROUP BLOCK).
	// Stopping takes up to this long. Defaults to 1s. Each owned partition
	// holds one Redis connection while it blocks, so the client's pool must
	// be larger than the number of owned partitions.
	Block time.Duration
	// ClaimIdle is how long an entry must sit pending on another consumer
	// before this worker takes it over (XAUTOCLAIM). Defaults to 5s.
	ClaimIdle time.Duration
	// ClaimInterval is how often a partition looks for such entries.
	// Defaults to 1s.
	ClaimInterval time.Duration
	// RetentionWindow is how long persisted entries stay in the stream, so
	// live feeds can resume. Defaults to 10m.
	RetentionWindow time.Duration
	// RetentionCount caps the persisted entries kept per partition (within
	// what this worker can count), so the stream stays far below the
	// engine's high watermark at high rates. Defaults to 100000.
	RetentionCount int64
	// TrimInterval is the least time between two trims of one stream.
	// Defaults to 1s.
	TrimInterval time.Duration
	// Downstream names the other consumer groups on the streams whose
	// unacknowledged entries are never trimmed either: the webhook workers'
	// and the Kafka relay's. A group that does not exist on a stream is
	// not waited for. Defaults to DownstreamGroups; an empty, non-nil list
	// waits for none.
	Downstream []string
	// DownstreamMaxLag bounds that wait: a Downstream group whose oldest
	// unacknowledged entry is older than this stops holding the partition's
	// trimming until it has caught up (downstream.go). Defaults to 24h;
	// negative never releases a group for its lag.
	DownstreamMaxLag time.Duration
	// DownstreamMaxBacklog is the most entries a Downstream group may leave
	// unacknowledged on a partition and still hold its trimming. Defaults
	// to half the engine's stream high watermark (250000 when it has none);
	// negative never releases a group for its backlog.
	DownstreamMaxBacklog int64
	// RetryMin and RetryMax bound the exponential backoff after a failed
	// write (PostgreSQL or Redis unreachable). Default to 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// DeadLetterMaxLen caps a partition's dead-letter stream (approximately).
	// Defaults to 100000.
	DeadLetterMaxLen int64
	// FailingAfter is how long a partition's attempts to read or write its
	// events must keep failing, with no success in between (or one write
	// must keep running), before the partition counts as failing: in Stats,
	// and in a record in Redis that the reconciler's runs report from any
	// process. Defaults to 5s.
	FailingAfter time.Duration
	// BeforeWrite, when set, runs after a batch's entries are read and
	// parsed, before its transaction begins; BeforeCommit runs inside each
	// batch's transaction just before COMMIT; AfterCommit runs after COMMIT
	// and before XACK. For failure injection in tests: a hook that returns
	// an error stops Run with that error and leaves the batch
	// unacknowledged, as a crash at that point would (BeforeCommit's error
	// also rolls the batch back).
	BeforeWrite, BeforeCommit, AfterCommit func(ctx context.Context, partition int, events []engine.Event) error
	// Clock returns the current time (retention, health). Defaults to
	// time.Now.
	Clock func() time.Time
	// Logger receives the persister's logs. Defaults to zap.NewNop().
	Logger *zap.Logger
}

func (c PersisterConfig) withDefaults(e *engine.Engine) PersisterConfig {
	if c.Partitions == nil {
		c.Partitions = allPartitions(e)
	} else {
		c.Partitions = append([]int(nil), c.Partitions...)
	}
	if c.Group == "" {
		c.Group = "persister"
	}
	if c.Consumer == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "persister"
		}
		c.Consumer = host + "-" + strconv.Itoa(os.Getpid())
	}
	if c.BatchSize == 0 {
		c.BatchSize = 5000
	}
	if c.Linger == 0 {
		c.Linger = 20 * time.Millisecond
	}
	if c.Block == 0 {
		c.Block = time.Second
	}
	if c.ClaimIdle == 0 {
		c.ClaimIdle = 5 * time.Second
	}
	if c.ClaimInterval == 0 {
		c.ClaimInterval = time.Second
	}
	if c.RetentionWindow == 0 {
		c.RetentionWindow = 10 * time.Minute
	}
	if c.RetentionCount == 0 {
		c.RetentionCount = 100000
	}
	if c.TrimInterval == 0 {
		c.TrimInterval = time.Second
	}
	if c.Downstream == nil {
		c.Downstream = DownstreamGroups
	} else {
		c.Downstream = append([]string(nil), c.Downstream...)
	}
	if c.DownstreamMaxLag == 0 {
		c.DownstreamMaxLag = DefaultDownstreamMaxLag
	}
	if c.DownstreamMaxBacklog == 0 {
		c.DownstreamMaxBacklog = 250000
		if w := e.StreamHighWatermark(); w > 0 {
			c.DownstreamMaxBacklog = max(w/2, 1)
		}
	}
	if c.RetryMin == 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.DeadLetterMaxLen == 0 {
		c.DeadLetterMaxLen = 100000
	}
	if c.FailingAfter == 0 {
		c.FailingAfter = 5 * time.Second
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// DefaultDownstreamMaxLag is PersisterConfig.DownstreamMaxLag's default.
const DefaultDownstreamMaxLag = 24 * time.Hour

func (c PersisterConfig) validate(e *engine.Engine) error {
	if err := validPartitions("persister", c.Partitions, e); err != nil {
		return err
	}
	switch {
	case c.BatchSize < 1 || c.BatchSize > 100000:
		return fmt.Errorf("persister config: BatchSize must be 1..100000, got %d", c.BatchSize)
	case c.Block < time.Millisecond:
		return fmt.Errorf("persister config: Block must be at least 1ms, got %s", c.Block)
	case c.ClaimIdle < 10*time.Millisecond:
		return fmt.Errorf("persister config: ClaimIdle must be at least 10ms, got %s", c.ClaimIdle)
	case c.ClaimInterval < time.Millisecond:
		return fmt.Errorf("persister config: ClaimInterval must be at least 1ms, got %s", c.ClaimInterval)
	case c.RetentionWindow < 0:
		return fmt.Errorf("persister config: RetentionWindow must not be negative, got %s", c.RetentionWindow)
	case c.RetentionCount < 0:
		return fmt.Errorf("persister config: RetentionCount must not be negative, got %d", c.RetentionCount)
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return fmt.Errorf("persister config: RetryMin (%s) and RetryMax (%s) must be positive, RetryMin <= RetryMax", c.RetryMin, c.RetryMax)
	case c.DeadLetterMaxLen < 1:
		return fmt.Errorf("persister config: DeadLetterMaxLen must be positive, got %d", c.DeadLetterMaxLen)
	case c.FailingAfter < 0:
		return fmt.Errorf("persister config: FailingAfter must not be negative, got %s", c.FailingAfter)
	}
	return nil
}

// PersisterStats are a Persister's counters since it was made.
type PersisterStats struct {
	// EventsPersisted counts events written as new ledger rows.
	EventsPersisted int64 `json:"events_persisted"`
	// EntriesAcked counts stream entries acknowledged (persisted,
	// re-delivered duplicates and dead letters).
	EntriesAcked int64 `json:"entries_acked"`
	// Batches counts committed transactions.
	Batches int64 `json:"batches"`
	// DeadLetters counts entries moved to a dead-letter stream: those that
	// do not parse, and those PostgreSQL refuses for their content.
	DeadLetters int64 `json:"dead_letters"`
	// Forks counts fork findings recorded (events of a version the ledger
	// holds under another operation id, held back).
	Forks int64 `json:"forks"`
	// HeldBack counts the other events held back because their item has a
	// fork (recorded as held_back findings until the reconciler merges them).
	HeldBack int64 `json:"held_back"`
	// Claimed counts entries taken over from other consumers.
	Claimed int64 `json:"claimed"`
	// WriteErrors counts failed attempts to write a batch (each retried).
	// An event PostgreSQL refuses for its content is dead-lettered, not
	// retried, and not counted here.
	WriteErrors int64 `json:"write_errors"`
	// LastBatchSize is the number of entries of the last committed batch.
	LastBatchSize int64 `json:"last_batch_size"`
	// Lag is, per owned partition whose lag was measured, its entries not
	// yet persisted: the consumer group's pending entries plus those never
	// delivered. It is measured every TrimInterval, also while a batch is
	// being retried. The group is shared, so every worker of a partition
	// reports the same number.
	Lag map[int]int64 `json:"lag"`
	// Partitions is, per owned partition, its lag and health.
	Partitions map[int]PartitionStats `json:"partitions"`
	// Downstream is, per Downstream group ever released on an owned
	// partition, its releases (see PersisterConfig.DownstreamMaxLag).
	Downstream map[string]DownstreamStats `json:"downstream,omitempty"`
}

// PartitionStats is one owned partition's lag and health.
type PartitionStats struct {
	// Lag is as in PersisterStats.Lag; -1 before it was first measured.
	Lag int64 `json:"lag"`
	// Failing is set when the partition's attempts to read or write its
	// events have failed for at least FailingAfter with no success in
	// between, or one write has been running that long.
	Failing bool `json:"failing"`
	// FailingSince is when the first of those failures happened (or the
	// running write began); nil while the partition is healthy.
	FailingSince *time.Time `json:"failing_since,omitempty"`
	// Failures counts the failed attempts since the last success.
	Failures int64 `json:"failures"`
	// LastError is the last failure's message; empty after a success.
	LastError string `json:"last_error,omitempty"`
	// LastSuccess is when the partition last wrote a batch or found nothing
	// left to write (when its worker started, before either).
	LastSuccess time.Time `json:"last_success"`
}

// Persister drains partitions' event streams into the ledger. Construct it
// with NewPersister and call Run. Many persisters, in one process or many,
// may run at once.
type Persister struct {
	e    *engine.Engine
	pool *pgxpool.Pool
	cfg  PersisterConfig
	// cons is this worker in its consumer group.
	cons engine.Consumer
	log  *zap.Logger

	events, acked, batches, deadLetters, forks, heldBack, claimed, writeErrors, lastBatch atomic.Int64

	mu     sync.Mutex
	health map[int]*partitionHealth
	// released is, per downstream group, the partitions where it holds no
	// trimming now; releases counts the times it stopped holding one
	// (downstream.go).
	released map[string]map[int]bool
	releases map[string]int64
}

// partitionHealth is what Stats reports of one partition, under mu.
type partitionHealth struct {
	lag          int64 // -1: not measured yet
	lastSuccess  time.Time
	failingSince time.Time // zero while healthy
	failures     int64
	lastErr      string
	writingSince time.Time // a write in flight began then; zero when none
}

// NewPersister returns a persister draining e's streams into pool (whose
// search_path names the ledger's schema). It errors on an invalid config.
func NewPersister(e *engine.Engine, pool *pgxpool.Pool, cfg PersisterConfig) (*Persister, error) {
	if e == nil || pool == nil {
		return nil, errors.New("persister: engine and pool are required")
	}
	cfg = cfg.withDefaults(e)
	if err := cfg.validate(e); err != nil {
		return nil, err
	}
	health := make(map[int]*partitionHealth, len(cfg.Partitions))
	for _, part := range cfg.Partitions {
		health[part] = &partitionHealth{lag: -1}
	}
	return &Persister{e: e, pool: pool, cfg: cfg, cons: engine.Consumer{Group: cfg.Group, Name: cfg.Consumer},
		log: cfg.Logger.With(zap.String(logConsumer, cfg.Consumer)), health: health}, nil
}

// Stats returns a snapshot of the counters. Safe for concurrent use.
func (p *Persister) Stats() PersisterStats {
	s := PersisterStats{
		EventsPersisted: p.events.Load(), EntriesAcked: p.acked.Load(), Batches: p.batches.Load(),
		DeadLetters: p.deadLetters.Load(), Forks: p.forks.Load(), HeldBack: p.heldBack.Load(), Claimed: p.claimed.Load(),
		WriteErrors: p.writeErrors.Load(), LastBatchSize: p.lastBatch.Load(), Lag: map[int]int64{},
		Partitions: make(map[int]PartitionStats, len(p.health)),
	}
	now := p.cfg.Clock()
	p.mu.Lock()
	defer p.mu.Unlock()
	for part, h := range p.health {
		ps := PartitionStats{Lag: h.lag, Failures: h.failures, LastError: h.lastErr, LastSuccess: h.lastSuccess}
		if h.lag >= 0 {
			s.Lag[part] = h.lag
		}
		since := h.failingSince
		if !h.writingSince.IsZero() && now.Sub(h.writingSince) >= p.cfg.FailingAfter && (since.IsZero() || h.writingSince.Before(since)) {
			since = h.writingSince
			if ps.LastError == "" {
				ps.LastError = fmt.Sprintf("a write to PostgreSQL has been running for %s", now.Sub(since).Round(time.Millisecond))
			}
		}
		if !since.IsZero() {
			t := since
			ps.FailingSince = &t
			ps.Failing = now.Sub(since) >= p.cfg.FailingAfter
		}
		s.Partitions[part] = ps
	}
	for g, n := range p.releases {
		ds := DownstreamStats{Releases: n}
		for part := range p.released[g] {
			ds.Released = append(ds.Released, part)
		}
		slices.Sort(ds.Released)
		if s.Downstream == nil {
			s.Downstream = map[string]DownstreamStats{}
		}
		s.Downstream[g] = ds
	}
	return s
}

// Run drains the owned partitions until ctx is done, then returns nil. A
// batch in flight at cancellation is abandoned (rolled back, left pending for
// the next run) unless it already committed, in which case it is
// acknowledged. PostgreSQL or Redis failures are retried with backoff and
// never end Run; only an error from a failure-injection hook does.
func (p *Persister) Run(ctx context.Context) error {
	if len(p.cfg.Partitions) == 0 {
		<-ctx.Done()
		return nil
	}
	start := p.cfg.Clock()
	p.mu.Lock()
	for _, h := range p.health {
		if h.lastSuccess.IsZero() {
			h.lastSuccess = start
		}
	}
	p.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for _, part := range p.cfg.Partitions {
		wg.Add(1)
		go func(part int) {
			defer wg.Done()
			if err := p.runPartition(ctx, part); err != nil {
				once.Do(func() { firstErr = err; cancel() })
			}
		}(part)
	}
	wg.Wait()
	return firstErr
}

// partition is one owned partition's reading state.
type partition struct {
	id       int
	readOwn  bool            // re-read this consumer's pending entries first
	claimAt  engine.StreamID // where the next look for idle entries starts
	lastClm  time.Time
	lastTrim time.Time
	lastLag  time.Time // when the lag was last measured
	// published is set while this worker's failure record for the
	// partition is in Redis; reported once the failures were logged as the
	// partition failing.
	published, reported bool
	// persisted records, per acknowledged batch, its highest id and the
	// running count of entries acknowledged, to find the RetentionCount cut;
	// before is the running count before persisted[0].
	persisted []mark
	total     int64
	before    int64
	// fence is the rebuild's fence read before the entries being written
	// (fence.go); nil: read it before reading entries.
	fence *fence
	// released holds the Downstream groups that hold none of the
	// partition's trimming now (downstream.go).
	released map[string]bool
}

type mark struct {
	id  engine.StreamID
	cum int64
}

func (p *Persister) runPartition(ctx context.Context, part int) error {
	st := &partition{id: part, readOwn: true}
	log := p.log.With(zap.Int(logPartition, part))
	defer p.unpublish(ctx, st) // a stopped worker is not a failing one
	backoff := p.cfg.RetryMin
	groupOK := false
	for ctx.Err() == nil {
		if !groupOK {
			if err := p.e.CreateGroup(ctx, part, p.cfg.Group); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				p.failed(ctx, st, err, log)
				log.Warn("cannot create consumer group, retrying", zap.Error(err))
				sleep(ctx, backoff)
				backoff = nextBackoff(backoff, p.cfg.RetryMax)
				continue
			}
			groupOK = true
		}
		if st.fence == nil {
			f, err := readFence(ctx, p.pool, part)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if gs, ok, gerr := p.e.GroupState(ctx, part, p.cfg.Group); gerr == nil && ok && gs.Unacked == 0 {
					// Nothing to write: PostgreSQL being out of reach
					// fails no write yet (as before the fence was read).
					p.setLag(st, 0)
					p.succeeded(ctx, st, log)
				} else {
					p.failed(ctx, st, err, log)
				}
				log.Warn("read the rebuild fence, retrying", zap.Error(err))
				p.wait(ctx, st, backoff)
				backoff = nextBackoff(backoff, p.cfg.RetryMax)
				continue
			}
			st.fence = f
		}
		msgs, err := p.next(ctx, st)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, engine.ErrNoGroup) {
				log.Info("stream or consumer group gone, recreating it", zap.Error(err))
				groupOK = false
				st.persisted, st.total, st.before, st.claimAt = nil, 0, 0, engine.StreamID{}
				continue
			}
			p.failed(ctx, st, err, log)
			log.Warn("read stream, retrying", zap.Error(err))
			sleep(ctx, backoff)
			backoff = nextBackoff(backoff, p.cfg.RetryMax)
			continue
		}
		backoff = p.cfg.RetryMin
		if len(msgs) > 0 {
			if err := p.process(ctx, st, msgs, log); err != nil {
				return err
			}
		} else {
			p.succeeded(ctx, st, log)
		}
		if p.cfg.Clock().Sub(st.lastTrim) >= p.cfg.TrimInterval {
			if err := p.trim(ctx, st); err != nil && ctx.Err() == nil {
				log.Warn("trim stream", zap.Error(err))
			}
			st.lastTrim = p.cfg.Clock()
		}
	}
	return nil
}

// next returns the next entries to persist: entries idle on another
// consumer when it is time to look, else this consumer's own pending entries
// (after a restart or a failed ack), else new entries, lingering for more.
func (p *Persister) next(ctx context.Context, st *partition) ([]engine.StreamEntry, error) {
	n := p.cfg.BatchSize
	if time.Since(st.lastClm) >= p.cfg.ClaimInterval {
		st.lastClm = time.Now()
		msgs, cursor, err := p.e.ClaimIdle(ctx, st.id, p.cons, p.cfg.ClaimIdle, st.claimAt, n)
		if err != nil {
			return nil, err
		}
		st.claimAt = cursor
		if !cursor.IsZero() {
			st.lastClm = time.Time{} // more to claim: look again next round
		}
		if len(msgs) > 0 {
			p.claimed.Add(int64(len(msgs)))
			return msgs, nil
		}
	}
	if st.readOwn {
		msgs, err := p.e.ReadPending(ctx, st.id, p.cons, n)
		if err != nil {
			return nil, err
		}
		if len(msgs) > 0 {
			return msgs, nil
		}
		st.readOwn = false
	}
	msgs, err := p.e.ReadNew(ctx, st.id, p.cons, n, p.cfg.Block)
	if err != nil || len(msgs) == 0 || p.cfg.Linger < 0 {
		return msgs, err
	}
	deadline := time.Now().Add(p.cfg.Linger)
	for len(msgs) < p.cfg.BatchSize {
		left := time.Until(deadline)
		if left < time.Millisecond {
			break
		}
		more, err := p.e.ReadNew(ctx, st.id, p.cons, n-len(msgs), left)
		if err != nil {
			if errors.Is(err, engine.ErrNoGroup) || ctx.Err() != nil {
				return nil, err
			}
			break // persist what we have; the error will show on the next read
		}
		if len(more) == 0 {
			break
		}
		msgs = append(msgs, more...)
	}
	return msgs, nil
}

// process persists one batch: writes its events, retrying with backoff
// until PostgreSQL takes them or ctx is done; dead-letters the entries that
// do not parse and those PostgreSQL refuses for their content; then
// acknowledges every entry it wrote or dead-lettered. It returns an error
// only from a failure-injection hook.
func (p *Persister) process(ctx context.Context, st *partition, msgs []engine.StreamEntry, log *zap.Logger) error {
	events := make([]engine.Event, 0, len(msgs))
	from := make([]int, 0, len(msgs)) // events[i] is msgs[from[i]]
	dead := map[int]error{}           // by index in msgs: why it goes to the dead-letter stream
	for i, m := range msgs {
		ev, err := engine.ParseEvent(m.ID, m.Values)
		if err != nil {
			dead[i] = err
			continue
		}
		events = append(events, ev)
		from = append(from, i)
	}
	written := events
	if len(events) > 0 && p.cfg.BeforeWrite != nil {
		if err := p.cfg.BeforeWrite(ctx, st.id, events); err != nil {
			return fmt.Errorf("partition %d: %w", st.id, &hookError{err: err})
		}
	}
	if len(events) > 0 {
		backoff := p.cfg.RetryMin
		var refused []refusal
		for {
			p.setWriting(st.id, p.cfg.Clock())
			res, rf, err := writeEvents(ctx, p.pool, st.id, events, st.fence, p.cfg.BeforeCommit)
			p.setWriting(st.id, time.Time{})
			p.count(res, log)
			if err == nil {
				refused = rf
				break
			}
			if errors.Is(err, errFenced) {
				// Read before a rebuild of the partition raised its fence:
				// from the Redis that lost its data, or from the rebuilt
				// one before the fence was read again. Not written, not
				// acknowledged: what the Redis of now holds is read again,
				// under the new fence (fence.go).
				log.Info("partition rebuilt since the batch was read: reading again", zap.Int(logEntries, len(events)))
				st.fence, st.readOwn = nil, true
				return nil
			}
			if interpretWriteError(err) == failHook {
				return fmt.Errorf("partition %d: %w", st.id, err)
			}
			if ctx.Err() != nil {
				return nil // abandoned: entries stay pending; what committed is re-written harmlessly
			}
			p.writeErrors.Add(1)
			p.failed(ctx, st, err, log)
			log.Warn("write batch to PostgreSQL, retrying", zap.Int(logEntries, len(events)), zap.Duration(logBackoff, backoff), zap.Error(err))
			p.wait(ctx, st, backoff)
			if ctx.Err() != nil {
				return nil
			}
			backoff = nextBackoff(backoff, p.cfg.RetryMax)
		}
		if len(refused) > 0 {
			written = make([]engine.Event, 0, len(events)-len(refused))
			next := 0
			for _, r := range refused {
				written = append(written, events[next:r.index]...)
				next = r.index + 1
				dead[from[r.index]] = fmt.Errorf("PostgreSQL refused the event: %w", r.err)
			}
			written = append(written, events[next:]...)
		}
		if p.cfg.AfterCommit != nil {
			if err := p.cfg.AfterCommit(ctx, st.id, written); err != nil {
				return fmt.Errorf("partition %d: %w", st.id, &hookError{err: err})
			}
		}
	}
	// From here on the batch is committed: finish its bookkeeping even if
	// ctx is cancelled, within a short deadline.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	ids := make([]string, 0, len(msgs))
	var top engine.StreamID
	for i, m := range msgs {
		if cause, ok := dead[i]; ok {
			if err := p.deadLetter(actx, st, m, cause); err != nil {
				// Not acknowledged: it is read, and dead-lettered, again.
				log.Warn("dead-letter entry; it stays pending", zap.String(logStreamID, m.ID), zap.Error(err))
				st.readOwn = true
				continue
			}
			log.Error("entry moved to the dead-letter stream", zap.String(logStreamID, m.ID), zap.Error(cause))
			p.deadLetters.Add(1)
		}
		ids = append(ids, m.ID)
		if id, err := engine.ParseStreamID(m.ID); err == nil && top.Less(id) {
			top = id
		}
	}
	p.succeeded(ctx, st, log)
	if len(ids) == 0 {
		return nil
	}
	n, err := p.e.Ack(actx, st.id, p.cfg.Group, ids...)
	if err != nil {
		// Committed but not acknowledged: re-delivery is harmless.
		log.Warn("acknowledge batch; it will be re-read", zap.Error(err))
		st.readOwn = true
		return nil
	}
	p.acked.Add(n)
	p.lastBatch.Store(int64(len(msgs)))
	st.total += int64(len(ids))
	st.persisted = append(st.persisted, mark{id: top, cum: st.total})
	return nil
}

// count adds what written batches did to the counters.
func (p *Persister) count(res batchResult, log *zap.Logger) {
	p.batches.Add(res.commits)
	p.events.Add(res.inserted)
	p.forks.Add(res.forks)
	p.heldBack.Add(res.heldBack)
	if res.forks > 0 || res.heldBack > 0 {
		log.Warn("fork found: events held back until the reconciler merges them",
			zap.Int64(logForks, res.forks), zap.Int64(logHeldBack, res.heldBack))
	}
}

// wait sleeps d, or until ctx is done, measuring the partition's lag every
// TrimInterval meanwhile, so the lag keeps counting while a batch is
// retried.
func (p *Persister) wait(ctx context.Context, st *partition, d time.Duration) {
	end := time.Now().Add(d)
	for ctx.Err() == nil {
		left := time.Until(end)
		if left <= 0 {
			return
		}
		sleep(ctx, min(left, p.cfg.TrimInterval))
		if ctx.Err() == nil && p.cfg.Clock().Sub(st.lastLag) >= p.cfg.TrimInterval {
			_ = p.measureLag(ctx, st)
		}
	}
}

// deadLetter copies an entry, with its id and why it cannot be persisted
// (a parse error, or PostgreSQL's refusal), to the partition's dead-letter
// stream (engine.AddDeadLetter).
func (p *Persister) deadLetter(ctx context.Context, st *partition, m engine.StreamEntry, cause error) error {
	return p.e.AddDeadLetter(ctx, st.id, engine.DeadLetter{
		EntryID: m.ID, Error: cause.Error(), Consumer: p.cfg.Consumer, Values: m.Values,
	}, p.cfg.DeadLetterMaxLen)
}

// DeadLetterKey returns the key of partition p's dead-letter stream. Each of
// its entries holds the entry's id ("id"), why it was not persisted
// ("error": the parse error, or "PostgreSQL refused the event: " and
// PostgreSQL's error with its SQLSTATE), the consumer that moved it, and the
// entry's fields prefixed with "f:".
func DeadLetterKey(e *engine.Engine, p int) string { return e.DeadLetterKey(p) }

// DownstreamGroups are the consumer groups besides the persister's that
// read the partition streams (the webhook workers', webhook.DefaultGroup,
// and the Kafka relay's): the persister trims no entry one of them has not
// acknowledged, as it trims none it has not persisted itself, within a
// bound (PersisterConfig.DownstreamMaxLag and DownstreamMaxBacklog): a
// group nobody reads any more is released after DownstreamMaxLag, and
// `inventory groups forget NAME` removes it.
var DownstreamGroups = []string{"webhooks", "relay"}

// trim removes persisted entries older than the retention window, or beyond
// RetentionCount, never at or above the persisted floor, nor the floor of a
// Downstream group (XTRIM MINID: new
// entries always get higher ids, so a concurrent XADD is never trimmed).
func (p *Persister) trim(ctx context.Context, st *partition) error {
	gs, ok, err := p.e.GroupState(ctx, st.id, p.cfg.Group)
	if err != nil || !ok {
		return err
	}
	p.setLag(st, gs.Unacked)
	now := p.cfg.Clock()
	cut := engine.StreamID{Ms: uint64(max(now.Add(-p.cfg.RetentionWindow).UnixMilli(), 0))}
	// The RetentionCount cut: the oldest batch mark after which at most
	// RetentionCount entries were acknowledged by this worker, when keeping
	// that batch too would keep more than RetentionCount (while fewer were
	// acknowledged, the window alone decides).
	for i, m := range st.persisted {
		if st.total-m.cum <= p.cfg.RetentionCount {
			prev := st.before
			if i > 0 {
				prev = st.persisted[i-1].cum
			}
			if st.total-prev > p.cfg.RetentionCount {
				if c := m.id.Next(); cut.Less(c) {
					cut = c
				}
			}
			st.persisted, st.before = st.persisted[i:], prev
			break
		}
	}
	if gs.Floor.Less(cut) {
		cut = gs.Floor
	}
	cut, err = p.downstreamCut(ctx, st, cut, now)
	if err != nil {
		return err
	}
	if cut.IsZero() {
		return nil
	}
	return p.e.TrimStream(ctx, st.id, cut)
}

// measureLag measures the partition's lag (see PersisterStats.Lag).
func (p *Persister) measureLag(ctx context.Context, st *partition) error {
	gs, ok, err := p.e.GroupState(ctx, st.id, p.cfg.Group)
	if err != nil || !ok {
		return err
	}
	p.setLag(st, gs.Unacked)
	return nil
}

func (p *Persister) setLag(st *partition, n int64) {
	st.lastLag = p.cfg.Clock()
	p.mu.Lock()
	p.health[st.id].lag = n
	p.mu.Unlock()
}

// setWriting records that a write of the partition's events began at t
// (zero: it ended).
func (p *Persister) setWriting(part int, t time.Time) {
	p.mu.Lock()
	p.health[part].writingSince = t
	p.mu.Unlock()
}

// Partition health. Every failed attempt to read or write a partition's
// events counts; a success (a batch written, or nothing left to write)
// clears the count. Once the failures have lasted FailingAfter, the
// partition is failing. Stats says so; and the worker records its failures
// in Redis, in a hash per partition with one field per worker, for the
// reconciler's runs in any process to report once they have lasted the
// worker's FailingAfter. The record is renewed at every failure and
// believed until healthRecordLife after that (a worker that died while
// failing leaves a record that goes stale); a success deletes it.

// healthRecord is one worker's failure record of a partition.
type healthRecord struct {
	Consumer     string    `json:"consumer"`
	FailingSince time.Time `json:"failing_since"`
	Failures     int64     `json:"failures"`
	Error        string    `json:"error"`
	UpdatedAt    time.Time `json:"updated_at"`
	// FailingAfter is the worker's PersisterConfig.FailingAfter: the
	// partition counts as failing from FailingSince plus it.
	FailingAfter time.Duration `json:"failing_after"`
	// ExpiresAt is when readers stop believing the record.
	ExpiresAt time.Time `json:"expires_at"`
}

// failing reports whether the record says the partition is failing at now.
func (h *healthRecord) failing(now time.Time) bool {
	return !now.After(h.ExpiresAt) && now.Sub(h.FailingSince) >= h.FailingAfter
}

// healthRecordLife is how long a failure record is believed after its last
// renewal: well past the longest wait between two attempts.
func (p *Persister) healthRecordLife() time.Duration {
	return max(3*p.cfg.RetryMax, 30*time.Second)
}

// maxErrorLen bounds the error text a failure record carries.
const maxErrorLen = 1000

// failed counts a failed attempt on the partition and records the failures
// in Redis (best effort: Redis may be what fails).
func (p *Persister) failed(ctx context.Context, st *partition, cause error, log *zap.Logger) {
	now := p.cfg.Clock()
	msg := cause.Error()
	if len(msg) > maxErrorLen {
		msg = msg[:maxErrorLen] + "…"
	}
	p.mu.Lock()
	h := p.health[st.id]
	if h.failingSince.IsZero() {
		h.failingSince = now
	}
	h.failures++
	h.lastErr = msg
	rec := healthRecord{Consumer: p.cfg.Consumer, FailingSince: h.failingSince.UTC(), Failures: h.failures, Error: msg,
		UpdatedAt: now.UTC(), FailingAfter: p.cfg.FailingAfter, ExpiresAt: now.Add(p.healthRecordLife()).UTC()}
	p.mu.Unlock()
	if !st.reported && rec.failing(now) {
		st.reported = true
		log.Error("partition failing: its events are not reaching PostgreSQL", zap.Int64(logFailures, rec.Failures),
			zap.Duration(logFailingFor, now.Sub(rec.FailingSince)), zap.Error(cause))
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := p.e.PutPersisterHealth(rctx, st.id, p.cfg.Consumer, b, p.healthRecordLife()); err == nil {
		st.published = true
	}
}

// succeeded clears the partition's failures, and its record in Redis.
func (p *Persister) succeeded(ctx context.Context, st *partition, log *zap.Logger) {
	now := p.cfg.Clock()
	p.mu.Lock()
	h := p.health[st.id]
	h.lastSuccess = now
	since, n := h.failingSince, h.failures
	h.failingSince, h.failures, h.lastErr = time.Time{}, 0, ""
	p.mu.Unlock()
	if st.reported {
		st.reported = false
		log.Info("partition recovered", zap.Int64(logFailures, n), zap.Duration(logFailingFor, now.Sub(since)))
	}
	p.unpublish(ctx, st)
}

// unpublish deletes this worker's failure record of the partition, if it
// made one.
func (p *Persister) unpublish(ctx context.Context, st *partition) {
	if !st.published {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := p.e.DeletePersisterHealth(rctx, st.id, p.cfg.Consumer); err == nil {
		st.published = false
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func nextBackoff(d, limit time.Duration) time.Duration {
	d *= 2
	if d > limit {
		return limit
	}
	return d
}
