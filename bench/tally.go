package bench

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// secondSigFigs is the precision of the per-second histograms: coarser than
// the whole run's, they are many.
const secondSigFigs = 2

// hist is an HDR histogram of latencies in microseconds that travels as
// JSON in the HdrHistogram V2 compressed encoding, so load processes hand
// their counts to the coordinator whole and the merge is exact.
type hist struct{ *hdrhistogram.Histogram }

func newHist(sigFigs int) hist { return hist{hdrhistogram.New(histMin, histMax, sigFigs)} }

// MarshalJSON encodes the histogram (base64 of the V2 compressed form).
func (h hist) MarshalJSON() ([]byte, error) {
	if h.Histogram == nil {
		return []byte("null"), nil
	}
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return nil, err
	}
	return json.Marshal(b)
}

// UnmarshalJSON decodes what MarshalJSON wrote.
func (h *hist) UnmarshalJSON(data []byte) error {
	var b []byte
	if err := json.Unmarshal(data, &b); err != nil {
		return err
	}
	if b == nil {
		h.Histogram = nil
		return nil
	}
	x, err := hdrhistogram.Decode(b)
	if err != nil {
		return fmt.Errorf("histogram: %w", err)
	}
	h.Histogram = x
	return nil
}

// add merges o into h, making h when it is nil; it returns the values
// dropped (none when both have the same range, as all of ours do).
func (h *hist) add(o hist, sigFigs int) int64 {
	if o.Histogram == nil {
		return 0
	}
	if h.Histogram == nil {
		*h = newHist(sigFigs)
	}
	return h.Merge(o.Histogram)
}

func recordUS(h hist, d time.Duration) {
	us := max(histMin, min(histMax, d.Microseconds()))
	_ = h.RecordValue(us)
}

// tally is what one load process counted, or the coordinator's merge of
// every process's: per operation, per stage and per second of the run.
// Its methods are safe for concurrent use; the JSON form is a part's reply.
type tally struct {
	mu sync.Mutex
	// Ops holds each operation's outcomes and latency, whole run and per
	// stage.
	Ops map[string]*opTally `json:"ops"`
	// Seconds holds per second since the start the iterations due in it,
	// the iterations that completed in it, and the latency of the requests
	// due in it.
	Seconds []*secondTally `json:"seconds"`
	// Iterations counts the iterations the schedule made due, Late those
	// sent after their time because every in-flight slot was taken.
	Iterations int64 `json:"iterations"`
	Late       int64 `json:"late"`
	// SendDelay is how long after it was due each iteration was sent.
	SendDelay hist `json:"send_delay"`
	// MaxInFlight is the most requests in flight at once seen.
	MaxInFlight int `json:"max_in_flight"`
	// FirstStart and LastStart are when the load processes began their
	// schedule (one process: the same), by their own clocks.
	FirstStart time.Time `json:"first_start"`
	LastStart  time.Time `json:"last_start"`
	// Books is what the successful and unknown writes did to each item,
	// for the checker (index: store×SKUs + sku).
	Books map[int]*book `json:"books"`
	// Bought is the units each customer bought of each item with a known
	// success ("customer|index"), for the purchase-limit check.
	Bought map[string]int64 `json:"bought,omitempty"`
	// Holds counts holds left to expire; LastHold is when the last hold was
	// made (unix nanoseconds).
	Holds    int64 `json:"holds_left"`
	LastHold int64 `json:"last_hold"`

	stages int
	// live is the latency of the requests completed since the last
	// progress line.
	live hist
}

// book is one item's change by writes that succeeded (Delta) and the most
// that writes of unknown outcome may have changed it either way (Slack).
type book struct {
	Delta int64 `json:"d"`
	Slack int64 `json:"s,omitempty"`
}

// opTally is one operation's count.
type opTally struct {
	OK      int64            `json:"ok"`
	Refused int64            `json:"refused"`
	Errors  int64            `json:"errors"`
	Unknown int64            `json:"unknown"`
	Retries int64            `json:"retries"`
	Kinds   map[string]int64 `json:"kinds"`
	Latency hist             `json:"latency"`
	Stages  []hist           `json:"stages"`
	// StageErrors counts the errors of the requests due in each stage.
	StageErrors []int64 `json:"stage_errors,omitempty"`
}

// secondTally is one second of the run.
type secondTally struct {
	Due    int64           `json:"due"`
	Done   int64           `json:"done"`
	OK     int64           `json:"ok"`
	Failed int64           `json:"errors"`
	Ops    map[string]hist `json:"ops"`
}

func newTally(stages int) *tally {
	return &tally{Ops: map[string]*opTally{}, Books: map[int]*book{}, Bought: map[string]int64{}, SendDelay: newHist(histSigFigs),
		stages: stages, live: newHist(secondSigFigs)}
}

func (t *tally) op(name string) *opTally {
	o := t.Ops[name]
	if o == nil {
		o = &opTally{Kinds: map[string]int64{}, Latency: newHist(histSigFigs), Stages: make([]hist, t.stages),
			StageErrors: make([]int64, t.stages)}
		t.Ops[name] = o
	}
	return o
}

func (t *tally) second(i int) *secondTally {
	i = max(0, i)
	for len(t.Seconds) <= i {
		t.Seconds = append(t.Seconds, &secondTally{Ops: map[string]hist{}})
	}
	return t.Seconds[i]
}

