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
		"pg-optimistic, pg-guarded, bare, redis-benchmark.", stderr)
	cfg.register(fs, os.Getenv)
	scenario := fs.String("scenario", bench.ScenarioFlashSale, "flash-sale, mixed or bulk")
	targets := fs.String("targets", "engine,pg-guarded,pg-optimistic", "comma-separated targets, run in this order")
	fs.Var(aliasOf(fs, "targets"), "target", "same as --targets")
	workers := fs.Int("workers", 0, "concurrent clients: buyers, tills or importers (default 200; 8 for bulk)")
	fs.Var(aliasOf(fs, "workers"), "buyers", "same as --workers")
	duration := fs.Duration("duration", 20*time.Second, "load duration per target")
	rateFraction := fs.Float64("rate-fraction", 0, "also run each target paced at this fraction of the ops/s it reached, e.g. 0.5 for latency at half of peak")
	rate := fs.Float64("rate", 0, "pace each target at this many operations per second in all, latency counted from when each was due (0: as fast as the workers go)")
	maxOps := fs.Int64("max-ops", 0, "bound on each target's operations (default 4×stock+workers for flash-sale, 10M otherwise)")
	stock := fs.Int64("stock", 0, "flash-sale stock of the hot SKU (default 20000)")
	qty := fs.Int64("qty", 0, "flash-sale units per checkout (default 1)")
	stores := fs.Int("stores", 0, "mixed and bulk: stores (default 30)")
	skus := fs.Int("skus", 0, "mixed: SKUs per store (default 2000)")
	holdTTL := fs.Duration("hold-ttl", 0, "mixed: TTL of the holds left to expire (default 2s)")
	items := fs.Int("items", 0, "bulk: items imported (default 20000)")
	lines := fs.Int("lines", 0, "bulk: adjustment lines (default 200000)")
	chunk := fs.Int("chunk", 0, "bulk: lines per request, at most 1000 (default 1000)")
	pgConns := fs.Int("pg-conns", 0, "baselines: PostgreSQL pool size (default 32)")
	client := fs.String("client", bench.ClientBuiltin, "flash-sale load client of the HTTP targets (server, bare, http): builtin or wrk")
	url := fs.String("url", "", "base URL of a running server, for the http target")
	token := fs.String("token", "", "admin token of that server")
	ledgerSchema := fs.String("ledger-schema", "", "http: the server's ledger schema on --database-url, so the checker verifies it too")
	out := fs.String("out", "bench/results", "directory for the JSON report and the SVG plot")
	noLedger := fs.Bool("no-ledger", false, "run the engine target without the persister")
	cpuProfile := fs.Bool("cpuprofile", false, "write a CPU profile of this process during each target's load to --out (go tool pprof)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.embedded() || cfg.ledgerOff() {
		return errors.New("bench needs a real Redis and PostgreSQL (not embedded, not off)")
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

// aliasOf returns a flag.Value that sets the flag named name, so a second
// spelling (--target, --buyers) works like the first.
func aliasOf(fs *flag.FlagSet, name string) flag.Value {
	return alias{fs: fs, name: name}
}

type alias struct {
	fs   *flag.FlagSet
	name string
}

func (a alias) String() string {
	if a.fs == nil {
		return ""
	}
	return a.fs.Lookup(a.name).Value.String()
}

func (a alias) Set(v string) error { return a.fs.Set(a.name, v) }
