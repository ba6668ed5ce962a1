package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// Report is everything a run measured and checked. It is written as JSON.
type Report struct {
	Scenario string          `json:"scenario"`
	Command  string          `json:"command,omitempty"`
	Run      string          `json:"run"`
	Started  time.Time       `json:"started"`
	Finished time.Time       `json:"finished"`
	Machine  Machine         `json:"machine"`
	Params   map[string]any  `json:"params"`
	Results  []*TargetResult `json:"results"`
	// Passed is true when every target set up, ran and passed every check.
	Passed bool `json:"passed"`
	// Goals are the performance goals this run's targets allow to measure.
	Goals []Goal `json:"goals"`
	// Files are the paths written: json, svg, txt.
	Files map[string]string `json:"files,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	Host      string  `json:"host"`
	OS        string  `json:"os"`
	Arch      string  `json:"arch"`
	CPUs      int     `json:"cpus"`
	CPUModel  string  `json:"cpu_model"`
	GoVersion string  `json:"go_version"`
	Load1     float64 `json:"load1_at_start"`
}

// TargetResult is one target's measurement and verdict.
type TargetResult struct {
	Target string `json:"target"`
	// PacedRate is the operations per second a paced run was held to
	// (Config.RateFraction); 0 for a full-speed run.
	PacedRate float64 `json:"paced_rate,omitempty"`
	// Unit names what Throughput counts: sales, ops, lines or calls.
	Unit string `json:"unit"`
	// Ops counts every operation; OK, Refused and Errors split them.
	Ops     int64 `json:"ops"`
	OK      int64 `json:"ok"`
	Refused int64 `json:"refused"`
	Errors  int64 `json:"errors"`
	// Unknown counts errors after which the change may have landed.
	Unknown    int64            `json:"unknown_outcome"`
	ErrorKinds map[string]int64 `json:"error_kinds"`
	Seconds    float64          `json:"seconds"`
	// Throughput is Units per second of the load's wall time; OpsPerSec
	// counts every operation.
	Units      int64   `json:"units"`
	Throughput float64 `json:"throughput"`
	OpsPerSec  float64 `json:"ops_per_sec"`
	Latency    Latency `json:"latency"`
	// Ratios is Throughput over each baseline's in the same run.
	Ratios   map[string]float64 `json:"ratios"`
	Timeline []Bucket           `json:"timeline"`
	Checks   []Check            `json:"checks"`
	// Violations lists every broken invariant; Error a failure to run.
	Violations []string       `json:"violations"`
	Error      string         `json:"error,omitempty"`
	Extra      map[string]any `json:"extra,omitempty"`
	// CPU is the CPU used during the load, in percent of one core: by the
	// bench process (the load client and any in-process target), Redis,
	// PostgreSQL, an outside load tool, and the machine in all (a 2-core
	// machine tops out at 200). Empty outside Linux.
	CPU map[string]float64 `json:"cpu_percent,omitempty"`
	// CPUPerOp is the same CPU per successful operation, in µs: what one
	// sale costs each process (docs/design.md §16).
	CPUPerOp map[string]float64 `json:"cpu_us_per_op,omitempty"`
	Passed   bool               `json:"passed"`
}

// Run runs the scenario against every target in turn, checks each, and
// writes the report's files to OutDir. It returns the report even when a
// target failed or broke an invariant (Report.Passed is false); the error is
// for a run that could not happen at all.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Report{Scenario: cfg.Scenario, Command: cfg.Command, Run: randomHex(4), Started: cfg.Now().UTC(), Machine: machine(), Params: params(cfg)}
	if rdb, err := newRedis(ctx, cfg.RedisURL, 1); err == nil {
		defer rdb.Close()
		defer watchRedisCPU(rdb)()
	}
	for _, name := range cfg.Targets {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(cfg.Progress, "[%s] %s: setting up\n", name, cfg.Scenario)
		res := runTarget(ctx, cfg, r.Run, name)
		if res.Error != "" {
			fmt.Fprintf(cfg.Progress, "[%s] FAILED: %s\n", name, res.Error)
		}
		r.Results = append(r.Results, res)
		if cfg.RateFraction > 0 && name != TargetRedisBenchmark && res.Error == "" && res.OpsPerSec > 0 && ctx.Err() == nil {
			pcfg := cfg
			pcfg.Rate = cfg.RateFraction * res.OpsPerSec
			label := fmt.Sprintf("%s@%.0f%%", name, 100*cfg.RateFraction)
			fmt.Fprintf(cfg.Progress, "[%s] %s: paced at %.0f ops/s\n", label, cfg.Scenario, pcfg.Rate)
			// A run id of its own: an http target's server keeps the
			// first run's items.
			pres := runTarget(ctx, pcfg, r.Run+"p", name)
			pres.Target, pres.PacedRate = label, pcfg.Rate
			if pres.Error != "" {
				fmt.Fprintf(cfg.Progress, "[%s] FAILED: %s\n", label, pres.Error)
			}
			r.Results = append(r.Results, pres)
		}
	}
	r.Finished = cfg.Now().UTC()
	ratios(r.Results)
	r.Goals = Goals(r)
	r.Passed = len(r.Results) >= len(cfg.Targets)
	for _, res := range r.Results {
		r.Passed = r.Passed && res.Passed
	}
	files, err := write(cfg.OutDir, r)
	r.Files = files
	return r, err
}

func runTarget(ctx context.Context, cfg Config, run, name string) *TargetResult {
	res := &TargetResult{Target: name, ErrorKinds: map[string]int64{}, Ratios: map[string]float64{}}
	o, err := runOne(ctx, cfg, run, name)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Unit, res.Units, res.Checks, res.Violations, res.Extra, res.CPU = o.unit, o.units, o.checks, o.violations, o.extra, o.cpu
	if res.CPU == nil {
		res.CPU = o.rec.cpu
	}
	res.Seconds = o.elapsed.Seconds()
	snap := o.rec.snapshot(o.elapsed)
	res.OK, res.Refused, res.Errors = o.rec.ok.Load(), o.rec.refused.Load(), o.rec.errors.Load()
	res.Ops = res.OK + res.Refused + res.Errors
	res.ErrorKinds, res.Unknown, res.Latency, res.Timeline = snap.kinds, snap.unknown, snap.all, snap.timeline
	if res.Seconds > 0 {
		res.Throughput = float64(res.Units) / res.Seconds
		res.OpsPerSec = float64(res.Ops) / res.Seconds
	}
	if c := o.counts; c != nil {
		res.OK, res.Refused, res.Errors, res.Unknown = c.ok, c.refused, c.errors, c.unknown
		res.Ops = c.ok + c.refused + c.errors
		res.ErrorKinds = map[string]int64{}
		for k, v := range c.kinds {
			if v > 0 {
				res.ErrorKinds[k] = v
			}
		}
		if res.Seconds > 0 {
			res.OpsPerSec = float64(res.Ops) / res.Seconds
		}
	}
	if o.latency != nil {
		res.Latency = *o.latency
	}
	if o.rps > 0 {
		res.Throughput, res.OpsPerSec, res.Ops, res.OK = o.rps, o.rps, o.units, o.units
	}
	if res.Violations == nil {
		res.Violations = []string{}
	}
	res.CPUPerOp = cpuPerOp(res.CPU, res.Throughput)
	res.Passed = len(res.Violations) == 0
	return res
}

// cpuPerOp turns CPU in percent of one core into µs per successful
// operation at throughput ops/s.
func cpuPerOp(cpu map[string]float64, throughput float64) map[string]float64 {
	if len(cpu) == 0 || throughput <= 0 {
		return nil
	}
	out := map[string]float64{}
	for k, v := range cpu {
		if k != "machine" {
			out[k] = v / 100 / throughput * 1e6
		}
	}
	return out
}

func runOne(ctx context.Context, cfg Config, run, name string) (o *outcome, err error) {
	if name == TargetRedisBenchmark {
		return redisBenchmark(ctx, cfg)
	}
	t, err := newTarget(ctx, cfg, run, name)
	if err != nil {
		return nil, fmt.Errorf("set up: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if cerr := t.Close(cctx); cerr != nil && err == nil {
			err = fmt.Errorf("clean up: %w", cerr)
		}
	}()
	switch cfg.Scenario {
	case ScenarioFlashSale:
		return flashSale(ctx, cfg, name, run, t)
	case ScenarioMixed:
		return mixed(ctx, cfg, name, run, t)
	default:
		return bulk(ctx, cfg, name, run, t)
	}
}

func newTarget(ctx context.Context, cfg Config, run, name string) (target, error) {
	switch name {
	case TargetEngine:
		return newEngineTarget(ctx, cfg, run)
	case TargetPGGuarded:
		return newPGTarget(ctx, cfg, "bench_"+run+"_guarded", false)
	case TargetPGOptimistic:
		return newPGTarget(ctx, cfg, "bench_"+run+"_optimistic", true)
	case TargetBare:
		return newBareTarget(ctx, cfg, run)
	case TargetServer:
		return newServerTarget(ctx, cfg, run)
	case TargetHTTP:
		c := newHTTPClient(cfg.URL, cfg.Token, cfg.Workers, 0)
		if cfg.LedgerSchema != "" {
			l, err := newPGLedger(ctx, cfg.DatabaseURL, cfg.LedgerSchema, false)
			if err != nil {
				return nil, fmt.Errorf("server ledger: %w", err)
			}
			c.ledger = l
		}
		return c, nil
	}
	return nil, fmt.Errorf("unknown target %q", name)
}

// ratios fills every result's throughput over each baseline's.
func ratios(results []*TargetResult) {
	base := map[string]float64{}
	for _, r := range results {
		if contains(Baselines, r.Target) && r.Error == "" && r.Throughput > 0 && r.PacedRate == 0 {
			base[r.Target] = r.Throughput
		}
	}
	for _, r := range results {
		for b, v := range base {
			if b != r.Target && r.Error == "" && r.PacedRate == 0 {
				r.Ratios[b] = r.Throughput / v
			}
		}
	}
}

func machine() Machine {
	m := Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	m.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscanf(string(b), "%f", &m.Load1)
	}
	return m
}

func params(c Config) map[string]any {
	p := map[string]any{"targets": c.Targets, "workers": c.Workers, "duration": c.Duration.String(), "max_ops": c.MaxOps,
		"redis_url": c.RedisURL, "pg_conns": c.PGConns, "partitions": c.Partitions, "ledger": !c.NoLedger, "client": c.Client}
	if c.Rate > 0 {
		p["rate"] = c.Rate
	}
	if c.RateFraction > 0 {
		p["rate_fraction"] = c.RateFraction
	}
	switch c.Scenario {
	case ScenarioFlashSale:
		p["stock"], p["qty"] = c.Stock, c.Qty
	case ScenarioMixed:
		p["stores"], p["skus"], p["reservation_ttl"] = c.Stores, c.SKUs, c.ReservationTTL.String()
	case ScenarioBulk:
		p["items"], p["lines"], p["chunk"] = c.BulkItems, c.BulkLines, c.BulkChunk
	}
	if c.URL != "" {
		p["url"] = c.URL
	}
	return p
}
