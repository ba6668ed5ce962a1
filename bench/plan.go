package bench

import (
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Operation names of a rehearsal's mix: each is one HTTP request of the API
// (docs/design.md §12), except reserve, which is followed by its commit or
// release (or by nothing: the hold expires).
const (
	OpCheckout     = "checkout"
	OpReserve      = "reserve"
	OpCommit       = "commit"
	OpRelease      = "release"
	OpRead         = "read"
	OpAvailability = "availability"
	OpAdjust       = "adjust"
	OpBulk         = "bulk"
	// OpTransfer creates a transfer of one SKU between two of the run's
	// stores; OpReceive receives one the run created (all its units),
	// OpCancel cancels one (its units go back).
	OpTransfer = "transfer"
	OpReceive  = "receive"
	OpCancel   = "cancel"
)

// mixOps are the operations a mix weighs, in report order; commit and
// release follow a reserve.
var mixOps = []string{OpCheckout, OpReserve, OpRead, OpAvailability, OpAdjust, OpBulk, OpTransfer, OpReceive, OpCancel}

// allOps are every operation a rehearsal records.
var allOps = []string{OpCheckout, OpReserve, OpCommit, OpRelease, OpRead, OpAvailability, OpAdjust, OpBulk,
	OpTransfer, OpReceive, OpCancel}

// Plan is a rehearsal of a peak: the load profile (stages of arrival
// rates), the mix of operations, the catalog they hit and the service
// levels that decide whether the run passed. It is read from YAML or JSON
// (LoadPlan); durations are Go durations ("30s", "2m"). The zero value of
// every field but Stages selects its documented default.
type Plan struct {
	// Name labels the report. Defaults to "rehearsal".
	Name string `yaml:"name" json:"name"`
	// StartRate is the arrival rate (iterations per second) the first
	// stage ramps from. Defaults to 0, as k6's ramping-arrival-rate.
	StartRate float64 `yaml:"start_rate" json:"start_rate"`
	// Stages is the load profile: each stage ramps linearly from the rate
	// the previous one ended at (StartRate for the first) to its Rate over
	// its Duration; a stage with the same rate as the last one holds it.
	// Required: at least one stage.
	Stages []Stage `yaml:"stages" json:"stages"`
	// Mix weighs the operations an iteration draws. Defaults to checkout 1.
	Mix Mix `yaml:"mix" json:"mix"`
	// Catalog is the stores and items the run creates (under names of its
	// own) before the load.
	Catalog Catalog `yaml:"catalog" json:"catalog"`
	// Hot skews which SKU a line takes. Defaults to uniform.
	Hot Hot `yaml:"hot" json:"hot"`
	// Customers, when Count is positive, names a customer on every checkout
	// and reservation, drawn among Count, and gives every item a purchase
	// limit of Limit units per customer (max_per_customer).
	Customers Customers `yaml:"customers" json:"customers"`
	// Reservation is what a reserve iteration does next.
	Reservation Reservation `yaml:"reservation" json:"reservation"`
	// Client is how requests are sent.
	Client ClientSpec `yaml:"client" json:"client"`
	// Thresholds are the service levels, e.g. "checkout.p99<50ms",
	// "errors<0.1%", "oversold==0" (see ParseThreshold). A run whose
	// threshold fails exits non-zero.
	Thresholds []string `yaml:"thresholds" json:"thresholds"`
}

// Stage is one step of the load profile.
type Stage struct {
	// Name labels the stage in progress lines and reports. Defaults to
	// "stage N".
	Name string `yaml:"name" json:"name"`
	// Duration is the stage's length. Required.
	Duration time.Duration `yaml:"duration" json:"duration"`
	// Rate is the arrival rate the stage ends at, in iterations per second
	// over all load processes.
	Rate float64 `yaml:"rate" json:"rate"`
}

// Mix holds the relative weights of the operations; zero leaves one out.
type Mix struct {
	Checkout     float64 `yaml:"checkout" json:"checkout"`
	Reserve      float64 `yaml:"reserve" json:"reserve"`
	Read         float64 `yaml:"read" json:"read"`
	Availability float64 `yaml:"availability" json:"availability"`
	Adjust       float64 `yaml:"adjust" json:"adjust"`
	Bulk         float64 `yaml:"bulk" json:"bulk"`
	// Transfer creates transfers (POST /v1/transfers) of 1..3 units of one
	// SKU from one of the run's stores to the next; Receive and Cancel act
	// on one the run created and nobody received or cancelled yet (none
	// open: the iteration creates one instead). They need two stores.
	Transfer float64 `yaml:"transfer" json:"transfer"`
	Receive  float64 `yaml:"receive" json:"receive"`
	Cancel   float64 `yaml:"cancel" json:"cancel"`
}

func (m Mix) weights() []float64 {
	return []float64{m.Checkout, m.Reserve, m.Read, m.Availability, m.Adjust, m.Bulk, m.Transfer, m.Receive, m.Cancel}
}

// Catalog sizes the items a rehearsal creates.
type Catalog struct {
	// Stores and SKUs: Stores stores of SKUs items each. Default to 4 and 200.
	Stores int `yaml:"stores" json:"stores"`
	SKUs   int `yaml:"skus" json:"skus"`
	// OnHand is every item's starting stock. Defaults to 1000.
	OnHand int64 `yaml:"on_hand" json:"on_hand"`
	// HotOnHand, when positive, is the hot SKU's (sku0's) starting stock in
	// every store instead.
	HotOnHand int64 `yaml:"hot_on_hand" json:"hot_on_hand"`
	// Lines is the most lines of a checkout or reservation (each draws
	// 1..Lines). Defaults to 1.
	Lines int `yaml:"lines" json:"lines"`
	// BulkLines is the lines of one bulk adjustment. Defaults to 20.
	BulkLines int `yaml:"bulk_lines" json:"bulk_lines"`
}

// Hot picks the SKU of each line: with Share, that fraction of lines take
// sku0 and the rest are uniform; with Zipf (an exponent above 1), SKU k is
// drawn with a weight of 1/(k+1)^Zipf; with neither, uniformly. Share and
// Zipf exclude each other.
type Hot struct {
	Share float64 `yaml:"share" json:"share"`
	Zipf  float64 `yaml:"zipf" json:"zipf"`
}

// Customers configures purchase limits.
type Customers struct {
	Count int   `yaml:"count" json:"count"`
	Limit int64 `yaml:"limit" json:"limit"`
}

// Reservation splits what follows a hold: Commit and Release are the
// fractions committed and released at once; the rest expire after TTL.
type Reservation struct {
	// TTL of every hold, whole seconds. Defaults to 2s.
	TTL     time.Duration `yaml:"ttl" json:"ttl"`
	Commit  float64       `yaml:"commit" json:"commit"`
	Release float64       `yaml:"release" json:"release"`
}

// ClientSpec is how the load client sends.
type ClientSpec struct {
	// Idempotency sends an Idempotency-Key with every write, as a real
	// client does, and retries a write whose outcome is unknown (a
	// timeout, a lost connection, a 5xx other than 503) with the same key,
	// up to Retries times. Off by default: the fast path sends no key, the
	// figures compare with the harness's other targets.
	Idempotency bool `yaml:"idempotency" json:"idempotency"`
	// Retries is the retries of an unknown outcome (with Idempotency).
	// Defaults to 2.
	Retries int `yaml:"retries" json:"retries"`
	// Timeout bounds one request. Defaults to 10s.
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
	// MaxInFlight bounds the requests in flight of one load process: an
	// iteration due when that many are in flight waits, and is counted as
	// not sent on time (its latency still counts from when it was due).
	// Defaults to 2000.
	MaxInFlight int `yaml:"max_in_flight" json:"max_in_flight"`
	// ClosedLoop, when positive, drops the arrival schedule: that many
	// workers (split over the load processes) each send their next
	// iteration when the last one answered, for the stages' total
	// duration; latency counts from each send (what a closed loop can
	// measure: throughput at saturation, not latency at a rate).
	ClosedLoop int `yaml:"closed_loop" json:"closed_loop"`
}

// LoadPlan reads a plan from a YAML or JSON file (JSON is YAML).
func LoadPlan(path string) (Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Plan{}, fmt.Errorf("plan: %w", err)
	}
	p, err := ParsePlan(b)
	if err != nil {
		return Plan{}, fmt.Errorf("plan %s: %w", path, err)
	}
	return p, nil
}

