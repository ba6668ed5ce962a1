package persist

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/shelfline/inventory/engine"
)

// The bound on the wait for downstream groups. The persister trims no entry
// a downstream group (the webhook workers', the Kafka relay's) has not
// acknowledged, but a group nobody reads any more (a relay tried once and
// removed) would then hold the stream forever: it would grow until writes
// meet the engine's high watermark and are refused. So a downstream group
// stops holding the trimming of a partition, is "released" there, when
//
//   - its oldest unacknowledged entry is older than DownstreamMaxLag (by
//     the entry id's time), or
//   - it has more than DownstreamMaxBacklog entries unacknowledged,
//
// and then holds nothing on that partition until it has caught up: until
// nothing it has not acknowledged lies below what the persister trims for
// itself (retention and its own progress). Entries the group had not read
// are trimmed when due and it never reads them. The persister logs a
// release at error level when it happens (and at info level when the group
// holds again) and counts it in PersisterStats.Downstream. The group itself
// is left in place; a reader that comes back reads on from the oldest entry
// left, and `inventory groups forget NAME` removes a group that is not
// coming back.

// errFound stops a scan at its first entry.
var errFound = errors.New("found")

// downstreamCut lowers cut to what the Downstream groups still need on the
// partition, within the bound above.
func (p *Persister) downstreamCut(ctx context.Context, st *partition, cut engine.StreamID, now time.Time) (engine.StreamID, error) {
	for _, g := range p.cfg.Downstream {
		ds, ok, err := p.e.GroupState(ctx, st.id, g)
		if err != nil {
			return cut, err
		}
		if !ok || !ds.Floor.Less(cut) {
			// No such group (any more), or it holds back nothing.
			p.setReleased(st, g, "", ds)
			continue
		}
		if st.released[g] {
			continue // released until it has caught up
		}
		why, err := p.releaseReason(ctx, st, ds, now)
		if err != nil {
			return cut, err
		}
		if why != "" {
			p.setReleased(st, g, why, ds)
			continue
		}
		cut = ds.Floor
	}
	return cut, nil
}

// releaseReason tells why a downstream group that holds the partition's
// trimming at ds must stop holding it, or "" when it may hold it.
func (p *Persister) releaseReason(ctx context.Context, st *partition, ds engine.GroupState, now time.Time) (string, error) {
	if p.cfg.DownstreamMaxBacklog > 0 && ds.Unacked > p.cfg.DownstreamMaxBacklog {
		return fmt.Sprintf("%d entries unacknowledged, more than the %d a downstream group may hold", ds.Unacked, p.cfg.DownstreamMaxBacklog), nil
	}
	if p.cfg.DownstreamMaxLag <= 0 || ds.Unacked == 0 {
		return "", nil
	}
	bound := engine.StreamID{Ms: uint64(max(now.Add(-p.cfg.DownstreamMaxLag).UnixMilli(), 0))}
	if !ds.Floor.Less(bound) {
		return "", nil
	}
	// The floor's own time may be old although the entries above it are
	// new (a group idle until a moment ago): the age that counts is that of
	// the oldest entry at or above it.
	var oldest engine.StreamID
	err := p.e.ScanStream(ctx, st.id, ds.Floor, 1, func(es []engine.StreamEntry) error {
		id, err := engine.ParseStreamID(es[0].ID)
		if err != nil {
			return err
		}
		oldest = id
		return errFound
	})
	if err != nil && !errors.Is(err, errFound) {
		return "", err
	}
	if oldest.IsZero() || !oldest.Less(bound) {
		return "", nil
	}
	return fmt.Sprintf("its oldest unacknowledged entry %s is %s old, more than the %s a downstream group may lag",
		oldest, now.Sub(time.UnixMilli(int64(oldest.Ms))).Round(time.Second), p.cfg.DownstreamMaxLag), nil
}

// setReleased records whether group g is released on the partition (why is
// not empty) and logs the changes.
func (p *Persister) setReleased(st *partition, g, why string, ds engine.GroupState) {
	was := st.released[g]
	if (why != "") == was {
		return
	}
	if why == "" {
		delete(st.released, g)
		p.log.Info("downstream group holds the stream's trimming again", zap.Int(logPartition, st.id), zap.String("group", g))
	} else {
		if st.released == nil {
			st.released = map[string]bool{}
		}
		st.released[g] = true
		p.log.Error("downstream group no longer holds the stream's trimming: the entries it has not acknowledged are trimmed "+
			"when due and it will never read them; if nothing reads this group any more, run `inventory groups forget "+g+"`",
			zap.Int(logPartition, st.id), zap.String("group", g), zap.String("reason", why), zap.Int64("unacknowledged", ds.Unacked))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.released == nil {
		p.released = map[string]map[int]bool{}
	}
	if p.released[g] == nil {
		p.released[g] = map[int]bool{}
	}
	if why == "" {
		delete(p.released[g], st.id)
		return
	}
	p.released[g][st.id] = true
	if p.releases == nil {
		p.releases = map[string]int64{}
	}
	p.releases[g]++
}

// DownstreamStats is what PersisterStats reports of one downstream group.
type DownstreamStats struct {
	// Releases counts the times the group stopped holding the trimming of
	// one of this worker's partitions (see PersisterConfig.DownstreamMaxLag).
	Releases int64 `json:"releases"`
	// Released lists the partitions where it holds nothing now.
	Released []int `json:"released"`
}
