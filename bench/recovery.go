package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/httpapi"
	"github.com/shelfline/inventory/persist"
)

// ScenarioRecovery is the recovery scenario (RunRecovery): it is not a
// load against targets but one deployment put through an import, a loss of
// every Redis key, a rebuild and reconciliations, each timed.
const ScenarioRecovery = "recovery"

// RecoveryConfig configures RunRecovery. The zero value of every field but
// RedisURL and DatabaseURL selects its documented default.
type RecoveryConfig struct {
	// RedisURL and DatabaseURL are the Redis and PostgreSQL to use: the run
	// works under a key prefix and in a schema of its own, removed at the
	// end.
	RedisURL, DatabaseURL string
	// Partitions of the deployment. Defaults to 16.
	Partitions int
	// Items imported. Defaults to 1,000,000.
	Items int
	// Stores the items are spread over. Defaults to 30.
	Stores int
	// Chunk is the lines per PUT /v1/items request, at most
	// engine.MaxBulkSetLines. Defaults to 5000.
	Chunk int
	// Workers is how many import requests are in flight at once. Defaults
	// to 4.
	Workers int
	// Drift is how many items get drift injected. Defaults to 1000 (at most
	// half the items).
	Drift int
	// OutDir receives the JSON report and, with CPUProfile, one CPU profile
	// per phase. Defaults to "bench/results".
	OutDir string
	// CPUProfile writes a CPU profile of this process per phase.
	CPUProfile bool
	// Progress receives progress lines. Defaults to io.Discard.
	Progress io.Writer
	// Logger receives the engine's, persister's, rebuilder's and
	// reconciler's logs. Defaults to zap.NewNop().
	Logger *zap.Logger
	// Command is the command line, for the report.
	Command string
}

