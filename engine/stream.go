package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// A partition's stream (StreamKey) holds its events; the persister reads it
// through a consumer group, acknowledges what reached the ledger, and trims
// behind itself. Every stream command of the product runs here: reads from
// an id, group reads, claims, acknowledgements, trims, lengths, the group's
// progress, and the dead-letter stream (DeadLetterKey). docs/design.md §6
// says how the persister uses them.

// ErrNoGroup: the stream or its consumer group does not exist (Redis was
// flushed or restarted empty), or a blocked read ended because the stream
// was deleted. Create the group again (CreateGroup) and read from the start.
var ErrNoGroup = errors.New("stream or consumer group gone")

// StreamID is a stream entry's id, "<ms>-<seq>": the unix milliseconds at
// which Redis added it and a sequence number within that millisecond. Ids
// grow with every entry added. The zero StreamID is below every entry.
type StreamID struct{ Ms, Seq uint64 }

// ParseStreamID parses an entry id "<ms>-<seq>".
func ParseStreamID(s string) (StreamID, error) {
	a, b, ok := strings.Cut(s, "-")
	if ok {
		ms, err1 := strconv.ParseUint(a, 10, 64)
		seq, err2 := strconv.ParseUint(b, 10, 64)
		if err1 == nil && err2 == nil {
			return StreamID{ms, seq}, nil
		}
	}
	return StreamID{}, fmt.Errorf("bad stream entry id %q", s)
}

// String returns the id as Redis writes it, "<ms>-<seq>".
func (id StreamID) String() string {
	return strconv.FormatUint(id.Ms, 10) + "-" + strconv.FormatUint(id.Seq, 10)
}

// Less reports whether id comes before o.
func (id StreamID) Less(o StreamID) bool {
	return id.Ms < o.Ms || (id.Ms == o.Ms && id.Seq < o.Seq)
}

// Next returns the smallest id after id.
func (id StreamID) Next() StreamID {
	if id.Seq == ^uint64(0) {
		return StreamID{id.Ms + 1, 0}
	}
	return StreamID{id.Ms, id.Seq + 1}
}

// IsZero reports whether id is the zero id, below every entry.
func (id StreamID) IsZero() bool { return id == StreamID{} }

// rangeStart is id as the start of an XRANGE: "-" for the zero id.
func (id StreamID) rangeStart() string {
	if id.IsZero() {
		return "-"
	}
	return id.String()
}

// StreamEntry is one entry of a stream: its id and its fields (ParseEvent
// reads an event from them).
type StreamEntry struct {
	ID     string
	Values map[string]any
}

func entries(msgs []redis.XMessage) []StreamEntry {
	if len(msgs) == 0 {
		return nil
	}
	out := make([]StreamEntry, len(msgs))
	for i, m := range msgs {
		out[i] = StreamEntry{ID: m.ID, Values: m.Values}
	}
	return out
}

// Consumer names a reader of a partition's stream: its consumer group and
// its own name in the group.
type Consumer struct {
	Group string
	Name  string
}

// streamError wraps err from a stream command, marking with ErrNoGroup an
// error that says the stream or its group is gone.
func streamError(what string, err error) error {
	msg := err.Error()
	if strings.HasPrefix(msg, "NOGROUP") || strings.HasPrefix(msg, "UNBLOCKED") {
		return fmt.Errorf("%s: %w: %w", what, ErrNoGroup, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// CreateGroup creates consumer group on partition p's stream, reading from
// the start, and creates an empty stream when there is none. An existing
// group is left as it is.
func (e *Engine) CreateGroup(ctx context.Context, p int, group string) error {
	key := e.StreamKey(p)
	err := e.rdb.XGroupCreateMkStream(ctx, key, group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group %s on %s: %w", group, key, err)
	}
	return nil
}

// ReadPending returns up to count of the entries of partition p's stream
// that were delivered to c and not acknowledged yet, oldest first. It does
// not wait. Errors: ErrNoGroup (wrapped) when the group is gone.
func (e *Engine) ReadPending(ctx context.Context, p int, c Consumer, count int) ([]StreamEntry, error) {
	return e.readGroup(ctx, p, c, "0", count, -1)
}

// ReadNew delivers to c up to count entries of partition p's stream that
// were never delivered to its group, waiting up to block for some when there
// are none (block below 1ms does not wait). No entries is an empty result,
// not an error. Errors: ErrNoGroup (wrapped) when the group is gone, or the
// stream is deleted while the read waits.
func (e *Engine) ReadNew(ctx context.Context, p int, c Consumer, count int, block time.Duration) ([]StreamEntry, error) {
	if block < time.Millisecond {
		block = -1
	}
	return e.readGroup(ctx, p, c, ">", count, block)
}

func (e *Engine) readGroup(ctx context.Context, p int, c Consumer, from string, count int, block time.Duration) ([]StreamEntry, error) {
	key := e.StreamKey(p)
	res, err := e.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: c.Group, Consumer: c.Name, Streams: []string{key, from}, Count: int64(count), Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, streamError(fmt.Sprintf("read %s as %s/%s", key, c.Group, c.Name), err)
	}
	if len(res) == 0 {
		return nil, nil
	}
	return entries(res[0].Messages), nil
}

// ClaimIdle moves to c up to count entries of partition p's stream that have
// been pending on other consumers of its group for at least minIdle
// (XAUTOCLAIM), scanning the pending entries from id start on. It returns
// them and where the next scan starts: the zero id once the scan went
// through every pending entry. Errors: ErrNoGroup (wrapped) when the group
// is gone.
func (e *Engine) ClaimIdle(ctx context.Context, p int, c Consumer, minIdle time.Duration, start StreamID, count int) ([]StreamEntry, StreamID, error) {
	key := e.StreamKey(p)
	msgs, cursor, err := e.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: key, Group: c.Group, Consumer: c.Name, MinIdle: minIdle, Start: start.String(), Count: int64(count),
	}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, StreamID{}, streamError(fmt.Sprintf("claim idle entries of %s as %s/%s", key, c.Group, c.Name), err)
	}
	next, _ := ParseStreamID(cursor) // no cursor: the scan is over
	return entries(msgs), next, nil
}

