package bench

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// RehearsalConfig configures a rehearsal of a peak against a running
// deployment (Rehearse). The zero value of every field but Plan, URL and
// Token selects its documented default.
type RehearsalConfig struct {
	// Plan is the load profile, mix and thresholds. Required.
	Plan Plan
	// URL and Token address the deployment's HTTP API (an admin token: the
	// run creates its own stores). Required.
	URL, Token string
	// Workers are the URLs of `inventory bench --worker` processes that
	// send the load, each a share of the rate; empty sends it from this
	// process alone.
	Workers []string
	// MetricsURL is the Prometheus endpoint sampled once a second during
	// the load (persister lag, stream length, shed requests). Defaults to
	// URL + "/metrics"; "off" samples nothing.
	MetricsURL string
	// LedgerURL, when set, is the PostgreSQL of the deployment's ledger
	// (LedgerSchema its schema, default "public"): after the run the checker
	// waits for it to drain and verifies it gap-free and equal to the
	// state.
	LedgerURL, LedgerSchema string
	// StartDelay is how long after the parts are told the load starts, so
	// every process starts at the same moment. Defaults to 2s.
	StartDelay time.Duration
	// OutDir receives the JSON, HTML and text reports. Defaults to
	// "bench/results".
	OutDir string
	// Command is the command line, recorded in the report. Optional.
	Command string
	// Progress receives the live lines. Defaults to io.Discard.
	Progress io.Writer
	// HTTPClient talks to the workers. Defaults to a client without a
	// timeout (a part's reply streams for the whole run).
	HTTPClient *http.Client
	// WorkerToken, when set, is sent to every worker as a bearer token
	// (a worker started with a token refuses assignments without it).
	WorkerToken string
}

func (c RehearsalConfig) withDefaults() RehearsalConfig {
	c.Workers = append([]string(nil), c.Workers...)
	c.URL = strings.TrimRight(c.URL, "/")
	if c.MetricsURL == "" {
		c.MetricsURL = c.URL + "/metrics"
	}
	if c.LedgerSchema == "" {
		c.LedgerSchema = "public"
	}
	if c.StartDelay == 0 {
		c.StartDelay = 2 * time.Second
	}
	if c.OutDir == "" {
		c.OutDir = "bench/results"
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	return c
}

func (c RehearsalConfig) validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("rehearsal config: URL must be an http(s) URL, got %q", c.URL)
	}
	if c.Token == "" {
		return fmt.Errorf("rehearsal config: Token is required")
	}
	for _, w := range c.Workers {
		if u, err := url.Parse(w); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("rehearsal config: Workers: %q is not an http(s) URL", w)
		}
	}
	if c.StartDelay < 0 || c.StartDelay > maxStartWait {
		return fmt.Errorf("rehearsal config: StartDelay must be 0..%s, got %s", maxStartWait, c.StartDelay)
	}
	return c.Plan.validate()
}

