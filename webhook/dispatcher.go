package webhook

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/groupread"
)

// Log keys.
const (
	logPartition = "partition"
	logWebhook   = "webhook"
	logEventID   = "event_id"
)

// DefaultGroup is the consumer group of the delivery workers on the
// partition streams; the persister's trimming waits for it.
const DefaultGroup = "webhooks"

// Source is the stream-reading part of Config, shared with the Kafka relay
// (relay.Source is the same type).
type Source = groupread.Source

// Config configures a Dispatcher. The zero value of every field selects its
// documented default.
type Config struct {
	// Source is which partitions the workers read through which consumer
	// group (DefaultGroup unless set), and how.
	Source
	// Timeout bounds one delivery attempt: no answer within it is a
	// failure. Defaults to 5s.
	Timeout time.Duration
	// RetryMin and RetryMax bound the exponential backoff between attempts
	// of one delivery (each wait is jittered between half and all of it).
	// Default to 1s and 1h.
	RetryMin, RetryMax time.Duration
	// MaxAge is how long a delivery is retried before it is marked failed.
	// Defaults to 24h.
	MaxAge time.Duration
	// Lease is how long a worker holds a delivery it is sending; a worker
	// that dies mid-delivery leaves it to another (or to itself, restarted)
	// after this. Defaults to Timeout + 10s.
	Lease time.Duration
	// Concurrency is how many deliveries to one endpoint are in flight at
	// once (always of different items: one item's deliveries go one after
	// the other, in version order). Defaults to 8.
	Concurrency int
	// Poll is how often an idle endpoint's sender looks for due deliveries
	// (retries, or rows another worker wrote). Defaults to 250ms.
	Poll time.Duration
	// Refresh is how often the subscriptions are read to start and stop
	// the endpoints' senders. Defaults to 1s.
	Refresh time.Duration
	// Retention is how long a delivered or failed delivery stays in the log
	// after it was written; the workers then delete it (prune.go). Pending
	// deliveries are never deleted. Defaults to DefaultRetention (7 days);
	// negative keeps every row.
	Retention time.Duration
	// PruneInterval is how often a worker deletes the rows past Retention.
	// Defaults to 1h.
	PruneInterval time.Duration
	// PruneBatch is the most rows one delete statement removes. Defaults to
	// 10000.
	PruneBatch int
	// AllowPrivate lets deliveries connect to loopback, private and
	// link-local addresses. Defaults to false.
	AllowPrivate bool
	// Logger receives the workers' logs. Defaults to zap.NewNop().
	Logger *zap.Logger
}