// Ack acknowledges entries of partition p's stream for group and returns
// how many were pending (an entry acknowledged before does not count).
func (e *Engine) Ack(ctx context.Context, p int, group string, ids ...string) (int64, error) {
	key := e.StreamKey(p)
	n, err := e.rdb.XAck(ctx, key, group, ids...).Result()
	if err != nil {
		return 0, streamError(fmt.Sprintf("acknowledge %d entries of %s for %s", len(ids), key, group), err)
	}
	return n, nil
}

// TrimStream deletes the entries of partition p's stream below minID (XTRIM
// MINID). New entries always get higher ids than existing ones, so an entry
// added meanwhile is never trimmed.
func (e *Engine) TrimStream(ctx context.Context, p int, minID StreamID) error {
	key := e.StreamKey(p)
	if err := e.rdb.XTrimMinID(ctx, key, minID.String()).Err(); err != nil {
		return fmt.Errorf("trim %s: %w", key, err)
	}
	return nil
}

// StreamLen returns the number of entries in partition p's stream.
func (e *Engine) StreamLen(ctx context.Context, p int) (int64, error) {
	key := e.StreamKey(p)
	n, err := e.rdb.XLen(ctx, key).Result()
	if err != nil {
		return 0, fmt.Errorf("length of %s: %w", key, err)
	}
	return n, nil
}

// ScanStream calls fn with the entries of partition p's stream from id from
// on (from the first when from is zero), oldest first, in chunks of at most
// chunk entries, until the end of the stream or until fn returns an error,
// which it returns as it is. A chunk shorter than chunk is the last. Each
// chunk is read by its own command: entries added or trimmed meanwhile may
// or may not be seen.
func (e *Engine) ScanStream(ctx context.Context, p int, from StreamID, chunk int, fn func([]StreamEntry) error) error {
	return e.scan(ctx, e.StreamKey(p), from, chunk, func(msgs []redis.XMessage) error {
		return fn(entries(msgs))
	})
}

// scan reads stream key from id from on, in chunks of at most chunk
// entries, and calls fn with each non-empty chunk.
func (e *Engine) scan(ctx context.Context, key string, from StreamID, chunk int, fn func([]redis.XMessage) error) error {
	start := from.rangeStart()
	for {
		msgs, err := e.rdb.XRangeN(ctx, key, start, "+", int64(chunk)).Result()
		if err != nil {
			return fmt.Errorf("read %s from %s: %w", key, start, err)
		}
		if len(msgs) > 0 {
			if err := fn(msgs); err != nil {
				return err
			}
		}
		if len(msgs) < chunk {
			return nil
		}
		last, err := ParseStreamID(msgs[len(msgs)-1].ID)
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		start = last.Next().String()
	}
}

// GroupState is where a consumer group stands on a partition's stream.
type GroupState struct {
	// Floor is the id below which every entry of the stream has been
	// acknowledged by the group: the group's last delivered id plus one,
	// lowered to its oldest pending entry.
	Floor StreamID
	// Unacked counts the entries not acknowledged yet: those pending plus
	// those never delivered.
	Unacked int64
}

// countChunk is how many entries one XRANGE of countAfter reads.
const countChunk = 1000

