package persist

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
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
	// RetryMin and RetryMax bound the exponential backoff after a failed
	// write (PostgreSQL or Redis unreachable). Default to 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// DeadLetterMaxLen caps a partition's dead-letter stream (approximately).
	// Defaults to 100000.
	DeadLetterMaxLen int64
	// BeforeCommit, when set, runs inside each batch's transaction just
	// before COMMIT; AfterCommit runs after COMMIT and before XACK. For
	// failure injection in tests: a hook that returns an error stops Run with
	// that error and leaves the batch unacknowledged, as a crash at that
	// point would (BeforeCommit's error also rolls the batch back).
	BeforeCommit, AfterCommit func(ctx context.Context, partition int, events []engine.Event) error
	// Clock returns the current time (retention). Defaults to time.Now.
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
	if c.RetryMin == 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.DeadLetterMaxLen == 0 {
		c.DeadLetterMaxLen = 100000
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

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
	// DeadLetters counts entries moved to a dead-letter stream.
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
	WriteErrors int64 `json:"write_errors"`
	// LastBatchSize is the number of entries of the last committed batch.
	LastBatchSize int64 `json:"last_batch_size"`
	// Lag is, per owned partition, the entries not yet persisted (pending or
	// never delivered), as of that partition's last trim.
	Lag map[int]int64 `json:"lag"`
}

// Persister drains partitions' event streams into the ledger. Construct it
// with NewPersister and call Run. Many persisters, in one process or many,
// may run at once.
type Persister struct {
	e    *engine.Engine
	rdb  redis.UniversalClient
	pool *pgxpool.Pool
	cfg  PersisterConfig
	log  *zap.Logger
	// healer repairs items a rebuild missed (heal.go); made on first use,
	// used by one partition goroutine at a time under healMu.
	healMu sync.Mutex
	healer *Reconciler

	events, acked, batches, deadLetters, forks, heldBack, claimed, writeErrors, lastBatch atomic.Int64

	mu  sync.Mutex
	lag map[int]int64
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
	return &Persister{e: e, rdb: e.Client(), pool: pool, cfg: cfg,
		log: cfg.Logger.With(zap.String(logConsumer, cfg.Consumer)), lag: map[int]int64{}}, nil
}

// Stats returns a snapshot of the counters. Safe for concurrent use.
func (p *Persister) Stats() PersisterStats {
	s := PersisterStats{
		EventsPersisted: p.events.Load(), EntriesAcked: p.acked.Load(), Batches: p.batches.Load(),
		DeadLetters: p.deadLetters.Load(), Forks: p.forks.Load(), HeldBack: p.heldBack.Load(), Claimed: p.claimed.Load(),
		WriteErrors: p.writeErrors.Load(), LastBatchSize: p.lastBatch.Load(), Lag: map[int]int64{},
	}
	p.mu.Lock()
	for k, v := range p.lag {
		s.Lag[k] = v
	}
	p.mu.Unlock()
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
	key      string
	readOwn  bool   // re-read this consumer's pending entries first
	claimAt  string // XAUTOCLAIM cursor
	lastClm  time.Time
	lastTrim time.Time
	// persisted records, per acknowledged batch, its highest id and the
	// running count of entries acknowledged, to find the RetentionCount cut.
	persisted []mark
	total     int64
	// epoch is the readiness marker read before the entries being written
	// (heal.go).
	epoch string
}

type mark struct {
	id  streamID
	cum int64
}