// Rehearsal is a rehearsal's report, written as JSON.
type Rehearsal struct {
	Name     string    `json:"name"`
	Run      string    `json:"run"`
	Command  string    `json:"command,omitempty"`
	URL      string    `json:"url"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machine  Machine   `json:"machine"`
	Plan     Plan      `json:"plan"`
	// Processes is the load processes that sent the load.
	Processes int `json:"processes"`
	// Seconds is the load's length, from the first iteration due to the
	// last answer.
	Seconds float64 `json:"seconds"`
	// Iterations is the iterations due; Late those sent after their time
	// because every in-flight slot was taken; SendDelay how long after it
	// was due each was sent; MaxInFlight the most requests in flight at
	// once (summed over the processes).
	Iterations int64 `json:"iterations"`
	Late       int64 `json:"late"`
	// StartSpread is how far apart, in ms, the load processes began the
	// schedule, by their clocks: the timers' lateness (and, across
	// machines, the clocks' disagreement the start time cannot see).
	StartSpread float64 `json:"start_spread_ms"`
	SendDelay   Latency `json:"send_delay"`
	MaxInFlight int     `json:"max_in_flight"`
	// Total sums every operation; Ops is per operation.
	Total *OpSummary            `json:"total"`
	Ops   map[string]*OpSummary `json:"ops"`
	// Stages is per stage, Timeline per second of the run.
	Stages   []StageSummary  `json:"stages"`
	Timeline []SecondSummary `json:"timeline"`
	// Metrics are the server's /metrics sampled once a second.
	Metrics      []MetricsSample `json:"metrics"`
	MetricsError string          `json:"metrics_error,omitempty"`
	// Checks are the checker's verdicts; Oversold counts items found
	// breaking 0 <= reserved <= on_hand.
	Checks     []Check  `json:"checks"`
	Violations []string `json:"violations"`
	Oversold   int      `json:"oversold"`
	// Thresholds are the plan's service levels and whether each held.
	Thresholds []ThresholdResult `json:"thresholds"`
	// Histograms are each operation's whole-run latency histogram (µs,
	// HdrHistogram V2 compressed, base64): the exact merge of every
	// process's.
	Histograms map[string]hist `json:"histograms"`
	// Passed is true when every check and every threshold held.
	Passed bool              `json:"passed"`
	Error  string            `json:"error,omitempty"`
	Files  map[string]string `json:"files,omitempty"`
}

// OpSummary is an operation's (or every operation's) count and latency.
type OpSummary struct {
	Count   int64 `json:"count"`
	OK      int64 `json:"ok"`
	Refused int64 `json:"refused"`
	Errors  int64 `json:"errors"`
	Unknown int64 `json:"unknown_outcome"`
	Retries int64 `json:"retries"`
	// Rate is Count per second of the load; ErrorRate is Errors / Count.
	Rate      float64          `json:"rate"`
	ErrorRate float64          `json:"error_rate"`
	Kinds     map[string]int64 `json:"kinds"`
	Latency   Latency          `json:"latency"`
}

// StageSummary is one stage of the profile and what it measured.
type StageSummary struct {
	Name      string  `json:"name"`
	From      float64 `json:"from"` // seconds since the start
	To        float64 `json:"to"`
	StartRate float64 `json:"start_rate"`
	EndRate   float64 `json:"end_rate"`
	// Ops holds per operation the requests of the stage (Count, Rate,
	// Latency), Total all of them.
	Ops   map[string]*OpSummary `json:"ops"`
	Total *OpSummary            `json:"total"`
}

// SecondSummary is one second of the run.
type SecondSummary struct {
	T     int    `json:"t"`
	Stage string `json:"stage"`
	// Target is the schedule's rate at mid-second; Offered the iterations
	// due in the second; Achieved the iterations completed in it (all their
	// requests answered); Errors the failed requests due in it.
	Target   float64 `json:"target"`
	Offered  int64   `json:"offered"`
	Achieved int64   `json:"achieved"`
	Errors   int64   `json:"errors"`
	// Latency is of all requests due in the second, Ops per operation.
	Latency Latency            `json:"latency"`
	Ops     map[string]Latency `json:"ops"`
}

// Rehearse seeds the plan's catalog on the deployment, sends the load
// (from this process or from the Workers, started at the same moment, each
// a share of the schedule), merges their histograms exactly, samples the
// server's metrics, checks the invariants and the thresholds, and writes
// the report's files to OutDir. It returns the report when the run
// happened, passed or not (Rehearsal.Passed); the error is for a run that
// could not happen.
func Rehearse(ctx context.Context, cfg RehearsalConfig) (*Rehearsal, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := cfg.Plan
	r := &Rehearsal{Name: p.Name, Run: randomHex(4), Command: cfg.Command, URL: cfg.URL, Started: time.Now().UTC(), Machine: machine(), Plan: p,
		Processes: max(1, len(cfg.Workers))}
	c := newHTTPClient(cfg.URL, cfg.Token, 64, 0)
	defer c.closeIdle()
	seed := rehearsalSeed(p, r.Run)
	fmt.Fprintf(cfg.Progress, "[%s] seeding %d items in %d stores\n", p.Name, len(seed), p.Catalog.Stores)
	if err := seedItems(ctx, c, seed, p.Customers.Limit); err != nil {
		return nil, err
	}
	startAt := time.Now().Add(cfg.StartDelay)
	sampler := startSampler(ctx, cfg.MetricsURL, startAt)
	fmt.Fprintf(cfg.Progress, "[%s] %d load process(es), %d stage(s), %s; starting at %s\n", p.Name, r.Processes, len(p.Stages),
		p.Duration(), startAt.UTC().Format("15:04:05.000"))
	merged, err := runParts(ctx, cfg, r.Run, startAt)
	r.Metrics, r.MetricsError = sampler.stop()
	if err != nil {
		return nil, err
	}
	r.Finished = time.Now().UTC()
	summarise(r, merged, newSchedule(p), startAt)
	if err := check(ctx, cfg, r, c, seed, merged); err != nil {
		r.Error = err.Error()
		r.Violations = append(r.Violations, "checker: "+err.Error())
	}
	r.Passed = len(r.Violations) == 0
	for _, ts := range p.Thresholds {
		t, _ := ParseThreshold(ts)
		res := t.evaluate(r)
		r.Thresholds = append(r.Thresholds, res)
		r.Passed = r.Passed && res.Held
	}
	files, err := writeRehearsal(cfg.OutDir, r)
	r.Files = files
	return r, err
}

// seedItems creates the catalog (untimed), with a purchase limit on every
// item when limit is positive.
func seedItems(ctx context.Context, c *httpClient, items []SeedItem, limit int64) error {
	return parallel(ctx, len(items), 32, func(ctx context.Context, i int) error {
		it := items[i]
		body := map[string]int64{"on_hand": it.OnHand}
		if limit > 0 {
			body["max_per_customer"] = limit
		}
		r, err := c.patient(ctx, http.MethodPut, itemPath(it.Store, it.SKU), body)
		if err == nil {
			err = statusErr(r, true)
		}
		if err != nil {
			return fmt.Errorf("seed %s/%s: %w", it.Store, it.SKU, err)
		}
		return nil
	})
}

// runParts runs the load, locally or on the workers, printing a line per
// second once every part has reported it, and returns the merged tally.
func runParts(ctx context.Context, cfg RehearsalConfig, run string, startAt time.Time) (*tally, error) {
	n := max(1, len(cfg.Workers))
	sched := newSchedule(cfg.Plan)
	lp := &liveProgress{w: cfg.Progress, parts: n, sched: sched, stages: cfg.Plan.Stages, seconds: map[int]*liveSecond{}, late: make([]int64, n)}
	merged := newTally(len(cfg.Plan.Stages))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < n; i++ {
		a := assignment{Plan: cfg.Plan, URL: cfg.URL, Token: cfg.Token, Run: run, Index: i, Of: n, StartAt: startAt}
		g.Go(func() error {
			var t *tally
			var err error
			if len(cfg.Workers) == 0 {
				t, err = runPart(gctx, a, func(p progress) { lp.add(i, p) })
			} else {
				t, err = remotePart(gctx, cfg.HTTPClient, cfg.Workers[i], cfg.WorkerToken, a, func(p progress) { lp.add(i, p) })
			}
			if err != nil {
				return fmt.Errorf("load process %d: %w", i, err)
			}
			mu.Lock()
			merged.merge(t)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return merged, nil
}

// liveProgress prints one line per second of the run once every part has
// reported that second: the stage, the target, offered and achieved rates,
// errors, the p99 of the requests that completed in it (the parts'
// histograms merged) and the iterations sent late so far.
type liveProgress struct {
	mu      sync.Mutex
	w       io.Writer
	parts   int
	sched   schedule
	stages  []Stage
	seconds map[int]*liveSecond
	late    []int64
}

type liveSecond struct {
	n                 int
	due, done, errors int64
	latency           hist
}

func (l *liveProgress) add(part int, p progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seconds[p.Second]
	if s == nil {
		s = &liveSecond{}
		l.seconds[p.Second] = s
	}
	s.n++
	s.due += p.Due
	s.done += p.Done
	s.errors += p.Errors
	s.latency.add(p.Latency, secondSigFigs)
	l.late[part] = p.Late
	if s.n < l.parts {
		return
	}
	delete(l.seconds, p.Second)
	var late int64
	for _, v := range l.late {
		late += v
	}
	mid := time.Duration(p.Second)*time.Second + 500*time.Millisecond
	var p99 float64
	if s.latency.Histogram != nil {
		p99 = float64(s.latency.ValueAtQuantile(99)) / 1000
	}
	stage := "after"
	var target float64
	if total := l.sched.total; total > 0 && mid < durationOf(l.stages) {
		stage = l.stages[l.sched.stageAt(mid)].Name
		target = l.sched.rateAt(mid)
	}
	fmt.Fprintf(l.w, "[%4ds] %-12s target %7.0f/s  offered %7d/s  achieved %7d/s  errors %5d  p99 %8.2f ms  late %d\n",
		p.Second, stage, target, s.due, s.done, s.errors, p99, late)
}

func durationOf(stages []Stage) time.Duration {
	var d time.Duration
	for _, s := range stages {
		d += s.Duration
	}
	return d
}

// summarise fills the report from the merged tally.
func summarise(r *Rehearsal, t *tally, sched schedule, start time.Time) {
	p := r.Plan
	r.Iterations, r.Late, r.MaxInFlight = t.Iterations, t.Late, t.MaxInFlight
	r.StartSpread = float64(t.LastStart.Sub(t.FirstStart).Microseconds()) / 1000
	r.SendDelay = latencyOf(t.SendDelay.Histogram)
	r.Seconds = float64(len(t.Seconds))
	if last := r.Finished.Sub(start).Seconds(); last > 0 && last < r.Seconds {
		r.Seconds = last
	}
	r.Seconds = max(r.Seconds, p.Duration().Seconds())
	r.Ops = map[string]*OpSummary{}
	r.Histograms = map[string]hist{}
	all := newHist(histSigFigs)
	r.Total = &OpSummary{Kinds: map[string]int64{}}
	for _, name := range allOps {
		o := t.Ops[name]
		if o == nil {
			continue
		}
		s := &OpSummary{OK: o.OK, Refused: o.Refused, Errors: o.Errors, Unknown: o.Unknown, Retries: o.Retries, Kinds: o.Kinds, Latency: latencyOf(o.Latency.Histogram)}
		s.Count = s.OK + s.Refused + s.Errors
		r.Ops[name] = s
		r.Histograms[name] = o.Latency
		all.Merge(o.Latency.Histogram)
		r.Total.OK += s.OK
		r.Total.Refused += s.Refused
		r.Total.Errors += s.Errors
		r.Total.Unknown += s.Unknown
		r.Total.Retries += s.Retries
		r.Total.Count += s.Count
		for k, v := range s.Kinds {
			r.Total.Kinds[k] += v
		}
	}
	r.Total.Latency = latencyOf(all.Histogram)
	for _, s := range append([]*OpSummary{r.Total}, mapValues(r.Ops)...) {
		s.Rate = float64(s.Count) / r.Seconds
		if s.Count > 0 {
			s.ErrorRate = float64(s.Errors) / float64(s.Count)
		}
	}
	for i, st := range p.Stages {
		ss := sched.stages[i]
		sum := StageSummary{Name: st.Name, From: ss.from.Seconds(), To: ss.from.Seconds() + ss.d, StartRate: ss.r0, EndRate: ss.r1,
			Ops: map[string]*OpSummary{}, Total: &OpSummary{}}
		tot := newHist(histSigFigs)
		for _, name := range allOps {
			o := t.Ops[name]
			if o == nil || i >= len(o.Stages) || o.Stages[i].Histogram == nil {
				continue
			}
			l := latencyOf(o.Stages[i].Histogram)
			os := &OpSummary{Count: l.Count, Rate: float64(l.Count) / ss.d, Latency: l}
			if i < len(o.StageErrors) {
				os.Errors = o.StageErrors[i]
			}
			if os.Count > 0 {
				os.ErrorRate = float64(os.Errors) / float64(os.Count)
			}
			sum.Ops[name] = os
			tot.Merge(o.Stages[i].Histogram)
		}
		sum.Total.Latency = latencyOf(tot.Histogram)
		sum.Total.Count, sum.Total.Rate = sum.Total.Latency.Count, float64(sum.Total.Latency.Count)/ss.d
		for sec := int(ss.from.Seconds()); sec < int(ss.from.Seconds()+ss.d+0.999) && sec < len(t.Seconds); sec++ {
			sum.Total.Errors += t.Seconds[sec].Failed
		}
		if sum.Total.Count > 0 {
			sum.Total.ErrorRate = float64(sum.Total.Errors) / float64(sum.Total.Count)
		}
		r.Stages = append(r.Stages, sum)
	}
	dur := p.Duration()
	for i, s := range t.Seconds {
		mid := time.Duration(i)*time.Second + 500*time.Millisecond
		ss := SecondSummary{T: i, Stage: "after", Offered: s.Due, Achieved: s.Done, Errors: s.Failed, Ops: map[string]Latency{}}
		if mid < dur {
			ss.Stage, ss.Target = p.Stages[sched.stageAt(mid)].Name, sched.rateAt(mid)
		}
		sec := newHist(secondSigFigs)
		for op, h := range s.Ops {
			ss.Ops[op] = latencyOf(h.Histogram)
			sec.Merge(h.Histogram)
		}
		ss.Latency = latencyOf(sec.Histogram)
		r.Timeline = append(r.Timeline, ss)
	}
}

func mapValues(m map[string]*OpSummary) []*OpSummary {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*OpSummary, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

// check reads every item of the run after the holds left to expire have
// expired and verifies: nothing oversold (0 <= reserved <= on_hand), no
// hold left, every item's on_hand equal to its seed plus the successful
// writes (within the writes of unknown outcome), no customer past its
// purchase limit and, with a ledger URL, the ledger drained, gap-free and
// equal to the state.
func check(ctx context.Context, cfg RehearsalConfig, r *Rehearsal, c *httpClient, seed []SeedItem, t *tally) error {
	p := cfg.Plan
	deadline := time.Now()
	if t.LastHold > 0 {
		deadline = time.Unix(0, t.LastHold).Add(p.Reservation.TTL + 2500*time.Millisecond)
	}
	fmt.Fprintf(cfg.Progress, "[%s] checking %d items\n", p.Name, len(seed))
	var states []ItemState
	for {
		began := time.Now()
		var err error
		if states, err = c.Items(ctx, seed); err != nil {
			return fmt.Errorf("read final state: %w", err)
		}
		held := false
		for _, st := range states {
			held = held || st.Reserved != 0
		}
		if !held || began.After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	var bad []string
	var missing, held int
	for i, st := range states {
		b := t.Books[i]
		if b == nil {
			b = &book{}
		}
		want := seed[i].OnHand + b.Delta
		switch {
		case !st.Found:
			missing++
		case st.OnHand < 0 || st.Reserved < 0 || st.Reserved > st.OnHand:
			r.Oversold++
		case st.Reserved != 0:
			held++
		}
		if st.Found && (st.OnHand < want-b.Slack || st.OnHand > want+b.Slack) && len(bad) < 10 {
			bad = append(bad, fmt.Sprintf("%s/%s on_hand %d, the run's books say %d (±%d)", st.Store, st.SKU, st.OnHand, want, b.Slack))
		}
	}
	add := func(name string, passed bool, format string, a ...any) {
		ch := Check{Name: name, Passed: passed, Detail: fmt.Sprintf(format, a...)}
		r.Checks = append(r.Checks, ch)
		if !passed {
			r.Violations = append(r.Violations, name+": "+ch.Detail)
		}
	}
	add("every item present", missing == 0, "%d of %d items missing", missing, len(states))
	add("never oversold", r.Oversold == 0, "%d items break 0 <= reserved <= on_hand", r.Oversold)
	add("expired holds released", held == 0, "%d items still hold units after the last hold expired (%d holds were left to expire)", held, t.Holds)
	add("stock equals the books", len(bad) == 0, "%s", summarize(bad, fmt.Sprintf("%d items: seed + successful writes == on_hand", len(states))))
	if p.Customers.Count > 0 {
		var over []string
		for k, v := range t.Bought {
			if v > p.Customers.Limit && len(over) < 10 {
				over = append(over, fmt.Sprintf("%s bought %d (limit %d)", k, v, p.Customers.Limit))
			}
		}
		sort.Strings(over)
		add("purchase limits held", len(over) == 0, "%s", summarize(over, fmt.Sprintf("%d customer×item pairs bought within the limit of %d", len(t.Bought), p.Customers.Limit)))
	}
	if cfg.LedgerURL == "" {
		r.Checks = append(r.Checks, Check{Name: "ledger", Passed: true, Detail: "not checked: no ledger URL given"})
		return nil
	}
	l, err := newPGLedger(ctx, cfg.LedgerURL, cfg.LedgerSchema, false)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	defer l.drop(context.WithoutCancel(ctx))
	fmt.Fprintf(cfg.Progress, "[%s] checking the ledger (waiting for it to drain)\n", p.Name)
	v, err := l.check(ctx, states, 60*time.Second)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	add("ledger", len(v) == 0, "%s", summarize(v, fmt.Sprintf("drained; %d items gap-free from version 1, deltas sum to the state", len(states))))
	if len(v) > 1 {
		r.Violations = append(r.Violations, v[1:]...)
	}
	return nil
}

// remotePart runs a on the worker at base: one POST whose reply streams
// the part's progress, one JSON object per second, then its tally.
func remotePart(ctx context.Context, hc *http.Client, base, token string, a assignment, emit func(progress)) (*tally, error) {
	body, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+workerPath, strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
		return nil, fmt.Errorf("worker %s: %d %s", base, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var m workerMessage
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("worker %s: %w", base, err)
		}
		switch {
		case m.Error != "":
			return nil, fmt.Errorf("worker %s: %s", base, m.Error)
		case m.Progress != nil:
			emit(*m.Progress)
		case m.Tally != nil:
			return m.Tally, nil
		}
	}
}

// workerPath is the route a worker takes its assignment on.
const workerPath = "/v1/bench/run"

// workerMessage is one line of a worker's reply.
type workerMessage struct {
	Progress *progress `json:"progress,omitempty"`
	Tally    *tally    `json:"tally,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// Worker is a load process that takes its share of a rehearsal from a
// coordinator (`inventory bench --worker`): it serves POST /v1/bench/run,
// runs one assignment at a time, and streams back its progress and its
// tally (exact HDR histograms) as JSON lines.
type Worker struct {
	// Progress receives a line per assignment. Defaults to io.Discard.
	Progress io.Writer
	// Token, when set, is the bearer token an assignment must carry (an
	// assignment names the API and its token, and sends load): others get
	// 401.
	Token string
	mu    sync.Mutex
	busy  bool
}

// ServeHTTP implements http.Handler.
func (w *Worker) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/healthz" {
		rw.WriteHeader(http.StatusOK)
		return
	}
	if req.URL.Path != workerPath || req.Method != http.MethodPost {
		http.NotFound(rw, req)
		return
	}
	if w.Token != "" && subtle.ConstantTimeCompare([]byte(req.Header.Get("Authorization")), []byte("Bearer "+w.Token)) != 1 {
		rw.Header().Set("WWW-Authenticate", "Bearer")
		http.Error(rw, "this worker takes assignments with its token only (Authorization: Bearer …)", http.StatusUnauthorized)
		return
	}
	var a assignment
	if err := json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&a); err != nil {
		http.Error(rw, "assignment: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := a.Plan.validate(); err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	if w.busy {
		w.mu.Unlock()
		http.Error(rw, "this worker is running another assignment", http.StatusConflict)
		return
	}
	w.busy = true
	w.mu.Unlock()
	defer func() { w.mu.Lock(); w.busy = false; w.mu.Unlock() }()
	out := w.Progress
	if out == nil {
		out = io.Discard
	}
	fmt.Fprintf(out, "worker: part %d of %d of run %s against %s, starting at %s\n", a.Index+1, a.Of, a.Run, a.URL, a.StartAt.UTC().Format("15:04:05.000"))
	rw.Header().Set("Content-Type", "application/x-ndjson")
	rw.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(rw)
	flush := func() {
		if f, ok := rw.(http.Flusher); ok {
			f.Flush()
		}
	}
	var encMu sync.Mutex
	t, err := runPart(req.Context(), a, func(p progress) {
		encMu.Lock()
		defer encMu.Unlock()
		_ = enc.Encode(workerMessage{Progress: &p})
		flush()
	})
	encMu.Lock()
	defer encMu.Unlock()
	if err != nil {
		fmt.Fprintf(out, "worker: run %s failed: %v\n", a.Run, err)
		_ = enc.Encode(workerMessage{Error: err.Error()})
		return
	}
	fmt.Fprintf(out, "worker: run %s done: %d iterations, %d late\n", a.Run, t.Iterations, t.Late)
	_ = enc.Encode(workerMessage{Tally: t})
	flush()
}

// ServeWorker serves a Worker on ln until ctx ends; a non-empty token is
// the bearer token assignments must carry (Worker.Token).
func ServeWorker(ctx context.Context, ln net.Listener, progress io.Writer, token string) error {
	srv := &http.Server{Handler: &Worker{Progress: progress, Token: token}, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		if errors.Is(err, context.DeadlineExceeded) {
			err = srv.Close()
		}
		return err
	}
}
