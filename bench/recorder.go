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
	start time.Time
	// width is the span of one timeline bucket.
	width  time.Duration
	shards [shards]shard

	ok, refused, errors atomic.Int64

	// slots holds, per worker, the time its next operation was due under a
	// paced load (zero: unpaced). Only that worker touches its slot.
	slots []time.Time
	// cpu is the CPU used during the load, set when it ends.
	cpu map[string]float64
	// persisted is the events the target's persister wrote during the load.
	persisted int64
}

// takeSlot returns and clears worker w's due time.
func (r *recorder) takeSlot(w int) time.Time {
	if w >= len(r.slots) {
		return time.Time{}
	}
	s := r.slots[w]
	r.slots[w] = time.Time{}
	return s
}

type shard struct {
	mu      sync.Mutex
	all     *hdrhistogram.Histogram
	buckets []*hdrhistogram.Histogram // per width since start
	kinds   map[string]int64
	unknown int64
}

// bucketWidth picks the timeline's resolution for a load of duration d:
// about a hundred buckets, none shorter than 100ms or longer than 1s, so a
// sale that sells out in under a second still draws a curve.
func bucketWidth(d time.Duration) time.Duration {
	w := (d / 100).Round(100 * time.Millisecond)
	return max(100*time.Millisecond, min(time.Second, w))
}

func newRecorder(start time.Time, width time.Duration) *recorder {
	r := &recorder{start: start, width: width}
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
	sec := int(began.Sub(r.start) / r.width)
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
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		Count: h.TotalCount(), Mean: h.Mean() / 1000,
		P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)), P95: ms(h.ValueAtQuantile(95)), P99: ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max()),
	}
}

// percentile returns the summary's value at q (50, 90, 95, 99, 99.9 or
// 100).
func (l Latency) percentile(q float64) float64 {
	switch q {
	case 50:
		return l.P50
	case 90:
		return l.P90
	case 95:
		return l.P95
	case 99:
		return l.P99
	case 99.9:
		return l.P999
	}
	return l.Max
}

// Bucket is one slice of a target's run, for the plot: the operations that
// began in it and their latency.
type Bucket struct {
	// T is the bucket's start in seconds since the target's load began, and
	// Width its span in seconds.
	T     float64 `json:"t"`
	Width float64 `json:"width"`
	Ops   int64   `json:"ops"`
	// Rate is Ops per second of the bucket's span (the last bucket's span
	// ends with the load).
	Rate    float64 `json:"ops_per_sec"`
	Latency Latency `json:"latency"`
}

// snapshot is a recorder's merged content.
type snapshot struct {
	all      Latency
	timeline []Bucket
	kinds    map[string]int64
	unknown  int64
}

// snapshot merges the shards; elapsed is the load's wall time.
func (r *recorder) snapshot(elapsed time.Duration) snapshot {
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
		from := time.Duration(sec) * r.width
		span := min(r.width, elapsed-from)
		if span < r.width/10 {
			span = r.width / 10
		}
		out.timeline = append(out.timeline, Bucket{T: from.Seconds(), Width: r.width.Seconds(), Ops: l.Count,
			Rate: float64(l.Count) / span.Seconds(), Latency: l})
	}
	sort.Slice(out.timeline, func(i, j int) bool { return out.timeline[i].T < out.timeline[j].T })
	return out
}
