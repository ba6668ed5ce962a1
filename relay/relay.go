// Package relay copies every event of the partition streams to a Kafka
// topic (DESIGN §13, docs/design.md §20): at least once, keyed
// "<store>/<sku>" so one item's events keep their order in one Kafka
// partition, through franz-go's idempotent producer. It reads the streams
// through its own consumer group ("relay") and acknowledges an entry only
// after the broker acknowledged its record, so a relay killed at any point
// loses nothing: what it had not acknowledged is read and sent again (a
// consumer may see an event twice, never out of order for its first
// sighting).
package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/groupread"
)

// DefaultGroup is the relay's consumer group on the partition streams; the
// persister's trimming waits for it.
const DefaultGroup = "relay"

// DefaultTopic is the topic the events go to by default.
const DefaultTopic = "inventory.events"

// Header names of a record.
const (
	// HeaderType carries the event's type (SALE, RESERVE, …).
	HeaderType = "type"
	// HeaderStreamID carries the event's stream entry id.
	HeaderStreamID = "stream_id"
)

// Source is the stream-reading part of Config, shared with the webhook
// workers (webhook.Source is the same type).
type Source = groupread.Source

// Config configures a Relay. The zero value of every field but Brokers
// selects its documented default.
type Config struct {
	// Brokers are the seed brokers, host:port. Required.
	Brokers []string
	// Topic receives the events. Defaults to DefaultTopic.
	Topic string
	// Source is which partitions the relay reads through which consumer
	// group (DefaultGroup unless set), and how; BatchSize is also the most
	// records produced at once.
	Source
	// Options are more franz-go client options (tests: short timeouts).
	Options []kgo.Opt
	// Logger receives the relay's logs. Defaults to zap.NewNop().
	Logger *zap.Logger
}

func (c Config) withDefaults(e *engine.Engine) Config {
	c.Brokers = append([]string(nil), c.Brokers...)
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	c.Source = c.Source.WithDefaults(e, DefaultGroup, "relay")
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

func (c Config) validate(e *engine.Engine) error {
	if len(c.Brokers) == 0 {
		return errors.New("relay config: Brokers must name at least one broker")
	}
	return c.Source.Validate(e, "relay config")
}

// Stats are a Relay's counters since it was made.
type Stats struct {
	// Produced counts records the broker acknowledged.
	Produced int64
	// Unparsed counts stream entries that do not parse, acknowledged
	// without a record (the persister dead-letters them).
	Unparsed int64
	// Errors counts failed produce attempts (each batch is tried again).
	Errors int64
}

// Relay copies the streams' events to Kafka. Construct it with New, call
// Run, then Close.
type Relay struct {
	e      *engine.Engine
	cfg    Config
	client *kgo.Client
	log    *zap.Logger

	produced, unparsed, errs atomic.Int64
}

// New returns a relay of e's streams to cfg.Topic. The client's producer is
// idempotent (franz-go's default, kept: no DisableIdempotentWrite), so a
// retried produce never duplicates nor reorders a record within a Kafka
// partition, and every record waits for all in-sync replicas.
func New(e *engine.Engine, cfg Config) (*Relay, error) {
	if e == nil {
		return nil, errors.New("relay: engine is required")
	}
	cfg = cfg.withDefaults(e)
	if err := cfg.validate(e); err != nil {
		return nil, err
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	}, cfg.Options...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("relay: kafka client: %w", err)
	}
	return &Relay{e: e, cfg: cfg, client: cl, log: cfg.Logger.With(zap.String("consumer", cfg.Consumer))}, nil
}

// Close closes the Kafka client. Call it after Run returned.
func (r *Relay) Close() { r.client.Close() }

// Stats returns a snapshot of the counters. Safe for concurrent use.
func (r *Relay) Stats() Stats {
	return Stats{Produced: r.produced.Load(), Unparsed: r.unparsed.Load(), Errors: r.errs.Load()}
}

// Lag returns, per partition read, the stream entries the relay has not
// acknowledged yet: its lag behind the streams.
func (r *Relay) Lag(ctx context.Context) (map[int]int64, error) {
	out := make(map[int]int64, len(r.cfg.Partitions))
	for _, p := range r.cfg.Partitions {
		st, ok, err := r.e.GroupState(ctx, p, r.cfg.Group)
		if err != nil {
			return nil, err
		}
		if ok {
			out[p] = st.Unacked
		}
	}
	return out, nil
}

// Ping checks that a broker answers.
func (r *Relay) Ping(ctx context.Context) error { return r.client.Ping(ctx) }

// Run relays until ctx is done, then returns nil. A batch in flight at
// cancellation is left unacknowledged and sent again by the next run.
// Failures of Redis or Kafka are retried and never end Run.
func (r *Relay) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, p := range r.cfg.Partitions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.runPartition(ctx, p)
		}()
	}
	wg.Wait()
	return nil
}

func (r *Relay) runPartition(ctx context.Context, p int) {
	log := r.log.With(zap.Int("partition", p))
	rd := r.cfg.Source.Reader(r.e, p, true)
	backoff := 100 * time.Millisecond
	fail := func(what string, err error) {
		log.Warn(what+", retrying", zap.Error(err), zap.Duration("backoff", backoff))
		sleep(ctx, backoff)
		backoff = min(backoff*2, 5*time.Second)
	}
	for ctx.Err() == nil {
		msgs, err := rd.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				fail("read stream", err)
			}
			continue
		}
		if len(msgs) == 0 {
			continue
		}
		recs, ids := r.records(msgs, log)
		for ctx.Err() == nil {
			if len(recs) > 0 {
				// One item's records are in stream (version) order within
				// the batch; the idempotent producer keeps that order in
				// its Kafka partition, retries included.
				if err := r.client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
					r.errs.Add(1)
					if ctx.Err() == nil {
						fail("produce", err)
					}
					continue
				}
				r.produced.Add(int64(len(recs)))
			}
			if err := rd.Ack(ctx, ids...); err != nil {
				rd.Reread() // left pending: sent again, duplicates and all
				if ctx.Err() == nil {
					fail("acknowledge entries", err)
				}
			}
			backoff = 100 * time.Millisecond
			break
		}
	}
}

// records makes one record per event of msgs, keyed "<store>/<sku>", its
// value the event's JSON (as on the live feed), and returns them with the
// ids of all of msgs (an entry that does not parse is acknowledged
// without a record).
func (r *Relay) records(msgs []engine.StreamEntry, log *zap.Logger) ([]*kgo.Record, []string) {
	recs := make([]*kgo.Record, 0, len(msgs))
	ids := make([]string, 0, len(msgs))
	for _, m := range msgs {
		ids = append(ids, m.ID)
		ev, err := engine.ParseEvent(m.ID, m.Values)
		if err != nil {
			r.unparsed.Add(1)
			log.Warn("entry does not parse; not relayed", zap.Error(err))
			continue
		}
		v, err := json.Marshal(ev)
		if err != nil {
			r.unparsed.Add(1)
			continue
		}
		recs = append(recs, &kgo.Record{
			Key: []byte(Key(ev.Store, ev.SKU)), Value: v, Timestamp: ev.Time,
			Headers: []kgo.RecordHeader{{Key: HeaderType, Value: []byte(ev.Type)}, {Key: HeaderStreamID, Value: []byte(m.ID)}},
		})
	}
	return recs, ids
}

// Key is the record key of an item's events.
func Key(store, sku string) string { return store + "/" + sku }

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
