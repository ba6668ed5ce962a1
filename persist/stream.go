package persist

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// streamID is a parsed Redis stream entry id "ms-seq".
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) (streamID, bool) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return streamID{}, false
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	return streamID{ms, seq}, err1 == nil && err2 == nil
}

func (id streamID) String() string {
	return strconv.FormatUint(id.ms, 10) + "-" + strconv.FormatUint(id.seq, 10)
}

func (id streamID) less(o streamID) bool {
	return id.ms < o.ms || (id.ms == o.ms && id.seq < o.seq)
}

// next returns the smallest id after id.
func (id streamID) next() streamID {
	if id.seq == ^uint64(0) {
		return streamID{id.ms + 1, 0}
	}
	return streamID{id.ms, id.seq + 1}
}

func minID(a, b streamID) streamID {
	if b.less(a) {
		return b
	}
	return a
}

// isNoGroup reports whether err says the stream or its consumer group is
// gone (Redis flushed or restarted empty), or a blocked read was cut short
// because the stream was deleted.
func isNoGroup(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "NOGROUP") || strings.HasPrefix(msg, "UNBLOCKED")
}

// ensureGroup creates the consumer group on stream key, reading from the
// start, creating an empty stream when there is none. An existing group is
// left alone.
func ensureGroup(ctx context.Context, rdb redis.UniversalClient, key, group string) error {
	err := rdb.XGroupCreateMkStream(ctx, key, group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group %s on %s: %w", group, key, err)
	}
	return nil
}

// persistedFloor returns the id below which every entry of the stream has
// been acknowledged by group (so is in PostgreSQL, or dead-lettered), and
// the number of entries not yet persisted: pending plus never delivered.
// Redis tells the latter (the group's lag) unless entries were deleted past
// the group's last delivered one, or the group was moved; then they are
// counted. ok is false when the group does not exist.
//
// XINFO GROUPS runs before XPENDING: an entry at or below the last delivered
// id that is not acknowledged is still pending at the later XPENDING, and
// entries delivered in between lie above that id. So the floor never passes
// an unacknowledged entry.
func persistedFloor(ctx context.Context, rdb redis.UniversalClient, key, group string) (floor streamID, unpersisted int64, ok bool, err error) {
	var (
		groups *redis.XInfoGroupsCmd
		pend   *redis.XPendingCmd
	)
	_, err = rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		groups = pipe.XInfoGroups(ctx, key)
		pend = pipe.XPending(ctx, key, group)
		return nil
	})
	if isNoGroup(err) || (err != nil && strings.Contains(err.Error(), "no such key")) {
		return streamID{}, 0, false, nil
	}
	if err != nil && err != redis.Nil {
		return streamID{}, 0, false, fmt.Errorf("stream %s state: %w", key, err)
	}
	gs, err := groups.Result()
	if err != nil {
		return streamID{}, 0, false, fmt.Errorf("stream %s groups: %w", key, err)
	}
	found := false
	for _, g := range gs {
		if g.Name != group {
			continue
		}
		last, okID := parseStreamID(g.LastDeliveredID)
		if !okID {
			return streamID{}, 0, false, fmt.Errorf("stream %s: bad last delivered id %q", key, g.LastDeliveredID)
		}
		floor = last.next()
		unpersisted = g.Pending
		switch {
		case g.Lag > 0:
			unpersisted += g.Lag
		case g.Lag < 0: // Redis cannot tell
			n, err := countAfter(ctx, rdb, key, last)
			if err != nil {
				return streamID{}, 0, false, err
			}
			unpersisted += n
		}
		found = true
	}
	if !found {
		return streamID{}, 0, false, nil
	}
	ps, err := pend.Result()
	if err != nil && err != redis.Nil {
		return streamID{}, 0, false, fmt.Errorf("stream %s pending: %w", key, err)
	}
	if ps != nil && ps.Count > 0 {
		lo, okID := parseStreamID(ps.Lower)
		if !okID {
			return streamID{}, 0, false, fmt.Errorf("stream %s: bad pending id %q", key, ps.Lower)
		}
		floor = minID(floor, lo)
	}
	return floor, unpersisted, true, nil
}

// countChunk is how many entries one XRANGE of countAfter reads.
const countChunk = 1000

// countAfter counts the stream's entries after id. The engine's high
// watermark bounds how many there can be.
func countAfter(ctx context.Context, rdb redis.UniversalClient, key string, id streamID) (int64, error) {
	var n int64
	from := id.next()
	for {
		msgs, err := rdb.XRangeN(ctx, key, from.String(), "+", countChunk).Result()
		if err != nil {
			return 0, fmt.Errorf("stream %s: count undelivered entries: %w", key, err)
		}
		n += int64(len(msgs))
		if len(msgs) < countChunk {
			return n, nil
		}
		last, ok := parseStreamID(msgs[len(msgs)-1].ID)
		if !ok {
			return 0, fmt.Errorf("stream %s: bad entry id %q", key, msgs[len(msgs)-1].ID)
		}
		from = last.next()
	}
}
