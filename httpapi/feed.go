package httpapi

import (
	"context"
	"regexp"
	"strings"

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
		if len(f.gaps) > 0 {
			// The client reloads what it shows on the gap message; the feed
			// carries on from the streams' ends in those partitions, and
			// the id sent first says so. Resumed from the old position, a
			// reconnect before the next event would be told of the same
			// gap again and reload once more.
			heads, err := e.FeedStart(ctx)
			if err != nil {
				return nil, err
			}
			for _, p := range f.gaps {
				f.pos[p] = heads[p]
			}
		}
		return f, nil
	}
	heads, err := e.FeedStart(ctx)
	if err != nil {
		return nil, err
	}
	copy(f.pos, heads)
	return f, nil
}

// ID returns the feed's current position.
func (f *feed) ID() string { return strings.Join(f.pos, ",") }

// poll reads the events after the feed's position, up to batch per
// partition, and advances past them (and past events of other stores).
func (f *feed) poll(ctx context.Context, batch int64) ([]feedEvent, error) {
	from := make([]engine.StreamPos, len(f.parts))
	for i, part := range f.parts {
		from[i] = engine.StreamPos{Partition: part, After: f.pos[part]}
	}
	entries, err := f.e.ReadFeed(ctx, from, batch)
	if err != nil {
		return nil, err
	}
	var out []feedEvent
	for i, part := range f.parts {
		for _, en := range entries[i] {
			f.pos[part] = en.ID
			if en.Err != nil || (f.store != "" && en.Event.Store != f.store) {
				continue
			}
			out = append(out, feedEvent{ID: f.ID(), Event: en.Event})
		}
	}
	return out, nil
}

// trimmedAfter returns the partitions whose events after pos were trimmed
// already (engine.TrimmedAfter). A stream that cannot be inspected counts
// as whole.
func trimmedAfter(ctx context.Context, e *engine.Engine, parts []int, pos []string) []int {
	from := make([]engine.StreamPos, len(parts))
	for i, part := range parts {
		from[i] = engine.StreamPos{Partition: part, After: pos[part]}
	}
	gaps, _ := e.TrimmedAfter(ctx, from)
	return gaps
}
