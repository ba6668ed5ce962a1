package bench

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, 1µs..60s.
const (
	histMin     = 1
	histMax     = 60_000_000
	histSigFigs = 3
	// bucketSigFigs is coarser: one histogram per second per shard.
	bucketSigFigs = 2
	shards        = 8
)

// recorder collects one target's latencies and outcomes. Workers record into
// shards (worker % shards) so they rarely contend; snapshot merges them.
type recorder struct {
	start  time.Time
	shards [shards]shard

	ok, refused, errors atomic.Int64
}

type shard struct {
	mu      sync.Mutex
	all     *hdrhistogram.Histogram
	buckets []*hdrhistogram.Histogram // per second since start
	kinds   map[string]int64
	unknown int64
}

func newRecorder(start time.Time) *recorder {
	r := &recorder{start: start}
	for i := range r.shards {
		r.shards[i].all = hdrhistogram.New(histMin, histMax, histSigFigs)
		r.shards[i].kinds = map[string]int64{}
	}
	return r
}

// record notes one operation that began at began and took d, with its error.
func (r *recorder) record(worker int, began time.Time, d time.Duration, err error) {
	kind, unknown := classify(err)
	switch kind {
	case "":
		r.ok.Add(1)
	case kindRefused:
		r.refused.Add(1)
	default:
		r.errors.Add(1)
	}
	us := d.Microseconds()
	if us < histMin {
		us = histMin
	}
	if us > histMax {
		us = histMax
	}
	sec := int(began.Sub(r.start) / time.Second)
	if sec < 0 {
		sec = 0
	}
	s := &r.shards[worker%shards]
	s.mu.Lock()
	_ = s.all.RecordValue(us)
	for len(s.buckets) <= sec {
		s.buckets = append(s.buckets, nil)
	}
	if s.buckets[sec] == nil {
		s.buckets[sec] = hdrhistogram.New(histMin, histMax, bucketSigFigs)
	}
	_ = s.buckets[sec].RecordValue(us)
	if kind != "" {
		s.kinds[kind]++
		if unknown {
			s.unknown++
		}
	}
	s.mu.Unlock()
}

// Latency summarises a histogram in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		Count: h.TotalCount(), Mean: h.Mean() / 1000,
		P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)), P99: ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max()),
	}
}

// Second is one second of a target's run, for the plot.
type Second struct {
	// T is the second since the target's load began.
	T       int     `json:"t"`
	Ops     int64   `json:"ops"`
	Latency Latency `json:"latency"`
}

// snapshot is a recorder's merged content.
type snapshot struct {
	all     Latency
	seconds []Second
	kinds   map[string]int64
	unknown int64
}

func (r *recorder) snapshot() snapshot {
	all := hdrhistogram.New(histMin, histMax, histSigFigs)
	var buckets []*hdrhistogram.Histogram
	out := snapshot{kinds: map[string]int64{}}
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		all.Merge(s.all)
		for sec, b := range s.buckets {
			if b == nil {
				continue
			}
			for len(buckets) <= sec {
				buckets = append(buckets, nil)
			}
			if buckets[sec] == nil {
				buckets[sec] = hdrhistogram.New(histMin, histMax, bucketSigFigs)
			}
			buckets[sec].Merge(b)
		}
		for k, v := range s.kinds {
			out.kinds[k] += v
		}
		out.unknown += s.unknown
		s.mu.Unlock()
	}
	out.all = latencyOf(all)
	for sec, b := range buckets {
		if b == nil {
			continue
		}
		l := latencyOf(b)
		out.seconds = append(out.seconds, Second{T: sec, Ops: l.Count, Latency: l})
	}
	sort.Slice(out.seconds, func(i, j int) bool { return out.seconds[i].T < out.seconds[j].T })
	return out
}
