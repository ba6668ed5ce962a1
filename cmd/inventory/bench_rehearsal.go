package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/shelfline/inventory/bench"
)

// rehearsalFlags are the flags of a rehearsal against a deployment, of a
// worker and of compare.
type rehearsalFlags struct {
	plan, stages, thresholds, workerURLs, listen, metricsURL, ledgerURL *string
	workerToken                                                         *string
	worker, closedLoop, idempotency                                     *bool
	maxInFlight                                                         *int
	tolerance                                                           *float64
}

func (f *rehearsalFlags) register(fs *flagSet) {
	f.plan = fs.String("plan", "INVENTORY_BENCH_PLAN", "", "rehearsal: a plan file (YAML or JSON: stages, mix, catalog, customers, thresholds; see README)")
	f.stages = fs.String("stages", "INVENTORY_BENCH_STAGES", "", "rehearsal: the load profile as duration:rate,… (e.g. 30s:100,1m:500,30s:0), over the plan's")
	f.thresholds = fs.String("thresholds", "INVENTORY_BENCH_THRESHOLDS", "", "rehearsal: service levels, comma-separated, added to the plan's (e.g. checkout.p99<50ms,errors<0.1%,oversold==0)")
	f.worker = fs.Bool("worker", "INVENTORY_BENCH_WORKER", false, "run as a load process: take a share of a rehearsal from a coordinator on --listen")
	f.listen = fs.String("listen", "INVENTORY_BENCH_LISTEN", "127.0.0.1:7070", "worker: the address to take assignments on (port 0 picks one)")
	f.workerURLs = fs.String("worker-urls", "INVENTORY_BENCH_WORKER_URLS", "", "rehearsal: http://host:port,… of the workers that send the load, each a share of the rate (empty: this process)")
	f.workerToken = fs.Secret("worker-token", "INVENTORY_BENCH_WORKER_TOKEN", "", "worker: the bearer token an assignment must carry; rehearsal: the token sent to --worker-urls (empty: none)", always)
	f.closedLoop = fs.Bool("closed-loop", "INVENTORY_BENCH_CLOSED_LOOP", false, "rehearsal: --workers clients each send when the last answer came, instead of arrival rates")
	f.maxInFlight = fs.Int("max-in-flight", "INVENTORY_BENCH_MAX_IN_FLIGHT", 0, "rehearsal: requests in flight per load process before an iteration is late (0: the plan's, default 2000)")
	f.idempotency = fs.Bool("idempotency", "INVENTORY_BENCH_IDEMPOTENCY", false, "rehearsal: send an Idempotency-Key with every write and retry unknown outcomes with it")
	f.metricsURL = fs.String("metrics-url", "INVENTORY_BENCH_METRICS_URL", "", "rehearsal: the server's Prometheus /metrics, sampled each second (empty: --url/metrics; off)")
	f.ledgerURL = fs.Secret("ledger-url", "INVENTORY_BENCH_LEDGER_URL", "", "rehearsal: PostgreSQL URL of the deployment's ledger (schema --ledger-schema, default public), checked after the run", hasUserinfo)
	f.tolerance = fs.Float64("tolerance", "INVENTORY_BENCH_TOLERANCE", 0.1, "compare: the relative change beyond which a worse figure (and beyond the noise) is a regression")
}

// rehearsalDefaults are the harness's flags a rehearsal without a plan
// reads: --targets http runs the scenario open-loop at --rate for
// --duration (closed-loop with --workers when no rate is given).
type rehearsalDefaults struct {
	scenario              string
	rate                  float64
	duration, holdTTL     time.Duration
	workers, stores, skus int
	stock                 int64
	chunk                 int
	// ledgerSchema and databaseURL: --ledger-schema alone names a schema
	// on --database-url.
	ledgerSchema, databaseURL string
}