// due notes an iteration due at offset at, sent delay after it, and
// whether it had to wait for an in-flight slot.
func (t *tally) due(at, delay time.Duration, late bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.Iterations++
	if late {
		t.Late++
	}
	t.second(int(at/time.Second)).Due++
	recordUS(t.SendDelay, delay)
}

// record notes one request of op, due at offset at (from which its
// latency d counts) in stage, with its error and the retries it took.
func (t *tally) record(op string, stage int, at, d time.Duration, err error, retries int) {
	kind, unknown := classify(err)
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.op(op)
	o.Retries += int64(retries)
	s := t.second(int(at / time.Second))
	switch kind {
	case "":
		o.OK++
		s.OK++
	case kindRefused, kindNotHeld, kindPurchaseLimit:
		o.Refused++
		o.Kinds[kind]++
	default:
		o.Errors++
		s.Failed++
		o.Kinds[kind]++
		if stage >= 0 && stage < len(o.StageErrors) {
			o.StageErrors[stage]++
		}
		if unknown {
			o.Unknown++
		}
	}
	recordUS(o.Latency, d)
	if stage >= 0 && stage < len(o.Stages) {
		if o.Stages[stage].Histogram == nil {
			o.Stages[stage] = newHist(histSigFigs)
		}
		recordUS(o.Stages[stage], d)
	}
	h, ok := s.Ops[op]
	if !ok {
		h = newHist(secondSigFigs)
		s.Ops[op] = h
	}
	recordUS(h, d)
	recordUS(t.live, d)
}

// finished notes an iteration (all its requests) done at offset end.
func (t *tally) finished(end time.Duration) {
	t.mu.Lock()
	t.second(int(end/time.Second)).Done++
	t.mu.Unlock()
}

// note books a write's effect on items: d[i] on item idx[i] when it
// succeeded, a slack of |d[i]| when its outcome is unknown.
func (t *tally) note(err error, idx []int, d []int64) {
	kind, unknown := classify(err)
	if kind != "" && !unknown {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, x := range idx {
		b := t.Books[x]
		if b == nil {
			b = &book{}
			t.Books[x] = b
		}
		if kind == "" {
			b.Delta += d[i]
		} else {
			b.Slack += max(d[i], -d[i])
		}
	}
}

// bought notes units a customer bought for sure.
func (t *tally) bought(customer string, idx []int, qty []int64) {
	if customer == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, x := range idx {
		t.Bought[fmt.Sprintf("%s|%d", customer, x)] += qty[i]
	}
}

func (t *tally) hold(now time.Time, leftToExpire bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.LastHold = max(t.LastHold, now.UnixNano())
	if leftToExpire {
		t.Holds++
	}
}

func (t *tally) inFlight(n int) {
	t.mu.Lock()
	t.MaxInFlight = max(t.MaxInFlight, n)
	t.mu.Unlock()
}

// progress is one second of a load process's run, for the live lines.
type progress struct {
	Second int   `json:"second"`
	Due    int64 `json:"due"`
	Done   int64 `json:"done"`
	Errors int64 `json:"errors"`
	Late   int64 `json:"late"`
	// Latency is of the requests completed during the second.
	Latency hist `json:"latency"`
}

// interval returns second i's progress and resets the live histogram.
// Due and errors count the iterations due in i (errors so far); done the
// iterations completed in it.
func (t *tally) interval(i int) progress {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.second(i)
	p := progress{Second: i, Due: s.Due, Done: s.Done, Errors: s.Failed, Late: t.Late, Latency: t.live}
	t.live = newHist(secondSigFigs)
	return p
}

// merge adds o (another process's tally) into t exactly: counts add,
// histograms merge bucket by bucket.
func (t *tally) merge(o *tally) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.Iterations += o.Iterations
	t.Late += o.Late
	t.SendDelay.add(o.SendDelay, histSigFigs)
	t.MaxInFlight += o.MaxInFlight
	t.Holds += o.Holds
	t.LastHold = max(t.LastHold, o.LastHold)
	if t.FirstStart.IsZero() || o.FirstStart.Before(t.FirstStart) {
		t.FirstStart = o.FirstStart
	}
	if o.LastStart.After(t.LastStart) {
		t.LastStart = o.LastStart
	}
	for name, x := range o.Ops {
		y := t.op(name)
		y.OK += x.OK
		y.Refused += x.Refused
		y.Errors += x.Errors
		y.Unknown += x.Unknown
		y.Retries += x.Retries
		for k, v := range x.Kinds {
			y.Kinds[k] += v
		}
		y.Latency.add(x.Latency, histSigFigs)
		for i, h := range x.Stages {
			if i < len(y.Stages) {
				y.Stages[i].add(h, histSigFigs)
			}
		}
		for i, n := range x.StageErrors {
			if i < len(y.StageErrors) {
				y.StageErrors[i] += n
			}
		}
	}
	for i, x := range o.Seconds {
		y := t.second(i)
		y.Due += x.Due
		y.Done += x.Done
		y.OK += x.OK
		y.Failed += x.Failed
		for op, h := range x.Ops {
			yh := y.Ops[op]
			yh.add(h, secondSigFigs)
			y.Ops[op] = yh
		}
	}
	for k, b := range o.Books {
		y := t.Books[k]
		if y == nil {
			y = &book{}
			t.Books[k] = y
		}
		y.Delta += b.Delta
		y.Slack += b.Slack
	}
	for k, v := range o.Bought {
		t.Bought[k] += v
	}
}