func (c Config) withDefaults(e *engine.Engine) Config {
	c.Source = c.Source.WithDefaults(e, DefaultGroup, "webhooks")
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.RetryMin == 0 {
		c.RetryMin = time.Second
	}
	if c.RetryMax == 0 {
		c.RetryMax = time.Hour
	}
	if c.MaxAge == 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.Lease == 0 {
		c.Lease = c.Timeout + 10*time.Second
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.Poll == 0 {
		c.Poll = 250 * time.Millisecond
	}
	if c.Refresh == 0 {
		c.Refresh = time.Second
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.PruneInterval == 0 {
		c.PruneInterval = time.Hour
	}
	if c.PruneBatch == 0 {
		c.PruneBatch = pruneBatch
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

func (c Config) validate(e *engine.Engine) error {
	if err := c.Source.Validate(e, "webhook config"); err != nil {
		return err
	}
	switch {
	case c.Timeout <= 0:
		return errors.New("webhook config: Timeout must be positive")
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return errors.New("webhook config: RetryMin and RetryMax must be positive, RetryMin <= RetryMax")
	case c.MaxAge <= 0:
		return errors.New("webhook config: MaxAge must be positive")
	case c.Lease <= c.Timeout:
		return errors.New("webhook config: Lease must be longer than Timeout")
	case c.Concurrency < 1:
		return errors.New("webhook config: Concurrency must be positive")
	case c.Poll <= 0 || c.Refresh <= 0:
		return errors.New("webhook config: Poll and Refresh must be positive")
	case c.PruneInterval <= 0 || c.PruneBatch < 1:
		return errors.New("webhook config: PruneInterval and PruneBatch must be positive")
	}
	return nil
}

// Outcomes of a delivery attempt, as Stats and the metrics count them.
const (
	OutcomeDelivered = "delivered"
	OutcomeRetry     = "retry"
	OutcomeFailed    = "failed"
)

// Stats are a Dispatcher's counters since it was made.
type Stats struct {
	// Attempts counts delivery attempts by endpoint (webhook id) and
	// outcome: delivered, retry (failed, to be tried again), failed (given
	// up after MaxAge).
	Attempts map[string]map[string]int64
	// Events counts stream entries turned into delivery rows (or into
	// none, when no subscription wanted them) and acknowledged.
	Events int64
	// Unparsed counts stream entries that do not parse, acknowledged
	// without a delivery (the persister dead-letters them).
	Unparsed int64
	// Queued counts delivery rows written.
	Queued int64
	// Pruned counts delivered and failed rows this worker deleted past
	// Retention.
	Pruned int64
}

// Dispatcher runs the delivery workers: per partition an intake that turns
// stream entries into delivery rows, and per endpoint a sender. Construct
// it with NewDispatcher and call Run. Several may run at once, in one
// process or many: the consumer group shares the entries, leases share the
// rows.
type Dispatcher struct {
	e     *engine.Engine
	pool  *pgxpool.Pool
	store *Store
	cfg   Config
	log   *zap.Logger
	send  *sender

	events, unparsed, queued, pruned atomic.Int64

	mu       sync.Mutex
	attempts map[string]map[string]int64
	// wake holds, per running endpoint, a channel that tells its sender new
	// rows were written.
	wake map[string]chan struct{}

	// none caches whether no webhook exists (noneCached), as of noneAt.
	noneMu sync.Mutex
	none   bool
	noneAt time.Time
}

// noneTTL bounds the age of the cached answer to "is there no webhook?".
const noneTTL = time.Second

// noneCached reports whether no webhook exists, from a query at most
// noneTTL old: while none does, the intakes skip the streams instead of
// reading every entry for nobody (Reader.Skip).
func (d *Dispatcher) noneCached(ctx context.Context) bool {
	d.noneMu.Lock()
	defer d.noneMu.Unlock()
	if time.Since(d.noneAt) < noneTTL {
		return d.none
	}
	none, err := d.store.none(ctx)
	d.none, d.noneAt = err == nil && none, time.Now()
	return d.none
}

// NewDispatcher returns a Dispatcher reading e's streams and keeping its
// queue in pool (migrated, see persist.Migrate).
func NewDispatcher(e *engine.Engine, pool *pgxpool.Pool, cfg Config) (*Dispatcher, error) {
	if e == nil || pool == nil {
		return nil, errors.New("webhook dispatcher: engine and pool are required")
	}
	cfg = cfg.withDefaults(e)
	if err := cfg.validate(e); err != nil {
		return nil, err
	}
	d := &Dispatcher{e: e, pool: pool, store: NewStore(pool, StoreConfig{AllowPrivate: true}), cfg: cfg,
		log: cfg.Logger.With(zap.String("consumer", cfg.Consumer)), attempts: map[string]map[string]int64{},
		wake: map[string]chan struct{}{}}
	d.send = newSender(d)
	return d, nil
}

// Stats returns a snapshot of the counters. Safe for concurrent use.
func (d *Dispatcher) Stats() Stats {
	s := Stats{Events: d.events.Load(), Unparsed: d.unparsed.Load(), Queued: d.queued.Load(), Pruned: d.pruned.Load(),
		Attempts: map[string]map[string]int64{}}
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, m := range d.attempts {
		c := make(map[string]int64, len(m))
		for k, v := range m {
			c[k] = v
		}
		s.Attempts[id] = c
	}
	return s
}

func (d *Dispatcher) count(webhook, outcome string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.attempts[webhook]
	if m == nil {
		m = map[string]int64{}
		d.attempts[webhook] = m
	}
	m[outcome]++
}

// Run runs the intakes and the senders until ctx is done, then returns
// nil. Failures of Redis, PostgreSQL or an endpoint are retried and never
// end Run.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, p := range d.cfg.Partitions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.intake(ctx, p)
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		d.supervise(ctx)
	}()
	go func() {
		defer wg.Done()
		d.prune(ctx)
	}()
	wg.Wait()
	return nil
}

// intake turns partition p's stream entries into delivery rows, and
// acknowledges them once the rows are committed.
func (d *Dispatcher) intake(ctx context.Context, p int) {
	log := d.log.With(zap.Int(logPartition, p))
	r := d.cfg.Source.Reader(d.e, p, false)
	backoff := 100 * time.Millisecond
	fail := func(what string, err error) {
		log.Warn(what+", retrying", zap.Error(err), zap.Duration("backoff", backoff))
		sleep(ctx, backoff)
		backoff = min(backoff*2, 5*time.Second)
	}
	for ctx.Err() == nil {
		var msgs []engine.StreamEntry
		var err error
		if d.noneCached(ctx) {
			// Nothing to deliver: move the group past the stream's end,
			// asking PostgreSQL again after the end was read, so an event
			// appended after a webhook's creation returned is never skipped.
			msgs, err = r.Skip(ctx, d.store.none)
		} else {
			msgs, err = r.Next(ctx)
		}
		if err != nil {
			if ctx.Err() == nil {
				fail("read stream", err)
			}
			continue
		}
		if len(msgs) == 0 {
			continue
		}
		for ctx.Err() == nil {
			if err := d.enqueue(ctx, msgs); err != nil {
				if ctx.Err() == nil {
					fail("queue deliveries", err)
				}
				continue
			}
			ids := make([]string, len(msgs))
			for i, m := range msgs {
				ids[i] = m.ID
			}
			if err := r.Ack(ctx, ids...); err != nil {
				// Left pending: read again (the rows dedupe).
				r.Reread()
				if ctx.Err() == nil {
					fail("acknowledge entries", err)
				}
				break
			}
			backoff = 100 * time.Millisecond
			break
		}
	}
}

// enqueue writes the delivery rows of msgs (Store.Enqueue) and wakes the
// senders of the endpoints that got some.
func (d *Dispatcher) enqueue(ctx context.Context, msgs []engine.StreamEntry) error {
	evs := make([]engine.Event, 0, len(msgs))
	for _, m := range msgs {
		ev, err := engine.ParseEvent(m.ID, m.Values)
		if err != nil {
			d.unparsed.Add(1)
			d.log.Warn("entry does not parse; no delivery", zap.Error(err))
			continue
		}
		evs = append(evs, ev)
	}
	webhooks, err := d.store.enqueue(ctx, evs)
	if err != nil {
		return err
	}
	d.queued.Add(int64(len(webhooks)))
	d.mu.Lock()
	for _, w := range webhooks {
		if ch := d.wake[w]; ch != nil {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	d.mu.Unlock()
	d.events.Add(int64(len(msgs)))
	return nil
}

// supervise runs one sender per subscription, starting and stopping them as
// subscriptions come and go.
func (d *Dispatcher) supervise(ctx context.Context) {
	running := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	defer func() {
		for _, stop := range running {
			stop()
		}
		wg.Wait()
	}()
	for {
		subs, err := d.store.all(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d.log.Warn("read subscriptions", zap.Error(err))
		} else {
			seen := map[string]bool{}
			for _, s := range subs {
				seen[s.ID] = true
				if running[s.ID] != nil {
					continue
				}
				sctx, stop := context.WithCancel(ctx)
				running[s.ID] = stop
				ch := make(chan struct{}, 1)
				d.mu.Lock()
				d.wake[s.ID] = ch
				d.mu.Unlock()
				wg.Add(1)
				go func() {
					defer wg.Done()
					d.send.run(sctx, s, ch)
				}()
			}
			for id, stop := range running {
				if !seen[id] {
					stop()
					delete(running, id)
					d.mu.Lock()
					delete(d.wake, id)
					d.mu.Unlock()
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(d.cfg.Refresh):
		}
	}
}

// backoff returns the wait before attempt n+1 after n failed attempts:
// RetryMin doubled per attempt, at most RetryMax, jittered between half and
// all of it.
func (d *Dispatcher) backoff(n int) time.Duration {
	b := d.cfg.RetryMin
	for i := 1; i < n && b < d.cfg.RetryMax; i++ {
		b *= 2
	}
	b = min(b, d.cfg.RetryMax)
	return b/2 + rand.N(b/2+1)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