// ParsePlan decodes a plan from YAML or JSON, rejecting unknown fields,
// applies the defaults and validates it.
func ParsePlan(b []byte) (Plan, error) {
	var p Plan
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return Plan{}, err
	}
	p = p.withDefaults()
	return p, p.validate()
}

// ParseStages reads a profile written "30s:100,1m:500,30s:500": each
// duration:rate is a stage ending at that rate.
func ParseStages(s string) ([]Stage, error) {
	var out []Stage
	for _, part := range strings.Split(s, ",") {
		d, r, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("stage %q: want duration:rate", part)
		}
		dur, err := time.ParseDuration(d)
		if err != nil {
			return nil, fmt.Errorf("stage %q: %w", part, err)
		}
		rate, err := strconv.ParseFloat(r, 64)
		if err != nil {
			return nil, fmt.Errorf("stage %q: %w", part, err)
		}
		out = append(out, Stage{Duration: dur, Rate: rate})
	}
	return out, nil
}

func (p Plan) withDefaults() Plan {
	p.Stages = append([]Stage(nil), p.Stages...)
	p.Thresholds = append([]string(nil), p.Thresholds...)
	if p.Name == "" {
		p.Name = "rehearsal"
	}
	for i := range p.Stages {
		if p.Stages[i].Name == "" {
			p.Stages[i].Name = fmt.Sprintf("stage %d", i+1)
		}
	}
	if p.Mix == (Mix{}) {
		p.Mix.Checkout = 1
	}
	if p.Catalog.Stores == 0 {
		p.Catalog.Stores = 4
	}
	if p.Catalog.SKUs == 0 {
		p.Catalog.SKUs = 200
	}
	if p.Catalog.OnHand == 0 {
		p.Catalog.OnHand = 1000
	}
	if p.Catalog.Lines == 0 {
		p.Catalog.Lines = 1
	}
	if p.Catalog.BulkLines == 0 {
		p.Catalog.BulkLines = 20
	}
	if p.Reservation.TTL == 0 {
		p.Reservation.TTL = 2 * time.Second
	}
	if p.Client.Retries == 0 {
		p.Client.Retries = 2
	}
	if p.Client.Timeout == 0 {
		p.Client.Timeout = 10 * time.Second
	}
	if p.Client.MaxInFlight == 0 {
		p.Client.MaxInFlight = 2000
	}
	return p
}

