package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Feeds follow the partitions' event streams (StreamKey) with plain reads,
// no consumer group: a reader keeps its own position in each stream, the id
// of the last entry it has seen, and reads the entries after it. The
// methods here read every partition in one pipeline; on a Redis Cluster the
// client splits the pipeline by node.

// StreamPos is a reader's position in one partition's event stream.
type StreamPos struct {
	// Partition is the stream's partition.
	Partition int
	// After is the id of the last entry read ("ms-seq"); "0-0" reads from
	// the start.
	After string
}

// FeedEntry is one entry of a partition's event stream.
type FeedEntry struct {
	// ID is the entry's stream id: a reader continues after it.
	ID string
	// Event is the entry's event when Err is nil.
	Event Event
	// Err is set when the entry is not a valid event (see ParseEvent): a
	// reader skips it, yet moves past it.
	Err error
}

// FeedHeads returns the id of the last entry of every partition's stream,
// indexed by partition: "0-0" for an empty or missing stream. It costs one
// round trip.
func (e *Engine) FeedHeads(ctx context.Context) ([]string, error) {
	cmds := make([]*redis.XMessageSliceCmd, e.cfg.Partitions)
	_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range cmds {
			cmds[i] = p.XRevRangeN(ctx, e.StreamKey(i), "+", "-", 1)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("stream heads: %w", err)
	}
	heads := make([]string, len(cmds))
	for i, c := range cmds {
		msgs, err := c.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("stream head of partition %d: %w", i, err)
		}
		heads[i] = "0-0"
		if len(msgs) > 0 {
			heads[i] = msgs[0].ID
		}
	}
	return heads, nil
}

// FeedStart returns the position a new reader starts from: FeedHeads, but
// for a stream trimmed empty the last id it ever added rather than "0-0",
// which lies before the trim (TrimmedAfter would call it a gap). It costs
// one round trip, two when a stream is empty.
func (e *Engine) FeedStart(ctx context.Context) ([]string, error) {
	heads, err := e.FeedHeads(ctx)
	if err != nil {
		return nil, err
	}
	var empty []int
	for i, h := range heads {
		if h == "0-0" {
			empty = append(empty, i)
		}
	}
	if len(empty) == 0 {
		return heads, nil
	}
	infos := make([]*redis.XInfoStreamCmd, len(empty))
	_, _ = e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for j, i := range empty {
			infos[j] = p.XInfoStream(ctx, e.StreamKey(i))
		}
		return nil
	})
	for j, i := range empty {
		info, err := infos[j].Result()
		if err != nil {
			if !isNoSuchKey(err) {
				return nil, fmt.Errorf("stream head of partition %d: %w", i, err)
			}
			continue // never written: nothing before 0-0
		}
		heads[i] = info.LastGeneratedID
	}
	return heads, nil
}

// ReadFeed reads, in one round trip and without blocking, up to count
// entries after each position of from, oldest first: out[i] holds the
// entries of from[i]'s partition. An entry that is not a valid event comes
// with its Err set.
func (e *Engine) ReadFeed(ctx context.Context, from []StreamPos, count int64) ([][]FeedEntry, error) {
	cmds := make([]*redis.XStreamSliceCmd, len(from))
	_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, f := range from {
			cmds[i] = p.XRead(ctx, &redis.XReadArgs{Streams: []string{e.StreamKey(f.Partition), f.After}, Count: count, Block: -1})
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read event streams: %w", err)
	}
	out := make([][]FeedEntry, len(from))
	for i, c := range cmds {
		streams, err := c.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("read event stream of partition %d: %w", from[i].Partition, err)
		}
		for _, st := range streams {
			for _, m := range st.Messages {
				ev, err := ParseEvent(m.ID, m.Values)
				out[i] = append(out[i], FeedEntry{ID: m.ID, Event: ev, Err: err})
			}
		}
	}
	return out, nil
}

// TrimmedAfter returns the partitions of from whose streams have lost
// entries after the position to trimming: some entries were removed
// (entries added > length) and the position is older than the first entry
// kept (or, in an emptied stream, than the last one added). It may name a
// position that missed nothing but was itself trimmed: the reader then
// reloads for nothing, never misses a change silently. A missing stream
// lost nothing. A stream that cannot be inspected is left out of the
// result, and the first such failure is returned with it.
func (e *Engine) TrimmedAfter(ctx context.Context, from []StreamPos) ([]int, error) {
	cmds := make([]*redis.XInfoStreamCmd, len(from))
	_, _ = e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, f := range from {
			cmds[i] = p.XInfoStream(ctx, e.StreamKey(f.Partition))
		}
		return nil
	})
	var gaps []int
	var first error
	for i, f := range from {
		info, err := cmds[i].Result()
		if err != nil {
			if first == nil && !isNoSuchKey(err) {
				first = fmt.Errorf("inspect event stream of partition %d: %w", f.Partition, err)
			}
			continue
		}
		if info.EntriesAdded <= info.Length {
			continue
		}
		kept := info.FirstEntry.ID
		if info.Length == 0 {
			kept = info.LastGeneratedID
		}
		after, err1 := ParseStreamID(f.After)
		keptID, err2 := ParseStreamID(kept)
		if err1 == nil && err2 == nil && after.Less(keptID) {
			gaps = append(gaps, f.Partition)
		}
	}
	return gaps, first
}

// StreamLengths returns the number of entries in every partition's stream,
// indexed by partition, in one round trip. A partition whose length could
// not be read has -1, and the first such failure is returned with the rest.
func (e *Engine) StreamLengths(ctx context.Context) ([]int64, error) {
	cmds := make([]*redis.IntCmd, e.cfg.Partitions)
	_, _ = e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range cmds {
			cmds[i] = p.XLen(ctx, e.StreamKey(i))
		}
		return nil
	})
	out := make([]int64, len(cmds))
	var first error
	for i, c := range cmds {
		n, err := c.Result()
		if err != nil {
			n = -1
			if first == nil {
				first = fmt.Errorf("length of event stream of partition %d: %w", i, err)
			}
		}
		out[i] = n
	}
	return out, first
}

// isNoSuchKey reports whether err is Redis' answer to XINFO STREAM on a
// missing key.
func isNoSuchKey(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.Contains(rerr.Error(), "no such key")
}
