package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/shelfline/inventory/bench"
)

var errBenchFailed = errors.New("a target failed or broke an invariant")

func runBench(ctx context.Context, args []string, stdout, stderr *os.File) error {
	var cfg config
	fs := newFlagSet("bench", "Run a load scenario against one or more targets, check the invariants after each,\n"+
		"print a summary and write JSON and an SVG latency plot (see package bench).\n"+
		"Redis and PostgreSQL come from the shared settings below; targets: engine, server, http,\n"+
		"pg-optimistic, pg-guarded, bare, redis-benchmark.\n\n"+
		"Against a deployment (--url, --token) with --plan FILE or --stages, or --targets http alone, it rehearses\n"+
		"a peak instead: open-loop arrival rates in stages, a mix of operations, thresholds that decide the\n"+
		"exit status, JSON, HTML and text reports; --worker-urls spreads the load over `inventory bench --worker`\n"+
		"processes. `inventory bench compare A.json B.json` flags the regressions of B against A.", stderr, os.Getenv)
	cfg.register(fs)
	scenario := fs.String("scenario", "INVENTORY_BENCH_SCENARIO", bench.ScenarioFlashSale, "flash-sale, mixed, bulk or recovery")
	targets := fs.String("targets", "INVENTORY_BENCH_TARGETS", "engine,pg-guarded,pg-optimistic", "comma-separated targets, run in this order")
	fs.Alias("target", "targets")
	workers := fs.Int("workers", "INVENTORY_BENCH_WORKERS", 0, "concurrent clients: buyers, tills or importers (default 200; 8 for bulk; 4 requests in flight for recovery)")
	fs.Alias("buyers", "workers")
	duration := fs.Duration("duration", "INVENTORY_BENCH_DURATION", 20*time.Second, "load duration per target")
	rateFraction := fs.Float64("rate-fraction", "INVENTORY_BENCH_RATE_FRACTION", 0, "also run each target paced at this fraction of the ops/s it reached, e.g. 0.5 for latency at half of peak")
	rate := fs.Float64("rate", "INVENTORY_BENCH_RATE", 0, "pace each target at this many operations per second in all, latency counted from when each was due (0: as fast as the workers go)")
	maxOps := fs.Int64("max-ops", "INVENTORY_BENCH_MAX_OPS", 0, "bound on each target's operations (default 4×stock+workers for flash-sale, 10M otherwise)")
	stock := fs.Int64("stock", "INVENTORY_BENCH_STOCK", 0, "flash-sale stock of the hot SKU (default 20000)")
	qty := fs.Int64("qty", "INVENTORY_BENCH_QTY", 0, "flash-sale units per checkout (default 1)")
	stores := fs.Int("stores", "INVENTORY_BENCH_STORES", 0, "mixed, bulk and recovery: stores (default 30)")
	skus := fs.Int("skus", "INVENTORY_BENCH_SKUS", 0, "mixed: SKUs per store (default 2000)")
	holdTTL := fs.Duration("hold-ttl", "INVENTORY_BENCH_HOLD_TTL", 0, "mixed: TTL of the holds left to expire (default 2s)")
	items := fs.Int("items", "INVENTORY_BENCH_BULK_ITEMS", 0, "bulk: items imported (default 20000); recovery: items (default 1000000)")
	lines := fs.Int("lines", "INVENTORY_BENCH_BULK_LINES", 0, "bulk: adjustment lines (default 200000)")
	chunk := fs.Int("chunk", "INVENTORY_BENCH_BULK_CHUNK", 0, "bulk: lines per request, at most 1000 (default 1000); recovery: lines per PUT /v1/items, at most 10000 (default 5000)")
	pgConns := fs.Int("pg-conns", "INVENTORY_BENCH_PG_CONNS", 0, "baselines: PostgreSQL pool size (default 32)")
	client := fs.String("client", "INVENTORY_BENCH_CLIENT", bench.ClientBuiltin, "flash-sale load client of the HTTP targets (server, bare, http): builtin or wrk")
	url := fs.String("url", "INVENTORY_BENCH_URL", "", "base URL of a running server, for the http target")
	token := fs.Secret("token", "INVENTORY_BENCH_TOKEN", "", "admin token of that server", always)
	ledgerSchema := fs.String("ledger-schema", "INVENTORY_BENCH_LEDGER_SCHEMA", "", "http: the server's ledger schema (on --database-url, or on --ledger-url), so the checker verifies it too")
	out := fs.String("out", "INVENTORY_BENCH_OUT", "bench/results", "directory for the JSON report and the SVG plot")
	noLedger := fs.Bool("no-ledger", "INVENTORY_BENCH_NO_LEDGER", false, "run the engine target without the persister")
	cpuProfile := fs.Bool("cpuprofile", "INVENTORY_BENCH_CPUPROFILE", false, "write a CPU profile of this process during each target's load to --out (go tool pprof)")
	var rf rehearsalFlags
	rf.register(fs)
	compare := len(args) > 0 && args[0] == "compare"
	if compare {
		if err := fs.Parse(args[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return errUsage
		}
		if fs.NArg() != 2 {
			fmt.Fprintf(stderr, "usage: inventory bench compare [--tolerance F] A.json B.json\n")
			return errUsage
		}
		return runCompare(fs.Arg(0), fs.Arg(1), *rf.tolerance, stdout)
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *rf.worker {
		return runWorker(ctx, *rf.listen, *rf.workerToken, stderr)
	}
	onlyHTTP := strings.TrimSpace(*targets) == bench.TargetHTTP
	if *rf.plan != "" || *rf.stages != "" || *rf.workerURLs != "" || onlyHTTP {
		return runRehearsal(ctx, &rf, rehearsalDefaults{scenario: *scenario, rate: *rate, duration: *duration, workers: *workers,
			stock: *stock, stores: *stores, skus: *skus, holdTTL: *holdTTL, chunk: *chunk,
			ledgerSchema: *ledgerSchema, databaseURL: cfg.DatabaseURL},
			*url, *token, *out, stdout, stderr, strings.TrimSpace("inventory bench "+strings.Join(args, " ")))
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.embedded() || cfg.ledgerOff() {
		return errors.New("bench needs a real Redis and PostgreSQL (not embedded, not off)")
	}
	if *scenario == bench.ScenarioRecovery {
		return runRecovery(ctx, bench.RecoveryConfig{RedisURL: cfg.RedisURL, DatabaseURL: cfg.DatabaseURL, Partitions: cfg.Partitions,
			Items: *items, Stores: *stores, Chunk: *chunk, Workers: *workers, OutDir: *out, CPUProfile: *cpuProfile, Progress: stderr,
			Command: strings.TrimSpace("inventory bench " + strings.Join(args, " "))}, stdout)
	}
	bc := bench.Config{
		Scenario: *scenario, Targets: strings.Split(*targets, ","), Workers: *workers, Duration: *duration,
		Stock: *stock, RedisURL: cfg.RedisURL, DatabaseURL: cfg.DatabaseURL, Partitions: cfg.Partitions,
		NoLedger: *noLedger, URL: *url, Token: *token, OutDir: *out, Progress: stderr,
		MaxOps: *maxOps, Qty: *qty, Stores: *stores, SKUs: *skus, ReservationTTL: *holdTTL,
		BulkItems: *items, BulkLines: *lines, BulkChunk: *chunk, PGConns: *pgConns, LedgerSchema: *ledgerSchema, Client: *client, Rate: *rate, RateFraction: *rateFraction, CPUProfile: *cpuProfile,
		Command: strings.TrimSpace("inventory bench " + strings.Join(args, " ")),
	}
	rep, err := bench.Run(ctx, bc)
	if err != nil {
		return err
	}
	if err := bench.WriteSummary(stdout, rep); err != nil {
		return err
	}
	if !rep.Passed {
		return errBenchFailed
	}
	fmt.Fprintf(stdout, "\nreport written to %s\n", *out)
	return nil
}

// runRecovery runs the recovery scenario and prints its table; an item
// that differs from the ledger fails the command.
func runRecovery(ctx context.Context, rc bench.RecoveryConfig, stdout *os.File) error {
	rep, err := bench.RunRecovery(ctx, rc)
	if err != nil {
		return err
	}
	if err := bench.WriteRecoveryTable(stdout, rep); err != nil {
		return err
	}
	if !rep.Passed {
		return errBenchFailed
	}
	return nil
}