func (p Plan) validate() error {
	if len(p.Stages) == 0 {
		return fmt.Errorf("plan: Stages: name at least one stage")
	}
	var total time.Duration
	for i, s := range p.Stages {
		if s.Duration <= 0 || s.Rate < 0 || s.Rate > 1e6 {
			return fmt.Errorf("plan: Stages[%d]: duration must be positive and rate 0..1000000, got %s and %g", i, s.Duration, s.Rate)
		}
		total += s.Duration
	}
	switch {
	case total > 24*time.Hour:
		return fmt.Errorf("plan: Stages: at most 24h in all, got %s", total)
	case p.StartRate < 0 || p.StartRate > 1e6:
		return fmt.Errorf("plan: StartRate must be 0..1000000, got %g", p.StartRate)
	case p.Catalog.Stores < 1 || p.Catalog.Stores > 1000:
		return fmt.Errorf("plan: Catalog.Stores must be 1..1000, got %d", p.Catalog.Stores)
	case p.Catalog.SKUs < 1 || p.Catalog.SKUs > 1_000_000 || p.Catalog.Stores*p.Catalog.SKUs > 2_000_000:
		return fmt.Errorf("plan: Catalog.SKUs must be 1..1000000 and Stores×SKUs at most 2000000, got %d", p.Catalog.SKUs)
	case p.Catalog.OnHand < 0 || p.Catalog.HotOnHand < 0:
		return fmt.Errorf("plan: Catalog.OnHand and HotOnHand must not be negative")
	case p.Catalog.Lines < 1 || p.Catalog.Lines > min(100, p.Catalog.SKUs):
		return fmt.Errorf("plan: Catalog.Lines must be 1..min(100, SKUs), got %d", p.Catalog.Lines)
	case p.Catalog.BulkLines < 1 || p.Catalog.BulkLines > 1000:
		return fmt.Errorf("plan: Catalog.BulkLines must be 1..1000, got %d", p.Catalog.BulkLines)
	case p.Hot.Share < 0 || p.Hot.Share > 1:
		return fmt.Errorf("plan: Hot.Share must be 0..1, got %g", p.Hot.Share)
	case p.Hot.Zipf != 0 && p.Hot.Zipf <= 1:
		return fmt.Errorf("plan: Hot.Zipf must be above 1, got %g", p.Hot.Zipf)
	case p.Hot.Zipf != 0 && p.Hot.Share != 0:
		return fmt.Errorf("plan: Hot: set Share or Zipf, not both")
	case p.Customers.Count < 0 || (p.Customers.Count > 0 && p.Customers.Limit < 1):
		return fmt.Errorf("plan: Customers: Count must not be negative, and Limit must be positive with customers")
	case p.Reservation.TTL < time.Second || p.Reservation.TTL%time.Second != 0:
		return fmt.Errorf("plan: Reservation.TTL must be a whole number of seconds, at least 1s, got %s", p.Reservation.TTL)
	case p.Reservation.Commit < 0 || p.Reservation.Release < 0 || p.Reservation.Commit+p.Reservation.Release > 1:
		return fmt.Errorf("plan: Reservation.Commit and Release must be fractions summing to at most 1")
	case p.Client.Retries < 0 || p.Client.Retries > 10:
		return fmt.Errorf("plan: Client.Retries must be 0..10, got %d", p.Client.Retries)
	case p.Client.Timeout < time.Millisecond:
		return fmt.Errorf("plan: Client.Timeout must be at least 1ms, got %s", p.Client.Timeout)
	case p.Client.MaxInFlight < 1 || p.Client.MaxInFlight > 100_000:
		return fmt.Errorf("plan: Client.MaxInFlight must be 1..100000, got %d", p.Client.MaxInFlight)
	case p.Client.ClosedLoop < 0 || p.Client.ClosedLoop > 10_000:
		return fmt.Errorf("plan: Client.ClosedLoop must be 0..10000, got %d", p.Client.ClosedLoop)
	}
	var sum float64
	for _, w := range p.Mix.weights() {
		if w < 0 || math.IsNaN(w) {
			return fmt.Errorf("plan: Mix: weights must not be negative")
		}
		sum += w
	}
	if sum == 0 {
		return fmt.Errorf("plan: Mix: weigh at least one operation")
	}
	if p.Mix.Transfer+p.Mix.Receive+p.Mix.Cancel > 0 && p.Catalog.Stores < 2 {
		return fmt.Errorf("plan: Mix: transfers need at least 2 stores (Catalog.Stores)")
	}
	if p.Mix.Receive+p.Mix.Cancel > 0 && p.Mix.Transfer == 0 {
		return fmt.Errorf("plan: Mix: receive and cancel act on the run's transfers: weigh transfer too")
	}
	for _, ts := range p.Thresholds {
		t, err := ParseThreshold(ts)
		if err != nil {
			return fmt.Errorf("plan: Thresholds: %w", err)
		}
		if t.Stage != "" && !slices.ContainsFunc(p.Stages, func(s Stage) bool { return s.Name == t.Stage }) {
			return fmt.Errorf("plan: Thresholds: %q names no stage of the plan", ts)
		}
	}
	return nil
}

