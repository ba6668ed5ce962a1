package main

import (
	"context"
	"errors"
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
	workers := fs.Int("workers", 0, "concurrent clients (default per scenario)")
	duration := fs.Duration("duration", 20*time.Second, "load duration per target")
	stock := fs.Int64("stock", 0, "flash-sale stock of the hot SKU (default 20000)")
	url := fs.String("url", "", "base URL of a running server, for the http target")
	token := fs.String("token", "", "admin token of that server")
	out := fs.String("out", "bench/results", "directory for the JSON report and the SVG plot")
	noLedger := fs.Bool("no-ledger", false, "run the engine target without the persister")
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
