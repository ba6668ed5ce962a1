package httpapi

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/shelfline/inventory/engine"
)

// A feed follows the partitions' event streams for one client. Its position
// is a vector of stream ids, one per partition, written as the event id
// ("<id of p0>,<id of p1>,…"): resuming with it continues every partition
// exactly after the last event the client was sent, without loss or repeat
// while the events are within the streams' retained window.
type feed struct {
	e     *engine.Engine
	store string // "" = every store
	parts []int  // partitions read
	pos   []string
	// gaps lists the partitions whose events after the resumed position
	// were trimmed already (older than the streams' retention window): the
	// client missed changes there and should reload the state it shows.
	gaps []int
}

var streamIDRE = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// feedEvent is one event and the feed position just after it.
type feedEvent struct {
	ID    string
	Event engine.Event
}

// newFeed starts a feed at lastID, or at the streams' ends when lastID is
// empty. A malformed lastID is a 400 problem.
func newFeed(ctx context.Context, e *engine.Engine, store, lastID string) (*feed, error) {
	f := &feed{e: e, store: store, pos: make([]string, e.Partitions())}
	if store != "" {
		f.parts = []int{e.Partition(store)}
	} else {
		for p := 0; p < e.Partitions(); p++ {
			f.parts = append(f.parts, p)
		}
	}
	if lastID != "" {
		ids := strings.Split(lastID, ",")
		if len(ids) != e.Partitions() {
			return nil, badRequest("Last-Event-ID is not an event id of this feed").with("field", "Last-Event-ID")
		}
		for i, id := range ids {
			if !streamIDRE.MatchString(id) {
				return nil, badRequest("Last-Event-ID is not an event id of this feed").with("field", "Last-Event-ID")
			}
			f.pos[i] = id
		}
		f.gaps = trimmedAfter(ctx, e, f.parts, f.pos)
		return f, nil
	}
	cmds := make([]*redis.XMessageSliceCmd, e.Partitions())
	_, err := e.Client().Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range cmds {
			cmds[i] = p.XRevRangeN(ctx, e.StreamKey(i), "+", "-", 1)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	for i, c := range cmds {
		msgs, err := c.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		f.pos[i] = "0-0"
		if len(msgs) > 0 {
			f.pos[i] = msgs[0].ID
		}
	}
	return f, nil
}

// ID returns the feed's current position.
func (f *feed) ID() string { return strings.Join(f.pos, ",") }

// poll reads the events after the feed's position, up to batch per
// partition, and advances past them (and past events of other stores).
func (f *feed) poll(ctx context.Context, batch int64) ([]feedEvent, error) {
	rdb := f.e.Client()
	cmds := make([]*redis.XStreamSliceCmd, len(f.parts))
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, part := range f.parts {
			cmds[i] = p.XRead(ctx, &redis.XReadArgs{Streams: []string{f.e.StreamKey(part), f.pos[part]}, Count: batch, Block: -1})
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	var out []feedEvent
	for i, part := range f.parts {
		streams, err := cmds[i].Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		for _, st := range streams {
			for _, m := range st.Messages {
				f.pos[part] = m.ID
				ev, err := engine.ParseEvent(m.ID, m.Values)
				if err != nil || (f.store != "" && ev.Store != f.store) {
					continue
				}
				out = append(out, feedEvent{ID: f.ID(), Event: ev})
			}
		}
	}
	return out, nil
}

// trimmedAfter returns the partitions whose streams have lost entries after
// pos to trimming: some entries were removed (entries-added > length) and
// pos is older than the first entry kept (or, in an emptied stream, than
// the last one added). It may flag a position that missed nothing but was
// itself trimmed: the client then reloads for nothing, never misses a
// change silently. A stream that cannot be inspected counts as whole.
func trimmedAfter(ctx context.Context, e *engine.Engine, parts []int, pos []string) []int {
	cmds := make([]*redis.XInfoStreamCmd, len(parts))
	_, _ = e.Client().Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, part := range parts {
			cmds[i] = p.XInfoStream(ctx, e.StreamKey(part))
		}
		return nil
	})
	var gaps []int
	for i, part := range parts {
		info, err := cmds[i].Result()
		if err != nil || info.EntriesAdded <= info.Length {
			continue
		}
		kept := info.FirstEntry.ID
		if info.Length == 0 {
			if streamIDLess(pos[part], info.LastGeneratedID) {
				gaps = append(gaps, part)
			}
			continue
		}
		if streamIDLess(pos[part], kept) {
			gaps = append(gaps, part)
		}
	}
	return gaps
}

// streamIDLess compares two stream ids "ms-seq".
func streamIDLess(a, b string) bool {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	if len(am) != len(bm) {
		return len(am) < len(bm)
	}
	if am != bm {
		return am < bm
	}
	if len(as) != len(bs) {
		return len(as) < len(bs)
	}
	return as < bs
}
