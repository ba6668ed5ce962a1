// Package groupread reads one partition's event stream through a consumer
// group for the workers that follow the streams besides the persister (the
// webhook intake, the Kafka relay): the group is made when missing, a
// consumer's own pending entries (left by a crash) come first, then entries
// idle on other consumers of the group are taken over, then new ones. The
// caller acknowledges what it handled; what it does not acknowledge is
// read again after a restart, so nothing is lost.
package groupread

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/shelfline/inventory/engine"
)

// Partitions returns ps, copied, or every partition of e when ps is nil:
// the default of a worker's set of partitions.
func Partitions(e *engine.Engine, ps []int) []int {
	if ps != nil {
		return append([]int(nil), ps...)
	}
	all := make([]int, 0, e.Partitions())
	for p := range e.Partitions() {
		all = append(all, p)
	}
	return all
}

// ConsumerName returns name, or when it is empty "<hostname>-<pid>" (with
// fallback for a host that has no name): the default consumer name.
func ConsumerName(name, fallback string) string {
	if name != "" {
		return name
	}
	host, _ := os.Hostname()
	if host == "" {
		host = fallback
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

// Source says which partitions' streams a worker follows through which
// consumer group, and how it reads them: the settings the Kafka relay and
// the webhook workers share (their Configs embed it).
type Source struct {
	// Partitions lists the partitions whose streams the worker reads.
	// Defaults to all of the engine's.
	Partitions []int
	// Group is the consumer group. Defaults to the worker's own group.
	Group string
	// Consumer names this worker in the group. Defaults to
	// "<hostname>-<pid>".
	Consumer string
	// BatchSize is the most stream entries read at once. Defaults to 500.
	BatchSize int
	// Block is how long one read waits for new entries; stopping takes up
	// to this long. Defaults to 1s.
	Block time.Duration
	// ClaimIdle is how long an entry must sit unacknowledged on another
	// consumer of the group before this one takes it over. Defaults to 10s.
	ClaimIdle time.Duration
}

// WithDefaults returns s with its defaults filled in: every partition of
// e, group, and "<hostname>-<pid>" (fallback for a host without a name).
func (s Source) WithDefaults(e *engine.Engine, group, fallback string) Source {
	s.Partitions = Partitions(e, s.Partitions)
	if s.Group == "" {
		s.Group = group
	}
	s.Consumer = ConsumerName(s.Consumer, fallback)
	if s.BatchSize == 0 {
		s.BatchSize = 500
	}
	if s.Block == 0 {
		s.Block = time.Second
	}
	if s.ClaimIdle == 0 {
		s.ClaimIdle = 10 * time.Second
	}
	return s
}

// Validate checks a Source with its defaults filled in, against e's
// partitions; its errors start with what ("relay config") and name the
// field.
func (s Source) Validate(e *engine.Engine, what string) error {
	for _, p := range s.Partitions {
		if p < 0 || p >= e.Partitions() {
			return fmt.Errorf("%s: Partitions: %d outside 0..%d", what, p, e.Partitions()-1)
		}
	}
	switch {
	case s.BatchSize < 1:
		return fmt.Errorf("%s: BatchSize must be positive", what)
	case s.Block < time.Millisecond:
		return fmt.Errorf("%s: Block must be at least 1ms", what)
	}
	return nil
}

// Reader returns a reader of partition p's stream as s says; takeOver is
// Config.TakeOver.
func (s Source) Reader(e *engine.Engine, p int, takeOver bool) *Reader {
	return New(e, p, Config{
		Consumer: engine.Consumer{Group: s.Group, Name: s.Consumer},
		Count:    s.BatchSize, Block: s.Block, ClaimIdle: s.ClaimIdle, TakeOver: takeOver,
	})
}

// Config configures a Reader.
type Config struct {
	// Consumer is the group and this reader's name in it. Required.
	Consumer engine.Consumer
	// Count is the most entries one read returns. Defaults to 500.
	Count int
	// Block is how long a read waits for new entries. Defaults to 1s.
	Block time.Duration
	// ClaimIdle is how long an entry must sit pending on another consumer
	// before this one takes it over. Defaults to 10s.
	ClaimIdle time.Duration
	// ClaimInterval is how often the reader looks for such entries.
	// Defaults to 1s.
	ClaimInterval time.Duration
	// TakeOver, when set, makes the reader take every entry pending on any
	// consumer of the group when it starts (and when the group is made
	// again), before it reads a new one: for a reader that owns its
	// partitions alone, whose predecessor under another name died with
	// entries pending, so that they go out before later ones (the Kafka
	// relay's order per key).
	TakeOver bool
}

// Reader reads partition P's stream through a consumer group. It is not
// safe for concurrent use: one goroutine per partition.
type Reader struct {
	e       *engine.Engine
	p       int
	cfg     Config
	groupOK bool
	readOwn bool
	takeAll bool
	claimAt engine.StreamID
	lastClm time.Time
}

// New returns a reader of partition p's stream.
func New(e *engine.Engine, p int, cfg Config) *Reader {
	if cfg.Count == 0 {
		cfg.Count = 500
	}
	if cfg.Block == 0 {
		cfg.Block = time.Second
	}
	if cfg.ClaimIdle == 0 {
		cfg.ClaimIdle = 10 * time.Second
	}
	if cfg.ClaimInterval == 0 {
		cfg.ClaimInterval = time.Second
	}
	return &Reader{e: e, p: p, cfg: cfg, readOwn: true}
}

// Partition returns the partition read.
func (r *Reader) Partition() int { return r.p }

// Next returns the next entries to handle, oldest first within each kind:
// this consumer's own pending entries first (after a restart), entries
// idle on other consumers when it is time to look, else new entries,
// waiting up to Block for some. No entries is not an error. A group that
// disappeared (Redis flushed) is made again and read from the start.
func (r *Reader) Next(ctx context.Context) ([]engine.StreamEntry, error) {
	if !r.groupOK {
		if err := r.e.CreateGroup(ctx, r.p, r.cfg.Consumer.Group); err != nil {
			return nil, err
		}
		r.groupOK, r.readOwn, r.claimAt = true, true, engine.StreamID{}
		r.takeAll = r.cfg.TakeOver
	}
	msgs, err := r.next(ctx, nil)
	if errors.Is(err, engine.ErrNoGroup) {
		r.groupOK = false
	}
	return msgs, err
}

// Skip is Next for a reader with nothing to deliver: it returns this
// consumer's own pending entries and entries idle on other consumers as
// Next does, so that they are acknowledged, but instead of reading new
// entries it moves the group past them (engine.SkipToEnd, which asks idle
// again after it saw the stream's end) and waits Block.
func (r *Reader) Skip(ctx context.Context, idle func(context.Context) (bool, error)) ([]engine.StreamEntry, error) {
	if !r.groupOK {
		if err := r.e.CreateGroup(ctx, r.p, r.cfg.Consumer.Group); err != nil {
			return nil, err
		}
		r.groupOK, r.readOwn, r.claimAt = true, true, engine.StreamID{}
		r.takeAll = r.cfg.TakeOver
	}
	msgs, err := r.next(ctx, idle)
	if errors.Is(err, engine.ErrNoGroup) {
		r.groupOK = false
	}
	return msgs, err
}

func (r *Reader) next(ctx context.Context, skipIdle func(context.Context) (bool, error)) ([]engine.StreamEntry, error) {
	if r.takeAll {
		// Claimed entries become this consumer's pending ones, read next
		// in id order.
		at := engine.StreamID{}
		for {
			_, next, err := r.e.ClaimIdle(ctx, r.p, r.cfg.Consumer, 0, at, r.cfg.Count)
			if err != nil {
				return nil, err
			}
			if next.IsZero() {
				break
			}
			at = next
		}
		r.takeAll, r.readOwn = false, true
	}
	if r.readOwn {
		msgs, err := r.e.ReadPending(ctx, r.p, r.cfg.Consumer, r.cfg.Count)
		if err != nil || len(msgs) > 0 {
			return msgs, err
		}
		r.readOwn = false
	}
	if time.Since(r.lastClm) >= r.cfg.ClaimInterval {
		r.lastClm = time.Now()
		msgs, cursor, err := r.e.ClaimIdle(ctx, r.p, r.cfg.Consumer, r.cfg.ClaimIdle, r.claimAt, r.cfg.Count)
		if err != nil {
			return nil, err
		}
		r.claimAt = cursor
		if len(msgs) > 0 {
			return msgs, nil
		}
	}
	if skipIdle != nil {
		if _, err := r.e.SkipToEnd(ctx, r.p, r.cfg.Consumer.Group, skipIdle); err != nil {
			return nil, err
		}
		t := time.NewTimer(r.cfg.Block)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		return nil, nil
	}
	return r.e.ReadNew(ctx, r.p, r.cfg.Consumer, r.cfg.Count, r.cfg.Block)
}

// Ack acknowledges entries handled.
func (r *Reader) Ack(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := r.e.Ack(ctx, r.p, r.cfg.Consumer.Group, ids...)
	return err
}

// Reread makes the next read start again with this consumer's pending
// entries: after entries were read but could not be handled.
func (r *Reader) Reread() { r.readOwn = true }
