package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/shelfline/inventory/bench"
)

// benchCommand runs `inventory bench`: a scenario against one or more
// targets in one run, with live progress on stderr, the summary table on
// stdout, and JSON, SVG and text files in --out. It fails when a target
// could not run or broke an invariant, whatever its speed.
func benchCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("inventory bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg     bench.Config
		targets string
	)
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&cfg.Scenario, "scenario", bench.ScenarioFlashSale, "flash-sale, mixed or bulk")
	fs.StringVar(&targets, "target", "engine,pg-guarded,pg-optimistic,bare",
		"comma-separated targets, run one after another: engine, http, pg-guarded, pg-optimistic, bare, redis-benchmark")
	fs.IntVar(&cfg.Workers, "buyers", 0, "concurrent clients: buyers, tills or importers (default 200; 8 for bulk)")
	fs.IntVar(&cfg.Workers, "workers", 0, "same as --buyers")
	fs.Int64Var(&cfg.Stock, "stock", 20000, "flash-sale: units of the hot SKU")
	fs.Int64Var(&cfg.Qty, "qty", 1, "flash-sale: units per checkout")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "bound on each target's load")
	fs.Int64Var(&cfg.MaxOps, "max-ops", 0, "bound on each target's operations (default 4×stock+buyers for flash-sale, 10M otherwise)")
	fs.IntVar(&cfg.Stores, "stores", 30, "mixed, bulk: stores")
	fs.IntVar(&cfg.SKUs, "skus", 2000, "mixed: SKUs per store")
	fs.DurationVar(&cfg.ReservationTTL, "hold-ttl", 0, "mixed: TTL of the holds left to expire (default 2s)")
	fs.IntVar(&cfg.BulkItems, "items", 20000, "bulk: items imported")
	fs.IntVar(&cfg.BulkLines, "lines", 200000, "bulk: adjustment lines")
	fs.IntVar(&cfg.BulkChunk, "chunk", 1000, "bulk: lines per request (at most 1000)")
	fs.StringVar(&cfg.RedisURL, "redis-url", env("INVENTORY_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis of the engine, bare and redis-benchmark targets ($INVENTORY_REDIS_URL)")
	fs.StringVar(&cfg.DatabaseURL, "database-url", env("INVENTORY_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"PostgreSQL of the baselines and the engine's ledger; each makes its own schema and drops it ($INVENTORY_DATABASE_URL)")
	fs.IntVar(&cfg.Partitions, "partitions", 16, "engine: partitions")
	fs.BoolVar(&cfg.NoLedger, "no-ledger", false, "engine: run without the persister and skip the ledger checks")
	fs.IntVar(&cfg.PGConns, "pg-conns", 32, "baselines: PostgreSQL pool size")
	fs.StringVar(&cfg.URL, "url", "", "http: base URL of a running server, e.g. http://127.0.0.1:8080")
	fs.StringVar(&cfg.Token, "token", os.Getenv("INVENTORY_BENCH_TOKEN"), "http: bearer token with admin role ($INVENTORY_BENCH_TOKEN)")
	fs.StringVar(&cfg.LedgerSchema, "ledger-schema", "", "http: PostgreSQL schema of the server's ledger on --database-url, to check it too")
	fs.StringVar(&cfg.OutDir, "out", "bench/results", "directory for the JSON, SVG and text results")
	quiet := fs.Bool("quiet", false, "no live progress on stderr")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: inventory bench [flags]

Runs a load scenario against each target in turn on this machine, checks the
invariants after each (nothing oversold, successes equal units sold, the
ledger gap-free and conserved), and prints a table of throughput, latency
percentiles and ratios to the baselines measured in the same run.

Example:
  inventory bench --scenario flash-sale --target engine,pg-guarded,pg-optimistic,bare,redis-benchmark \
      --buyers 200 --stock 20000 --duration 20s --out bench/results
  inventory bench --scenario mixed --target http --url http://127.0.0.1:8080 --token $TOKEN

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("bench: unexpected arguments %q", fs.Args())
	}
	for _, t := range strings.Split(targets, ",") {
		if t = strings.TrimSpace(t); t != "" {
			cfg.Targets = append(cfg.Targets, t)
		}
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	r, err := bench.Run(ctx, cfg)
	if r != nil {
		if werr := bench.WriteSummary(stdout, r); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if !r.Passed {
		return errors.New("bench: FAILED: a target broke an invariant or could not run; see above")
	}
	return nil
}