// GroupState returns where group stands on partition p's stream; ok is
// false when the stream or the group does not exist. Redis tells how many
// entries were never delivered (the group's lag) unless entries were
// deleted past the group's last delivered one, or the group was moved; then
// they are counted, at most the engine's high watermark of them.
//
// XINFO GROUPS runs before XPENDING, in one pipeline: an entry at or below
// the last delivered id that is not acknowledged is still pending at the
// later XPENDING, and entries delivered in between lie above that id. So
// the floor never passes an unacknowledged entry.
func (e *Engine) GroupState(ctx context.Context, p int, group string) (st GroupState, ok bool, err error) {
	key := e.StreamKey(p)
	var (
		groups *redis.XInfoGroupsCmd
		pend   *redis.XPendingCmd
	)
	_, err = e.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		groups = pipe.XInfoGroups(ctx, key)
		pend = pipe.XPending(ctx, key, group)
		return nil
	})
	if err != nil {
		msg := err.Error()
		if strings.HasPrefix(msg, "NOGROUP") || strings.HasPrefix(msg, "UNBLOCKED") || strings.Contains(msg, "no such key") {
			return GroupState{}, false, nil
		}
		if !errors.Is(err, redis.Nil) {
			return GroupState{}, false, fmt.Errorf("state of %s: %w", key, err)
		}
	}
	gs, err := groups.Result()
	if err != nil {
		return GroupState{}, false, fmt.Errorf("groups of %s: %w", key, err)
	}
	for _, g := range gs {
		if g.Name != group {
			continue
		}
		last, err := ParseStreamID(g.LastDeliveredID)
		if err != nil {
			return GroupState{}, false, fmt.Errorf("group %s of %s: last delivered id: %w", group, key, err)
		}
		st.Floor = last.Next()
		st.Unacked = g.Pending
		switch {
		case g.Lag > 0:
			st.Unacked += g.Lag
		case g.Lag < 0: // Redis cannot tell
			n, err := e.countAfter(ctx, key, last)
			if err != nil {
				return GroupState{}, false, err
			}
			st.Unacked += n
		}
		ok = true
	}
	if !ok {
		return GroupState{}, false, nil
	}
	ps, err := pend.Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return GroupState{}, false, fmt.Errorf("pending entries of %s for %s: %w", key, group, err)
	}
	if ps != nil && ps.Count > 0 {
		lo, err := ParseStreamID(ps.Lower)
		if err != nil {
			return GroupState{}, false, fmt.Errorf("pending entries of %s for %s: %w", key, group, err)
		}
		if lo.Less(st.Floor) {
			st.Floor = lo
		}
	}
	return st, true, nil
}

// countAfter counts the entries of stream key after id.
func (e *Engine) countAfter(ctx context.Context, key string, id StreamID) (int64, error) {
	var n int64
	err := e.scan(ctx, key, id.Next(), countChunk, func(msgs []redis.XMessage) error {
		n += int64(len(msgs))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count undelivered entries: %w", err)
	}
	return n, nil
}

// DeadLetter is an entry of a partition's dead-letter stream
// (DeadLetterKey): a stream entry the ledger could not take, and why. In
// Redis its fields are "id" (EntryID), "error", "consumer" and the entry's
// fields, each prefixed with "f:".
type DeadLetter struct {
	// ID is the dead letter's own id in the dead-letter stream; set by
	// reads, ignored by AddDeadLetter.
	ID string
	// EntryID is the entry's id in the partition's stream.
	EntryID string
	// Error says why the entry was not persisted.
	Error string
	// Consumer names the worker that moved the entry.
	Consumer string
	// Values are the entry's fields.
	Values map[string]any
}

// dead-letter fields
const (
	dlID       = "id"
	dlError    = "error"
	dlConsumer = "consumer"
	dlField    = "f:"
)

// AddDeadLetter appends d to partition p's dead-letter stream, capped at
// about maxLen entries (the oldest go first).
func (e *Engine) AddDeadLetter(ctx context.Context, p int, d DeadLetter, maxLen int64) error {
	vals := make([]any, 0, 6+2*len(d.Values))
	vals = append(vals, dlID, d.EntryID, dlError, d.Error, dlConsumer, d.Consumer)
	for k, v := range d.Values {
		vals = append(vals, dlField+k, v)
	}
	key := e.DeadLetterKey(p)
	err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, MaxLen: maxLen, Approx: true, Values: vals}).Err()
	if err != nil {
		return fmt.Errorf("dead-letter entry %s to %s: %w", d.EntryID, key, err)
	}
	return nil
}