func (p *Persister) runPartition(ctx context.Context, part int) error {
	st := &partition{id: part, key: p.e.StreamKey(part), readOwn: true, claimAt: "0-0"}
	log := p.log.With(zap.Int(logPartition, part))
	backoff := p.cfg.RetryMin
	groupOK := false
	for ctx.Err() == nil {
		if !groupOK {
			if err := ensureGroup(ctx, p.rdb, st.key, p.cfg.Group); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				log.Warn("cannot create consumer group, retrying", zap.Error(err))
				sleep(ctx, backoff)
				backoff = nextBackoff(backoff, p.cfg.RetryMax)
				continue
			}
			groupOK = true
		}
		st.epoch = p.readyEpoch(ctx, part)
		msgs, err := p.next(ctx, st)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if isNoGroup(err) {
				log.Info("stream or consumer group gone, recreating it", zap.Error(err))
				groupOK = false
				st.persisted, st.total, st.claimAt = nil, 0, "0-0"
				continue
			}
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
func (p *Persister) next(ctx context.Context, st *partition) ([]redis.XMessage, error) {
	n := int64(p.cfg.BatchSize)
	if time.Since(st.lastClm) >= p.cfg.ClaimInterval {
		st.lastClm = time.Now()
		msgs, cursor, err := p.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: st.key, Group: p.cfg.Group, Consumer: p.cfg.Consumer,
			MinIdle: p.cfg.ClaimIdle, Start: st.claimAt, Count: n,
		}).Result()
		if err != nil && err != redis.Nil {
			return nil, fmt.Errorf("claim idle entries: %w", err)
		}
		st.claimAt = cursor
		if st.claimAt == "" {
			st.claimAt = "0-0"
		}
		if cursor != "0-0" {
			st.lastClm = time.Time{} // more to claim: look again next round
		}
		if len(msgs) > 0 {
			p.claimed.Add(int64(len(msgs)))
			return msgs, nil
		}
	}
	if st.readOwn {
		msgs, err := p.read(ctx, st.key, "0", n, -1)
		if err != nil {
			return nil, err
		}
		if len(msgs) > 0 {
			return msgs, nil
		}
		st.readOwn = false
	}
	msgs, err := p.read(ctx, st.key, ">", n, p.cfg.Block)
	if err != nil || len(msgs) == 0 || p.cfg.Linger < 0 {
		return msgs, err
	}
	deadline := time.Now().Add(p.cfg.Linger)
	for len(msgs) < p.cfg.BatchSize {
		left := time.Until(deadline)
		if left < time.Millisecond {
			break
		}
		more, err := p.read(ctx, st.key, ">", n-int64(len(msgs)), left)
		if err != nil {
			if isNoGroup(err) || ctx.Err() != nil {
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

func (p *Persister) read(ctx context.Context, key, from string, count int64, block time.Duration) ([]redis.XMessage, error) {
	res, err := p.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: p.cfg.Group, Consumer: p.cfg.Consumer, Streams: []string{key, from}, Count: count, Block: block,
	}).Result()
	if err == redis.Nil {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		return nil, nil
	}
	return res[0].Messages, nil
}

// process persists one batch: dead-letters its poison entries, writes the
// rest in one transaction (retrying with backoff until it commits or ctx is
// done), then acknowledges every entry. It returns an error only from a
// failure-injection hook.
func (p *Persister) process(ctx context.Context, st *partition, msgs []redis.XMessage, log *zap.Logger) error {
	events := make([]engine.Event, 0, len(msgs))
	var poison []redis.XMessage
	var poisonErrs []error
	for _, m := range msgs {
		ev, err := engine.ParseEvent(m.ID, m.Values)
		if err != nil {
			poison = append(poison, m)
			poisonErrs = append(poisonErrs, err)
			continue
		}
		events = append(events, ev)
	}
	var res batchResult
	if len(events) > 0 {
		backoff := p.cfg.RetryMin
		for {
			var err error
			res, err = writeBatch(ctx, p.pool, st.id, events, p.cfg.BeforeCommit)
			if err == nil {
				break
			}
			var he *hookError
			if errors.As(err, &he) {
				return fmt.Errorf("partition %d: %w", st.id, err)
			}
			if ctx.Err() != nil {
				return nil // abandoned: nothing committed, entries stay pending
			}
			p.writeErrors.Add(1)
			log.Warn("write batch to PostgreSQL, retrying", zap.Int(logEntries, len(events)), zap.Duration(logBackoff, backoff), zap.Error(err))
			sleep(ctx, backoff)
			if ctx.Err() != nil {
				return nil
			}
			backoff = nextBackoff(backoff, p.cfg.RetryMax)
		}
		p.batches.Add(1)
		p.events.Add(res.inserted)
		p.forks.Add(res.forks)
		p.heldBack.Add(res.heldBack)
		if res.forks > 0 || res.heldBack > 0 {
			log.Warn("fork found: events held back until the reconciler merges them",
				zap.Int64(logForks, res.forks), zap.Int64(logHeldBack, res.heldBack))
		}
		if st.epoch != "" {
			if now := p.readyEpoch(ctx, st.id); now != "" && now != st.epoch {
				if err := p.healAfterRebuild(ctx, st.id, events); err != nil {
					log.Warn("restore items a rebuild missed; the reconciler will", zap.Error(err))
				}
			}
		}
		if p.cfg.AfterCommit != nil {
			if err := p.cfg.AfterCommit(ctx, st.id, events); err != nil {
				return fmt.Errorf("partition %d: %w", st.id, &hookError{err: err})
			}
		}
	}
	// From here on the batch is committed: finish its bookkeeping even if
	// ctx is cancelled, within a short deadline.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for i, m := range poison {
		if err := p.deadLetter(actx, st, m, poisonErrs[i]); err != nil {
			log.Warn("dead-letter entry; it stays pending", zap.String(logStreamID, m.ID), zap.Error(err))
			st.readOwn = true
			continue
		}
		log.Error("poison entry moved to the dead-letter stream", zap.String(logStreamID, m.ID), zap.Error(poisonErrs[i]))
		p.deadLetters.Add(1)
	}
	ids := make([]string, 0, len(msgs))
	var top streamID
	for _, m := range msgs {
		ids = append(ids, m.ID)
		if id, ok := parseStreamID(m.ID); ok && top.less(id) {
			top = id
		}
	}
	n, err := p.rdb.XAck(actx, st.key, p.cfg.Group, ids...).Result()
	if err != nil {
		// Committed but not acknowledged: re-delivery is harmless.
		log.Warn("acknowledge batch; it will be re-read", zap.Error(err))
		st.readOwn = true
		return nil
	}
	p.acked.Add(n)
	p.lastBatch.Store(int64(len(msgs)))
	st.total += int64(len(msgs))
	st.persisted = append(st.persisted, mark{id: top, cum: st.total})
	return nil
}