func (c RecoveryConfig) withDefaults() RecoveryConfig {
	if c.Partitions == 0 {
		c.Partitions = 16
	}
	if c.Items == 0 {
		c.Items = 1_000_000
	}
	if c.Stores == 0 {
		c.Stores = 30
	}
	if c.Chunk == 0 {
		c.Chunk = 5000
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.Drift == 0 {
		c.Drift = 1000
	}
	c.Drift = min(c.Drift, c.Items/2)
	if c.OutDir == "" {
		c.OutDir = "bench/results"
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

func (c RecoveryConfig) validate() error {
	switch {
	case c.RedisURL == "" || c.DatabaseURL == "":
		return errors.New("recovery: RedisURL and DatabaseURL are required")
	case c.Items < 2:
		return fmt.Errorf("recovery: Items must be at least 2, got %d", c.Items)
	case c.Stores < 1 || c.Stores > c.Items:
		return fmt.Errorf("recovery: Stores must be 1..Items, got %d", c.Stores)
	case c.Chunk < 1 || c.Chunk > engine.MaxBulkSetLines:
		return fmt.Errorf("recovery: Chunk must be 1..%d, got %d", engine.MaxBulkSetLines, c.Chunk)
	case c.Workers < 1 || c.Workers > 256:
		return fmt.Errorf("recovery: Workers must be 1..256, got %d", c.Workers)
	}
	return nil
}

// RecoveryStep is one timed step of the recovery scenario.
type RecoveryStep struct {
	Name    string  `json:"name"`
	Items   int64   `json:"items"`
	Seconds float64 `json:"seconds"`
	// Rate is items (or events) per second, where it means something.
	Rate float64 `json:"rate,omitempty"`
	// Goal is the goal for the step, and Met whether it was met;
	// empty for a step without one.
	Goal   string `json:"goal,omitempty"`
	Met    *bool  `json:"met,omitempty"`
	Detail string `json:"detail,omitempty"`
	// CPUPerItem is the CPU time each part of the deployment used per item
	// during the step, in microseconds: "process" (this process: API,
	// engine, persister and load client), "redis" (the run's Redis server,
	// INFO cpu, shared with whatever else uses it), "postgres" (the backends
	// of the run's own connections, when PostgreSQL runs on this machine)
	// and "machine" (every CPU of the machine, other work included).
	CPUPerItem map[string]float64 `json:"cpu_us_per_item,omitempty"`
}

// RecoveryReport is the outcome of RunRecovery.
type RecoveryReport struct {
	Scenario   string         `json:"scenario"`
	Command    string         `json:"command,omitempty"`
	Started    time.Time      `json:"started"`
	Machine    Machine        `json:"machine"`
	Items      int            `json:"items"`
	Stores     int            `json:"stores"`
	Partitions int            `json:"partitions"`
	Steps      []RecoveryStep `json:"steps"`
	// Passed is false when an item differed from the ledger where it must
	// not, or a step failed; Failures says what.
	Passed   bool     `json:"passed"`
	Failures []string `json:"failures,omitempty"`
	// Profiles lists the CPU profiles written.
	Profiles []string `json:"profiles,omitempty"`
}

// recoveryRun is the deployment one RunRecovery works on: an engine on its
// own prefix, a ledger in its own schema, the HTTP API, the persister and
// the rebuilder of one `inventory serve`, in this process.
type recoveryRun struct {
	cfg    RecoveryConfig
	rep    *RecoveryReport
	e      *engine.Engine
	ledger *pgLedger
	pers   *persist.Persister
	rb     *persist.Rebuilder
	rdb    *redis.Client
	prefix string
	url    string
	token  string
	hc     *http.Client
	// events counts the events the deployment made: the persister must
	// have written as many before a check.
	events int64
	// probed holds the items written while the rebuild ran.
	probed map[int]bool
}

// RunRecovery runs the recovery scenario: it imports cfg.Items items over
// HTTP (PUT /v1/items) with the persister running and times the import and
// the ledger's drain; drops every Redis key of the deployment and times the
// rebuild until every partition is ready, probing meanwhile that a rebuilt
// partition serves reads and writes; checks every item against the ledger;
// injects drift into cfg.Drift items and times a check and a repair; and
// checks every item again. It returns the report, with Passed false (and
// Failures) when an item differs from the ledger where it must not; an
// error is for a run that could not go on.
func RunRecovery(ctx context.Context, cfg RecoveryConfig) (rep *RecoveryReport, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	id := randomHex(4)
	rep = &RecoveryReport{Scenario: ScenarioRecovery, Command: cfg.Command, Started: time.Now().UTC(), Machine: machine(),
		Items: cfg.Items, Stores: cfg.Stores, Partitions: cfg.Partitions, Passed: true}
	r := &recoveryRun{cfg: cfg, rep: rep}
	cleanup, err := r.setUp(ctx, id)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := cleanup(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	for _, step := range []struct {
		name string
		f    func(context.Context) error
	}{
		{"load", r.load}, {"rebuild", r.rebuild}, {"check", r.checkClean}, {"drift", r.drift}, {"final", r.checkFinal},
	} {
		fmt.Fprintf(cfg.Progress, "[recovery] %s\n", step.name)
		stop, err := r.profile(step.name)
		if err != nil {
			return rep, err
		}
		err = step.f(ctx)
		stop()
		if err != nil {
			rep.Passed = false
			rep.Failures = append(rep.Failures, step.name+": "+err.Error())
			break
		}
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err == nil {
		b, _ := json.MarshalIndent(rep, "", "  ")
		_ = os.WriteFile(filepath.Join(cfg.OutDir, fmt.Sprintf("recovery-%s.json", rep.Started.Format("20060102T150405Z"))), b, 0o644)
	}
	return rep, nil
}

// setUp makes the deployment and returns what removes it.
func (r *recoveryRun) setUp(ctx context.Context, id string) (func() error, error) {
	cfg := r.cfg
	rdb, err := newRedis(ctx, cfg.RedisURL, 2*cfg.Partitions+64)
	if err != nil {
		return nil, err
	}
	prefix := "bench-recovery-" + id
	r.rdb, r.prefix, r.probed = rdb, prefix, map[int]bool{}
	closers := []func() error{rdb.Close, func() error { return deletePrefix(context.Background(), rdb, prefix) }}
	cleanup := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	fail := func(err error) (func() error, error) { return nil, errors.Join(err, cleanup()) }
	e, err := engine.New(engine.Config{Client: rdb, Prefix: prefix, Partitions: cfg.Partitions, Logger: cfg.Logger})
	if err != nil {
		return fail(err)
	}
	r.e = e
	if err := e.Init(ctx); err != nil {
		return fail(err)
	}
	l, err := newPGLedger(ctx, cfg.DatabaseURL, "bench_recovery_"+id, true)
	if err != nil {
		return fail(err)
	}
	r.ledger = l
	closers = append(closers, func() error { return l.drop(context.Background()) })
	if r.pers, err = persist.NewPersister(e, l.pool, persist.PersisterConfig{Consumer: "bench-" + id, Logger: cfg.Logger}); err != nil {
		return fail(err)
	}
	if r.rb, err = persist.NewRebuilder(e, l.pool, persist.RebuilderConfig{Logger: cfg.Logger}); err != nil {
		return fail(err)
	}
	r.token = randomHex(16)
	srv, err := httpapi.New(httpapi.Config{Engine: e, Keys: []httpapi.Key{{Token: r.token, Role: httpapi.RoleAdmin}},
		Logger: cfg.Logger, Ledger: persist.NewLedger(l.pool), RatePerSecond: 1e9, RateBurst: 1 << 30})
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	bg, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{r.pers.Run, r.rb.Run, func(ctx context.Context) error { return srv.Serve(ctx, ln) }} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = run(bg) }()
	}
	closers = append(closers, func() error { stop(); wg.Wait(); return nil })
	r.url = "http://" + ln.Addr().String()
	r.hc = &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Workers + 4}}
	return cleanup, nil
}

// profile starts a CPU profile of the named phase when asked; stop ends it.
func (r *recoveryRun) profile(name string) (stop func(), err error) {
	if !r.cfg.CPUProfile {
		return func() {}, nil
	}
	if err := os.MkdirAll(r.cfg.OutDir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(r.cfg.OutDir, fmt.Sprintf("recovery-%s-%s.pprof", r.rep.Started.Format("20060102T150405Z"), name))
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	r.rep.Profiles = append(r.rep.Profiles, path)
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// item names the i-th item: stores take turns, so every request spans
// every store.
func (r *recoveryRun) item(i int) (store, sku string) {
	return fmt.Sprintf("st%02d", i%r.cfg.Stores), fmt.Sprintf("sku%07d", i/r.cfg.Stores)
}

// onHand is the i-th item's stock after the import.
func onHand(i int) int64 { return int64(i%997 + 1) }

func (r *recoveryRun) add(s RecoveryStep) {
	r.rep.Steps = append(r.rep.Steps, s)
	fmt.Fprintf(r.cfg.Progress, "[recovery]   %s: %d in %.2fs %s\n", s.Name, s.Items, s.Seconds, s.Detail)
}

func met(ok bool) *bool { return &ok }

// load imports every item with PUT /v1/items, Workers requests in flight,
// and waits for the persister to write every event to the ledger.
func (r *recoveryRun) load(ctx context.Context) error {
	cfg := r.cfg
	var bodies [][]byte
	for from := 0; from < cfg.Items; from += cfg.Chunk {
		var b bytes.Buffer
		b.WriteString(`{"items":[`)
		for i := from; i < min(from+cfg.Chunk, cfg.Items); i++ {
			if i > from {
				b.WriteByte(',')
			}
			st, sku := r.item(i)
			fmt.Fprintf(&b, `{"store":%q,"sku":%q,"on_hand":%d}`, st, sku, onHand(i))
		}
		b.WriteString(`]}`)
		bodies = append(bodies, b.Bytes())
	}
	var (
		next                   atomic.Int64
		created, refused, shed atomic.Int64
		firstErr               error
		errMu                  sync.Mutex
		wg                     sync.WaitGroup
	)
	defer watchRedisCPU(r.rdb)()
	cpu0, pg0 := sampleCPU(), r.ledgerCPU(ctx)
	start := time.Now()
	for w := 0; w < cfg.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(bodies) || ctx.Err() != nil {
					return
				}
				c, rf, bp, err := r.putItems(ctx, bodies[i])
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					return
				}
				created.Add(c)
				refused.Add(rf)
				shed.Add(bp)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if firstErr != nil {
		return firstErr
	}
	cpu1, pg1 := sampleCPU(), r.ledgerCPU(ctx)
	rate := float64(cfg.Items) / took.Seconds()
	perItem := cpuPerItem(cpu0, cpu1, pg0, pg1, created.Load())
	r.add(RecoveryStep{Name: "import over HTTP (PUT /v1/items)", Items: created.Load(), Seconds: took.Seconds(), Rate: rate,
		Goal: "≥ 50,000 items/s", Met: met(rate >= 50_000 && created.Load() == int64(cfg.Items)),
		Detail: fmt.Sprintf("%d lines per request, %d in flight; %d lines refused, %d of them backpressure%s",
			cfg.Chunk, cfg.Workers, refused.Load(), shed.Load(), cpuDetail(perItem)),
		CPUPerItem: perItem})
	r.events += created.Load()
	lagAtEnd := r.events - r.pers.Stats().EventsPersisted
	if err := r.waitPersisted(ctx, r.events); err != nil {
		return err
	}
	drained := time.Since(start)
	cpu2, pg2 := sampleCPU(), r.ledgerCPU(ctx)
	prate := float64(cfg.Items) / drained.Seconds()
	perEvent := cpuPerItem(cpu0, cpu2, pg0, pg2, int64(cfg.Items))
	r.add(RecoveryStep{Name: "ledger drain of the import (persister)", Items: int64(cfg.Items), Seconds: drained.Seconds(), Rate: prate,
		Goal: "≥ 50,000 events/s, no backpressure refusal", Met: met(prate >= 50_000 && shed.Load() == 0),
		Detail: fmt.Sprintf("from the first request until every event is in PostgreSQL; %d events still to write when the import ended%s",
			lagAtEnd, cpuDetail(perEvent)),
		CPUPerItem: perEvent})
	if created.Load() != int64(cfg.Items) {
		return fmt.Errorf("%d of %d items created (%d lines refused)", created.Load(), cfg.Items, refused.Load())
	}
	return nil
}

var (
	createdMark  = []byte(`{"status":201,"item":{`)
	onHandMember = []byte(`"on_hand":`)
)

// putItems sends one PUT /v1/items and counts its lines: created, refused,
// and refused for backpressure.
func (r *recoveryRun) putItems(ctx context.Context, body []byte) (created, refused, shed int64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, r.url+"/v1/items", bytes.NewReader(body))
	if err != nil {
		return 0, 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := r.hc.Do(req)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("PUT /v1/items: %w", err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	if res.ContentLength > 0 {
		buf.Grow(int(res.ContentLength))
	}
	if _, err := buf.ReadFrom(res.Body); err != nil {
		return 0, 0, 0, fmt.Errorf("PUT /v1/items: %w", err)
	}
	b := buf.Bytes()
	if res.StatusCode != http.StatusOK {
		return 0, 0, 0, fmt.Errorf("PUT /v1/items: %d %s", res.StatusCode, b)
	}
	// Every line created: the answer holds one such mark per line (the
	// server writes each result's status before its item), and the load
	// client spends none of the machine's two cores decoding 5,000 items.
	if n := int64(bytes.Count(b, createdMark)); n == int64(bytes.Count(body, onHandMember)) {
		return n, 0, 0, nil
	}
	var out struct {
		Results []struct {
			Status int `json:"status"`
			Error  *struct {
				Type string `json:"type"`
			} `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return 0, 0, 0, fmt.Errorf("PUT /v1/items: %w", err)
	}
	for _, l := range out.Results {
		switch {
		case l.Status == http.StatusCreated:
			created++
		default:
			refused++
			if l.Error != nil && strings.HasSuffix(l.Error.Type, "backpressure") {
				shed++
			}
		}
	}
	return created, refused, shed, nil
}

// ledgerCPU is the CPU seconds used so far by the PostgreSQL backends of
// the run's own connections (application_name is the run's schema), read
// from /proc; -1 when they cannot be read (PostgreSQL on another machine, or
// not Linux). A connection closed between two samples takes its seconds
// with it, so the pool keeps its connections for the run.
func (r *recoveryRun) ledgerCPU(ctx context.Context) float64 {
	rows, err := r.ledger.pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, r.ledger.schema)
	if err != nil {
		return -1
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil || len(pids) == 0 {
		return -1
	}
	var secs float64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return -1
		}
		st := string(b)
		close := strings.LastIndexByte(st, ')')
		if close < 0 {
			return -1
		}
		f := strings.Fields(st[close+1:])
		if len(f) < 13 {
			return -1
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		stt, _ := strconv.ParseFloat(f[12], 64)
		secs += (ut + stt) / clkTck
	}
	return secs
}

// cpuPerItem is the CPU time per item, in microseconds, that each part of
// the deployment used between two samples (RecoveryStep.CPUPerItem); nil
// when the samples hold none.
func cpuPerItem(a, b cpuSample, pgA, pgB float64, items int64) map[string]float64 {
	if !a.ok || !b.ok || items <= 0 {
		return nil
	}
	per := func(secs float64) float64 { return math.Round(10*secs*1e6/float64(items)) / 10 }
	out := map[string]float64{
		"process": per(b.procs["bench_process"] - a.procs["bench_process"]),
		"machine": per(b.busy - a.busy),
	}
	if _, ok := b.procs["redis"]; ok {
		out["redis"] = per(b.procs["redis"] - a.procs["redis"])
	}
	if pgA >= 0 && pgB >= 0 {
		out["postgres"] = per(pgB - pgA)
	}
	return out
}

// cpuDetail words cpuPerItem for a step's detail.
func cpuDetail(m map[string]float64) string {
	if m == nil {
		return ""
	}
	s := fmt.Sprintf("; CPU per item: this process %.1f µs", m["process"])
	if v, ok := m["redis"]; ok {
		s += fmt.Sprintf(", Redis %.1f µs", v)
	}
	if v, ok := m["postgres"]; ok {
		s += fmt.Sprintf(", PostgreSQL %.1f µs (the run's connections)", v)
	}
	return s + fmt.Sprintf(", whole machine %.1f µs", m["machine"])
}

// waitPersisted waits until the persister has written n events in all.
func (r *recoveryRun) waitPersisted(ctx context.Context, n int64) error {
	deadline := time.Now().Add(10 * time.Minute)
	for r.pers.Stats().EventsPersisted < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("the persister wrote %d of %d events in 10 minutes", r.pers.Stats().EventsPersisted, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// rebuild drops every Redis key of the deployment and waits for the
// rebuilder to bring every partition back, probing meanwhile that a rebuilt
// partition serves reads and writes while others still rebuild.
func (r *recoveryRun) rebuild(ctx context.Context) error {
	all := make([]int, r.cfg.Partitions)
	for i := range all {
		all[i] = i
	}
	busy := map[int]int{} // partition → the first item of one of its stores
	for i := 0; i < r.cfg.Stores; i++ {
		st, _ := r.item(i)
		if _, ok := busy[r.e.Partition(st)]; !ok {
			busy[r.e.Partition(st)] = i
		}
	}
	before := r.rb.Stats()
	dropped, err := r.dropAll(ctx)
	if err != nil {
		return fmt.Errorf("drop the deployment's keys: %w", err)
	}
	start := time.Now() // Redis has lost everything now
	var (
		firstBusy            time.Duration
		probes, probesOK     int
		probeErrs            []string
		deadline             = start.Add(10 * time.Minute)
		readyAt, notReadyNow = map[int]time.Duration{}, []int(nil)
	)
	for {
		nr, err := r.e.PartitionsNotReady(ctx, all)
		if err != nil {
			return err
		}
		now := time.Since(start)
		notReadyNow = nr
		waiting := map[int]bool{}
		for _, p := range nr {
			waiting[p] = true
		}
		for p := range busy {
			if _, ok := readyAt[p]; !ok && !waiting[p] {
				readyAt[p] = now
				if firstBusy == 0 {
					firstBusy = now
				}
			}
		}
		if len(nr) == 0 {
			break
		}
		// A rebuilt partition with items, while one with items still
		// rebuilds: it must serve a read and a write.
		othersBusy := false
		for p := range busy {
			othersBusy = othersBusy || waiting[p]
		}
		if othersBusy && probes < 20 {
			for p, i := range busy {
				if waiting[p] || r.probed[i] {
					continue
				}
				probes++
				if err := r.probe(ctx, i); err != nil {
					probeErrs = append(probeErrs, err.Error())
				} else {
					probesOK++
				}
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("partitions %v still not ready after 10 minutes", notReadyNow)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	took := time.Since(start)
	after := r.rb.Stats()
	restored := after.Items - before.Items
	probeNote := "not observed (the rebuild was over before a probe could run)"
	if probes > 0 {
		probeNote = fmt.Sprintf("%d of %d answered", probesOK, probes)
	}
	r.add(RecoveryStep{Name: "rebuild after Redis lost every key: every partition ready", Items: restored, Seconds: took.Seconds(),
		Rate: float64(restored) / took.Seconds(), Goal: "≤ 20 s", Met: met(took <= 20*time.Second && len(probeErrs) == 0),
		Detail: fmt.Sprintf("keys listed and dropped in %.2fs (markers last; timed from then); first partition with items ready after %.2fs; %d partitions rebuilt; reads and writes of rebuilt partitions while others rebuilt: %s",
			dropped.Seconds(), firstBusy.Seconds(), after.Partitions-before.Partitions, probeNote)})
	if len(probeErrs) > 0 {
		return fmt.Errorf("a rebuilt partition refused while others rebuilt: %s", strings.Join(probeErrs, "; "))
	}
	if restored < int64(r.cfg.Items) {
		return fmt.Errorf("the rebuild restored %d of %d items", restored, r.cfg.Items)
	}
	return nil
}

// dropAll deletes every key of the deployment as a Redis restarted without
// persistence would lose them: the keys are listed first, then deleted,
// the readiness markers last, so that no rebuild starts (and sees its
// restored keys deleted) before everything is gone. It returns how long
// listing and deleting took.
func (r *recoveryRun) dropAll(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	var keys, markers []string
	iter := r.rdb.Scan(ctx, 0, r.prefix+":*", 5000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		if strings.HasSuffix(k, "}:ready") {
			markers = append(markers, k)
		} else {
			keys = append(keys, k)
		}
	}
	if err := iter.Err(); err != nil {
		return 0, err
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		if err := r.rdb.Unlink(ctx, keys[:n]...).Err(); err != nil {
			return 0, err
		}
		keys = keys[n:]
	}
	if len(markers) > 0 {
		if err := r.rdb.Unlink(ctx, markers...).Err(); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// probe reads item i over HTTP and writes it (its on_hand plus one).
func (r *recoveryRun) probe(ctx context.Context, i int) error {
	st, sku := r.item(i)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"/v1/stores/"+st+"/items/"+sku, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	res, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s/%s: %d", st, sku, res.StatusCode)
	}
	body := fmt.Sprintf(`{"items":[{"store":%q,"sku":%q,"on_hand":%d}]}`, st, sku, onHand(i)+1)
	req, err = http.NewRequestWithContext(ctx, http.MethodPut, r.url+"/v1/items", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/json")
	res, err = r.hc.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"status":200`)) {
		return fmt.Errorf("PUT /v1/items %s/%s: %d %s", st, sku, res.StatusCode, b)
	}
	r.probed[i] = true
	r.events++
	return nil
}

// reconcile waits for the ledger to hold every event, then runs one
// reconciliation in mode and times it.
func (r *recoveryRun) reconcile(ctx context.Context, mode persist.Mode) (*persist.Report, time.Duration, error) {
	if err := r.waitPersisted(ctx, r.events); err != nil {
		return nil, 0, err
	}
	rec, err := persist.NewReconciler(r.e, r.ledger.pool, persist.ReconcilerConfig{Logger: r.cfg.Logger})
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	rep, err := rec.Reconcile(ctx, mode)
	took := time.Since(start)
	if err != nil {
		return nil, took, fmt.Errorf("reconcile %s: %w", mode, err)
	}
	return rep, took, nil
}

// findingsOf summarises findings by kind, and lists the first few.
func findingsOf(rep *persist.Report) string {
	kinds := map[string]int{}
	for _, f := range rep.Findings {
		kinds[f.Kind]++
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %d", k, kinds[k]))
	}
	if len(parts) == 0 {
		return "no findings"
	}
	return strings.Join(parts, ", ")
}

func firstFindings(rep *persist.Report, n int) string {
	var out []string
	for _, f := range rep.Findings[:min(n, len(rep.Findings))] {
		out = append(out, fmt.Sprintf("%s %s/%s (%s)", f.Kind, f.Store, f.SKU, f.Detail))
	}
	return strings.Join(out, "; ")
}

// checkClean checks every item against the ledger after the rebuild: no
// finding allowed.
func (r *recoveryRun) checkClean(ctx context.Context) error {
	rep, took, err := r.reconcile(ctx, persist.ModeCheck)
	if err != nil {
		return err
	}
	ok := len(rep.Findings) == 0 && rep.ItemsChecked >= int64(r.cfg.Items)
	r.add(RecoveryStep{Name: "check of every item against the ledger", Items: rep.ItemsChecked, Seconds: took.Seconds(),
		Rate: float64(rep.ItemsChecked) / took.Seconds(), Goal: "≤ 60 s", Met: met(ok && took <= 60*time.Second), Detail: findingsOf(rep)})
	if !ok {
		return fmt.Errorf("after the rebuild %d items checked of %d, %d differ from the ledger: %s",
			rep.ItemsChecked, r.cfg.Items, len(rep.Findings), firstFindings(rep, 10))
	}
	return nil
}

// drift loses half the drifted items from Redis and corrupts the other
// half (same version, other on_hand, or a unit more in the damaged state),
// then times a check, which must find exactly them, and a repair, which
// must restore every one.
func (r *recoveryRun) drift(ctx context.Context) error {
	n := r.cfg.Drift
	step := r.cfg.Items / n
	refs := make([]engine.ItemRef, n)
	for k := range refs {
		refs[k].Store, refs[k].SKU = r.item(k * step)
	}
	cur, err := r.e.LoadItems(ctx, refs)
	if err != nil {
		return err
	}
	want := map[string]string{}
	for k, ref := range refs {
		key := ref.Store + "/" + ref.SKU
		if k%2 == 0 {
			want[key] = persist.KindRedisMissing
			if err := r.e.DeleteItem(ctx, ref.Store, ref.SKU); err != nil {
				return err
			}
			continue
		}
		it := cur[k]
		if it == nil {
			return fmt.Errorf("item %s is missing before the drift", key)
		}
		want[key] = persist.KindCorrupt
		s := engine.ItemState{Store: it.Store, SKU: it.SKU, OnHand: it.OnHand, Reserved: it.Reserved, States: it.States,
			Version: it.Version, ReorderPoint: -1, MaxPerCustomer: -1, SafetyStock: it.SafetyStock, UpdatedAt: it.UpdatedAt}
		if k%4 == 1 {
			s.OnHand += 5 // a count
		} else {
			s.OnHand++ // a state: one more unit, and it damaged
			s.Damaged++
		}
		if err := r.e.RestoreItem(ctx, s, it.Version); err != nil {
			return err
		}
	}
	match := func(rep *persist.Report) error {
		if len(rep.Findings) != n {
			return fmt.Errorf("%d findings for %d drifted items: %s; first: %s", len(rep.Findings), n, findingsOf(rep), firstFindings(rep, 10))
		}
		for _, f := range rep.Findings {
			if want[f.Store+"/"+f.SKU] != f.Kind {
				return fmt.Errorf("unexpected finding %s %s/%s: %s", f.Kind, f.Store, f.SKU, f.Detail)
			}
		}
		return nil
	}
	rep, took, err := r.reconcile(ctx, persist.ModeCheck)
	if err != nil {
		return err
	}
	bad := match(rep)
	r.add(RecoveryStep{Name: fmt.Sprintf("check with %d drifted items", n), Items: rep.ItemsChecked, Seconds: took.Seconds(),
		Rate: float64(rep.ItemsChecked) / took.Seconds(), Goal: "≤ 60 s", Met: met(bad == nil && took <= 60*time.Second), Detail: findingsOf(rep)})
	if bad != nil {
		return bad
	}
	rep, took, err = r.reconcile(ctx, persist.ModeRepair)
	if err != nil {
		return err
	}
	bad = match(rep)
	for _, f := range rep.Findings {
		if bad == nil && !strings.HasPrefix(f.Action, "restored Redis") {
			bad = fmt.Errorf("%s %s/%s not repaired: %s", f.Kind, f.Store, f.SKU, f.Action)
		}
	}
	r.add(RecoveryStep{Name: fmt.Sprintf("repair of %d drifted items", n), Items: int64(n), Seconds: took.Seconds(),
		Goal: "≤ 90 s", Met: met(bad == nil && took <= 90*time.Second),
		Detail: fmt.Sprintf("%s; %d items checked", findingsOf(rep), rep.ItemsChecked)})
	return bad
}

// checkFinal checks every item against the ledger once more (no finding
// allowed), and every item's on_hand in Redis against what was imported.
func (r *recoveryRun) checkFinal(ctx context.Context) error {
	rep, took, err := r.reconcile(ctx, persist.ModeCheck)
	if err != nil {
		return err
	}
	var diffs []string
	ndiff := 0
	const page = 5000
	for from := 0; from < r.cfg.Items; from += page {
		refs := make([]engine.ItemRef, 0, page)
		for i := from; i < min(from+page, r.cfg.Items); i++ {
			var ref engine.ItemRef
			ref.Store, ref.SKU = r.item(i)
			refs = append(refs, ref)
		}
		items, err := r.e.LoadItems(ctx, refs)
		if err != nil {
			return err
		}
		for j, it := range items {
			i := from + j
			want := onHand(i)
			if r.probed[i] {
				want++
			}
			if it == nil || it.OnHand != want || it.Reserved != 0 || it.States != (engine.States{}) {
				if ndiff++; len(diffs) < 10 {
					diffs = append(diffs, fmt.Sprintf("%s/%s: %+v, want on_hand %d", refs[j].Store, refs[j].SKU, it, want))
				}
			}
		}
	}
	ok := len(rep.Findings) == 0 && ndiff == 0 && rep.ItemsChecked >= int64(r.cfg.Items)
	r.add(RecoveryStep{Name: "final check of every item (ledger, and what was imported)", Items: rep.ItemsChecked, Seconds: took.Seconds(),
		Rate: float64(rep.ItemsChecked) / took.Seconds(), Met: met(ok),
		Detail: fmt.Sprintf("%s; %d items differ from what was imported", findingsOf(rep), ndiff)})
	if !ok {
		return fmt.Errorf("%d items differ from the ledger (%s), %d from what was imported: %s", len(rep.Findings),
			firstFindings(rep, 10), ndiff, strings.Join(diffs, "; "))
	}
	return nil
}

// WriteRecoveryTable prints rep as a Markdown table: one row per step with
// its items, seconds, rate and goal, then the details and any failure.
func WriteRecoveryTable(w io.Writer, rep *RecoveryReport) error {
	fmt.Fprintf(w, "recovery: %d items in %d stores, %d partitions; %s, %d CPUs, Go %s\n\n", rep.Items, rep.Stores, rep.Partitions,
		rep.Machine.OS+"/"+rep.Machine.Arch, rep.Machine.CPUs, rep.Machine.GoVersion)
	fmt.Fprintln(w, "| step | items | seconds | per second | goal | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, s := range rep.Steps {
		rate, m := "", ""
		if s.Rate > 0 {
			rate = fmt.Sprintf("%.0f", s.Rate)
		}
		if s.Met != nil {
			m = map[bool]string{true: "yes", false: "**no**"}[*s.Met]
		}
		fmt.Fprintf(w, "| %s | %d | %.2f | %s | %s | %s |\n", s.Name, s.Items, s.Seconds, rate, s.Goal, m)
	}
	fmt.Fprintln(w)
	for _, s := range rep.Steps {
		if s.Detail != "" {
			fmt.Fprintf(w, "- %s: %s\n", s.Name, s.Detail)
		}
	}
	for _, p := range rep.Profiles {
		fmt.Fprintf(w, "- CPU profile: %s\n", p)
	}
	if !rep.Passed {
		fmt.Fprintf(w, "\nFAILED:\n")
		for _, f := range rep.Failures {
			fmt.Fprintf(w, "- %s\n", f)
		}
	}
	return nil
}