// ScanDeadLetters calls fn with partition p's dead letters, oldest first, in
// chunks of at most chunk, until the end of the dead-letter stream or until
// fn returns an error, which it returns as it is.
func (e *Engine) ScanDeadLetters(ctx context.Context, p int, chunk int, fn func([]DeadLetter) error) error {
	return e.scan(ctx, e.DeadLetterKey(p), StreamID{}, chunk, func(msgs []redis.XMessage) error {
		out := make([]DeadLetter, len(msgs))
		for i, m := range msgs {
			d := DeadLetter{ID: m.ID, Values: make(map[string]any, len(m.Values))}
			for k, v := range m.Values {
				switch k {
				case dlID:
					d.EntryID, _ = v.(string)
				case dlError:
					d.Error, _ = v.(string)
				case dlConsumer:
					d.Consumer, _ = v.(string)
				default:
					if f, ok := strings.CutPrefix(k, dlField); ok {
						d.Values[f] = v
					}
				}
			}
			out[i] = d
		}
		return fn(out)
	})
}

// The persister's workers keep health records of the partitions they fail
// to persist, in a hash per partition (PersisterHealthKey), one field per
// worker, so that any process can report them. The engine stores the
// records as they are given; the persister says what they hold.

// PutPersisterHealth sets worker's health record of partition p and makes
// the partition's records live ttl from now (every worker's: the hash
// expires as a whole, and each put renews it).
func (e *Engine) PutPersisterHealth(ctx context.Context, p int, worker string, record []byte, ttl time.Duration) error {
	key := e.PersisterHealthKey(p)
	_, err := e.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.HSet(ctx, key, worker, record)
		pipe.PExpire(ctx, key, ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("put health record of %s in %s: %w", worker, key, err)
	}
	return nil
}

// DeletePersisterHealth deletes worker's health record of partition p, if
// there is one.
func (e *Engine) DeletePersisterHealth(ctx context.Context, p int, worker string) error {
	key := e.PersisterHealthKey(p)
	if err := e.rdb.HDel(ctx, key, worker).Err(); err != nil {
		return fmt.Errorf("delete health record of %s in %s: %w", worker, key, err)
	}
	return nil
}

// PersisterHealth returns the health records of partition p, by worker.
func (e *Engine) PersisterHealth(ctx context.Context, p int) (map[string][]byte, error) {
	key := e.PersisterHealthKey(p)
	all, err := e.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("health records in %s: %w", key, err)
	}
	out := make(map[string][]byte, len(all))
	for w, r := range all {
		out[w] = []byte(r)
	}
	return out, nil
}

// StreamGroup is one consumer group of a partition's stream.
type StreamGroup struct {
	// Name is the group's name.
	Name string
	// State is where it stands (GroupState).
	State GroupState
}

// StreamGroups returns the consumer groups of partition p's stream, by name;
// none when the stream does not exist.
func (e *Engine) StreamGroups(ctx context.Context, p int) ([]StreamGroup, error) {
	key := e.StreamKey(p)
	gs, err := e.rdb.XInfoGroups(ctx, key).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") || errors.Is(err, redis.Nil) {
			return nil, nil
		}
		return nil, fmt.Errorf("groups of %s: %w", key, err)
	}
	out := make([]StreamGroup, 0, len(gs))
	for _, g := range gs {
		st, ok, err := e.GroupState(ctx, p, g.Name)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, StreamGroup{Name: g.Name, State: st})
		}
	}
	slices.SortFunc(out, func(a, b StreamGroup) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DestroyGroup removes consumer group from partition p's stream (XGROUP
// DESTROY), with its pending entries; it reports whether there was one.
func (e *Engine) DestroyGroup(ctx context.Context, p int, group string) (bool, error) {
	key := e.StreamKey(p)
	n, err := e.rdb.XGroupDestroy(ctx, key, group).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") || errors.Is(err, redis.Nil) {
			return false, nil
		}
		return false, fmt.Errorf("destroy consumer group %s of %s: %w", group, key, err)
	}
	return n > 0, nil
}

// SkipToEnd moves group past every entry of partition p's stream, for a
// reader that has nothing to deliver, so it reads none of them (a group's
// read and acknowledgement of an entry cost Redis more than the script that
// appended it). It reads the stream's last entry id and count first, then
// asks idle, and moves the group only when idle still says so: an entry
// appended after idle's answer is never skipped. The group's lag stays
// exact (ENTRIESREAD). moved is false when the stream is empty or idle said
// no.
func (e *Engine) SkipToEnd(ctx context.Context, p int, group string, idle func(context.Context) (bool, error)) (moved bool, err error) {
	key := e.StreamKey(p)
	info, err := e.rdb.XInfoStream(ctx, key).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return false, nil
		}
		return false, streamError("stream info of "+key, err)
	}
	if info.LastGeneratedID == "" || info.LastGeneratedID == "0-0" {
		return false, nil
	}
	ok, err := idle(ctx)
	if err != nil || !ok {
		return false, err
	}
	if err := e.rdb.Do(ctx, "XGROUP", "SETID", key, group, info.LastGeneratedID, "ENTRIESREAD", info.EntriesAdded).Err(); err != nil {
		return false, streamError("move group "+group+" on "+key, err)
	}
	return true, nil
}