// plan builds the plan of a run with no plan file from the scenario.
func (d rehearsalDefaults) plan() (bench.Plan, error) {
	p := bench.Plan{Name: "http-" + d.scenario}
	switch d.scenario {
	case bench.ScenarioFlashSale:
		p.Mix.Checkout = 1
		p.Catalog = bench.Catalog{Stores: 1, SKUs: 1, OnHand: d.stock}
		if p.Catalog.OnHand == 0 {
			p.Catalog.OnHand = 20000
		}
	case bench.ScenarioMixed:
		p.Mix = bench.Mix{Checkout: 45, Read: 25, Adjust: 15, Reserve: 15}
		p.Reservation = bench.Reservation{Commit: 0.5, Release: 0.3, TTL: d.holdTTL}
		p.Catalog = bench.Catalog{Stores: d.stores, SKUs: d.skus, Lines: 3}
		if p.Catalog.SKUs == 0 {
			p.Catalog.SKUs = 200
		}
	case bench.ScenarioBulk:
		p.Mix.Bulk = 1
		p.Catalog = bench.Catalog{Stores: d.stores, SKUs: 1000, BulkLines: d.chunk}
	default:
		return p, fmt.Errorf("--scenario must be flash-sale, mixed or bulk, got %q", d.scenario)
	}
	return p, nil
}

func runRehearsal(ctx context.Context, f *rehearsalFlags, d rehearsalDefaults, url, token, out string, stdout, stderr *os.File, command string) error {
	var p bench.Plan
	var err error
	if *f.plan != "" {
		if p, err = bench.LoadPlan(*f.plan); err != nil {
			return err
		}
	} else if p, err = d.plan(); err != nil {
		return err
	}
	switch {
	case *f.stages != "":
		st, err := bench.ParseStages(*f.stages)
		if err != nil {
			return fmt.Errorf("--stages: %w", err)
		}
		p.Stages, p.StartRate = st, 0
	case *f.plan == "":
		// --rate R for --duration, constant; without a rate a closed loop.
		p.Stages = []bench.Stage{{Name: "constant", Duration: d.duration, Rate: d.rate}}
		p.StartRate = d.rate
		if d.rate == 0 {
			*f.closedLoop = true
		}
	}
	if *f.closedLoop {
		p.Client.ClosedLoop = d.workers
		if p.Client.ClosedLoop == 0 {
			p.Client.ClosedLoop = 200
		}
	}
	if *f.maxInFlight > 0 {
		p.Client.MaxInFlight = *f.maxInFlight
	}
	if *f.idempotency {
		p.Client.Idempotency = true
	}
	for _, t := range strings.Split(*f.thresholds, ",") {
		if t = strings.TrimSpace(t); t != "" {
			p.Thresholds = append(p.Thresholds, t)
		}
	}
	if p, err = bench.ParsePlanValue(p); err != nil {
		return err
	}
	var workers []string
	for _, w := range strings.Split(*f.workerURLs, ",") {
		if w = strings.TrimSpace(w); w != "" {
			workers = append(workers, w)
		}
	}
	ledgerURL := *f.ledgerURL
	if ledgerURL == "" && d.ledgerSchema != "" {
		ledgerURL = d.databaseURL
	}
	r, err := bench.Rehearse(ctx, bench.RehearsalConfig{Plan: p, URL: url, Token: token, Workers: workers, WorkerToken: *f.workerToken, MetricsURL: *f.metricsURL,
		LedgerURL: ledgerURL, LedgerSchema: d.ledgerSchema, OutDir: out, Command: command, Progress: stderr})
	if err != nil {
		return err
	}
	if err := bench.WriteRehearsalSummary(stdout, r); err != nil {
		return err
	}
	if !r.Passed {
		return errRehearsalFailed
	}
	return nil
}

var errRehearsalFailed = fmt.Errorf("the rehearsal failed: a threshold or an invariant did not hold")

func runWorker(ctx context.Context, addr, token string, stderr *os.File) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	fmt.Fprintf(stderr, "worker listening on http://%s\n", ln.Addr())
	return bench.ServeWorker(ctx, ln, stderr, token)
}

func runCompare(a, b string, tolerance float64, stdout *os.File) error {
	ra, err := bench.LoadRehearsal(a)
	if err != nil {
		return err
	}
	rb, err := bench.LoadRehearsal(b)
	if err != nil {
		return err
	}
	c := bench.Compare(ra, rb, tolerance)
	if err := bench.WriteComparison(stdout, ra, rb, c); err != nil {
		return err
	}
	if c.Regressions > 0 {
		return fmt.Errorf("%d regression(s)", c.Regressions)
	}
	return nil
}