// Duration is the stages' total length.
func (p Plan) Duration() time.Duration {
	var d time.Duration
	for _, s := range p.Stages {
		d += s.Duration
	}
	return d
}

// schedule is the arrival schedule of a plan's stages: iteration n (from 0)
// is due when the integral of the rate since the start reaches n. Within a
// stage that ramps from r0 to r1 over D the count after t is
// r0·t + (r1−r0)·t²/(2D), solved for t exactly.
type schedule struct {
	stages []schedStage
	total  float64 // iterations in all (fractional)
}

type schedStage struct {
	from   time.Duration // offset of the stage's start
	d      float64       // seconds
	r0, r1 float64
	before float64 // iterations due before the stage
}

func newSchedule(p Plan) schedule {
	var s schedule
	r0 := p.StartRate
	var at time.Duration
	for _, st := range p.Stages {
		ss := schedStage{from: at, d: st.Duration.Seconds(), r0: r0, r1: st.Rate, before: s.total}
		s.stages = append(s.stages, ss)
		s.total += (r0 + st.Rate) / 2 * ss.d
		at += st.Duration
		r0 = st.Rate
	}
	return s
}

// at returns when iteration n is due, as an offset from the start; false
// past the end of the profile.
func (s schedule) at(n int64) (time.Duration, bool) {
	x := float64(n)
	if x >= s.total {
		return 0, false
	}
	i := sort.Search(len(s.stages), func(i int) bool {
		st := s.stages[i]
		return st.before+(st.r0+st.r1)/2*st.d > x
	})
	if i == len(s.stages) {
		return 0, false
	}
	st := s.stages[i]
	x -= st.before
	var t float64
	if a := (st.r1 - st.r0) / (2 * st.d); math.Abs(a) < 1e-12 {
		t = x / st.r0
	} else {
		// a·t² + r0·t − x = 0, the root in [0, d].
		disc := st.r0*st.r0 + 4*a*x
		t = (-st.r0 + math.Sqrt(math.Max(0, disc))) / (2 * a)
	}
	t = math.Max(0, math.Min(st.d, t))
	return st.from + time.Duration(t*float64(time.Second)), true
}

// stageAt returns the index of the stage running at offset d.
func (s schedule) stageAt(d time.Duration) int {
	for i := len(s.stages) - 1; i >= 0; i-- {
		if d >= s.stages[i].from {
			return i
		}
	}
	return 0
}

// rateAt is the target arrival rate at offset d.
func (s schedule) rateAt(d time.Duration) float64 {
	st := s.stages[s.stageAt(d)]
	f := math.Min(1, (d-st.from).Seconds()/st.d)
	return st.r0 + (st.r1-st.r0)*f
}

// ParsePlanValue applies the defaults to a plan built in code and
// validates it, as ParsePlan does for a file.
func ParsePlanValue(p Plan) (Plan, error) {
	p = p.withDefaults()
	return p, p.validate()
}