// deadLetter copies a poison entry, with its id and the parse error, to the
// partition's dead-letter stream (KeyBase(p)+"deadletter").
func (p *Persister) deadLetter(ctx context.Context, st *partition, m redis.XMessage, cause error) error {
	vals := make([]any, 0, 6+2*len(m.Values))
	vals = append(vals, "id", m.ID, "error", cause.Error(), "consumer", p.cfg.Consumer)
	for k, v := range m.Values {
		vals = append(vals, "f:"+k, v)
	}
	return p.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: DeadLetterKey(p.e, st.id), MaxLen: p.cfg.DeadLetterMaxLen, Approx: true, Values: vals,
	}).Err()
}

// DeadLetterKey returns the key of partition p's dead-letter stream. Each of
// its entries holds the poison entry's id ("id"), the parse error ("error"),
// the consumer that moved it, and the entry's fields prefixed with "f:".
func DeadLetterKey(e *engine.Engine, p int) string { return e.KeyBase(p) + "deadletter" }

// trim removes persisted entries older than the retention window, or beyond
// RetentionCount, never at or above the persisted floor (XTRIM MINID: new
// entries always get higher ids, so a concurrent XADD is never trimmed).
func (p *Persister) trim(ctx context.Context, st *partition) error {
	floor, unpersisted, ok, err := persistedFloor(ctx, p.rdb, st.key, p.cfg.Group)
	if err != nil || !ok {
		return err
	}
	p.mu.Lock()
	p.lag[st.id] = unpersisted
	p.mu.Unlock()
	now := p.cfg.Clock()
	cut := streamID{ms: uint64(max(now.Add(-p.cfg.RetentionWindow).UnixMilli(), 0))}
	// The RetentionCount cut: the oldest batch mark after which at most
	// RetentionCount entries were acknowledged by this worker.
	for i, m := range st.persisted {
		if st.total-m.cum <= p.cfg.RetentionCount {
			if c := m.id.next(); cut.less(c) {
				cut = c
			}
			st.persisted = st.persisted[i:]
			break
		}
	}
	cut = minID(cut, floor)
	if cut == (streamID{}) {
		return nil
	}
	if err := p.rdb.XTrimMinID(ctx, st.key, cut.String()).Err(); err != nil {
		return fmt.Errorf("trim %s: %w", st.key, err)
	}
	return nil
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
