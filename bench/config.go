package bench

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Scenario names.
const (
	ScenarioFlashSale = "flash-sale"
	ScenarioMixed     = "mixed"
	ScenarioBulk      = "bulk"
)

// Target names.
const (
	TargetEngine         = "engine"
	TargetHTTP           = "http"
	TargetServer         = "server"
	TargetPGOptimistic   = "pg-optimistic"
	TargetPGGuarded      = "pg-guarded"
	TargetBare           = "bare"
	TargetRedisBenchmark = "redis-benchmark"
)

// Baselines are the targets every other target's throughput is compared to.
var Baselines = []string{TargetPGGuarded, TargetPGOptimistic, TargetBare, TargetRedisBenchmark}

// scenarioTargets lists which targets can run which scenario.
var scenarioTargets = map[string][]string{
	ScenarioFlashSale: {TargetEngine, TargetServer, TargetHTTP, TargetPGOptimistic, TargetPGGuarded, TargetBare, TargetRedisBenchmark},
	ScenarioMixed:     {TargetEngine, TargetServer, TargetHTTP, TargetPGOptimistic, TargetPGGuarded},
	ScenarioBulk:      {TargetEngine, TargetServer, TargetHTTP, TargetPGOptimistic, TargetPGGuarded},
}

// Config configures a run. The zero value of every field but Scenario and
// Targets selects its documented default.
type Config struct {
	// Scenario is flash-sale, mixed or bulk. Required.
	Scenario string
	// Targets run one after another, in this order. Required.
	Targets []string

	// Workers is the number of concurrent clients (buyers in a flash sale,
	// tills in the mixed scenario, importers in bulk). Defaults to 200 for
	// flash-sale and mixed, 8 for bulk.
	Workers int
	// Duration bounds each target's load. Defaults to 20s.
	Duration time.Duration
	// MaxOps bounds each target's operations. Defaults to 4×Stock+Workers
	// for flash-sale, 10,000,000 otherwise.
	MaxOps int64

	// Rate, when positive, paces each target's load at Rate operations per
	// second in all (open loop), to measure latency at a given load rather
	// than at saturation. Defaults to 0: every worker goes as fast as it can.
	Rate float64

	// RateFraction, when positive, runs every target a second time, paced
	// at this fraction of the operations per second its full-speed run
	// reached, reported as "<target>@<percent>%": latency at a given share
	// of peak (say 0.5) rather than at saturation. Must be below 1.
	RateFraction float64

	// Stock is the hot SKU's units in a flash sale. Defaults to 20000.
	Stock int64
	// Qty is the units one buyer takes per checkout. Defaults to 1.
	Qty int64

	// Stores and SKUs size the mixed scenario's chain: Stores stores of SKUs
	// items each. Default to 30 and 2000.
	Stores, SKUs int
	// ReservationTTL is the hold time of the mixed scenario's reservations
	// that are left to expire. Defaults to 2s.
	ReservationTTL time.Duration

	// BulkItems is the number of items of a bulk import and BulkLines the
	// number of adjustment lines sent, in chunks of BulkChunk lines.
	// Default to 20000, 200000 and 1000.
	BulkItems, BulkLines, BulkChunk int

	// RedisURL is the Redis the engine, bare and redis-benchmark targets use.
	// Defaults to redis://127.0.0.1:6379/0.
	RedisURL string
	// DatabaseURL is the PostgreSQL of the baselines and of the engine's
	// ledger. Defaults to postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
	DatabaseURL string
	// Partitions is the engine target's partition count. Defaults to 16.
	Partitions int
	// NoLedger runs the engine target without the persister (and so without
	// the ledger checks).
	NoLedger bool
	// PGConns is the baselines' connection pool size. Defaults to 32.
	PGConns int

	// URL and Token address the http target's server.
	URL, Token string
	// LedgerSchema, when set, is the PostgreSQL schema (on DatabaseURL) of
	// the http target's server's ledger, so the checker verifies it too.
	LedgerSchema string

	// Client is the load client of the HTTP targets (server, bare, http) in
	// a flash sale: builtin (ours, the default) or wrk (Debian's wrk, two
	// threads, Workers connections, for the whole Duration).
	Client string

	// CPUProfile, when true, writes a CPU profile of the bench process
	// (load client and any in-process target: engine, server, bare) during
	// each target's load to OutDir, for `go tool pprof`.
	CPUProfile bool

	// Command is the command line that started the run, recorded in the
	// report so it can be reproduced. Optional.
	Command string

	// OutDir receives the JSON file and the SVG plot. Defaults to
	// "bench/results".
	OutDir string
	// Progress receives a line per target per second while it runs.
	// Defaults to io.Discard.
	Progress io.Writer
	// Logger receives the engine's and persister's logs. Defaults to
	// zap.NewNop().
	Logger *zap.Logger
	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	c.Targets = append([]string(nil), c.Targets...)
	if c.Workers == 0 {
		c.Workers = 200
		if c.Scenario == ScenarioBulk {
			c.Workers = 8
		}
	}
	if c.Duration == 0 {
		c.Duration = 20 * time.Second
	}
	if c.Stock == 0 {
		c.Stock = 20000
	}
	if c.Qty == 0 {
		c.Qty = 1
	}
	if c.MaxOps == 0 {
		c.MaxOps = 10_000_000
		if c.Scenario == ScenarioFlashSale {
			c.MaxOps = 4*c.Stock + int64(c.Workers)
		}
	}
	if c.Stores == 0 {
		c.Stores = 30
	}
	if c.SKUs == 0 {
		c.SKUs = 2000
	}
	if c.ReservationTTL == 0 {
		c.ReservationTTL = 2 * time.Second
	}
	if c.BulkItems == 0 {
		c.BulkItems = 20000
	}
	if c.BulkLines == 0 {
		c.BulkLines = 200000
	}
	if c.BulkChunk == 0 {
		c.BulkChunk = 1000
	}
	if c.RedisURL == "" {
		c.RedisURL = "redis://127.0.0.1:6379/0"
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	if c.Partitions == 0 {
		c.Partitions = 16
	}
	if c.PGConns == 0 {
		c.PGConns = 32
	}
	if c.Client == "" {
		c.Client = ClientBuiltin
	}
	if c.OutDir == "" {
		c.OutDir = "bench/results"
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	allowed, ok := scenarioTargets[c.Scenario]
	if !ok {
		return fmt.Errorf("bench config: Scenario must be flash-sale, mixed or bulk, got %q", c.Scenario)
	}
	if len(c.Targets) == 0 {
		return fmt.Errorf("bench config: Targets: name at least one of %s", strings.Join(allowed, ", "))
	}
	seen := map[string]bool{}
	for _, t := range c.Targets {
		if seen[t] {
			return fmt.Errorf("bench config: Targets: %s named twice", t)
		}
		seen[t] = true
		if !contains(allowed, t) {
			return fmt.Errorf("bench config: Targets: %q cannot run %s (it can: %s)", t, c.Scenario, strings.Join(allowed, ", "))
		}
	}
	switch {
	case c.Workers < 1 || c.Workers > 10000:
		return fmt.Errorf("bench config: Workers must be 1..10000, got %d", c.Workers)
	case c.Duration < 100*time.Millisecond || c.Duration > time.Hour:
		return fmt.Errorf("bench config: Duration must be 100ms..1h, got %s", c.Duration)
	case c.Rate < 0 || c.Rate > 10_000_000:
		return fmt.Errorf("bench config: Rate must be 0..10000000, got %g", c.Rate)
	case c.RateFraction < 0 || c.RateFraction >= 1:
		return fmt.Errorf("bench config: RateFraction must be 0..1 (exclusive), got %g", c.RateFraction)
	case c.RateFraction > 0 && c.Rate > 0:
		return fmt.Errorf("bench config: set Rate or RateFraction, not both")
	case c.MaxOps < 1:
		return fmt.Errorf("bench config: MaxOps must be positive, got %d", c.MaxOps)
	case c.Stock < 1 || c.Stock > 1_000_000_000:
		return fmt.Errorf("bench config: Stock must be 1..1000000000, got %d", c.Stock)
	case c.Qty < 1 || c.Qty > c.Stock:
		return fmt.Errorf("bench config: Qty must be 1..Stock, got %d", c.Qty)
	case c.Stores < 1 || c.Stores > 1000:
		return fmt.Errorf("bench config: Stores must be 1..1000, got %d", c.Stores)
	case c.SKUs < 1 || c.SKUs > 1_000_000:
		return fmt.Errorf("bench config: SKUs must be 1..1000000, got %d", c.SKUs)
	case c.ReservationTTL < time.Second || c.ReservationTTL%time.Second != 0:
		return fmt.Errorf("bench config: ReservationTTL must be a whole number of seconds, at least 1s, got %s", c.ReservationTTL)
	case c.BulkItems < 1 || c.BulkLines < 1:
		return fmt.Errorf("bench config: BulkItems and BulkLines must be positive, got %d and %d", c.BulkItems, c.BulkLines)
	case c.BulkChunk < 1 || c.BulkChunk > 1000:
		return fmt.Errorf("bench config: BulkChunk must be 1..1000, got %d", c.BulkChunk)
	case c.Partitions < 1 || c.Partitions > 16384:
		return fmt.Errorf("bench config: Partitions must be 1..16384, got %d", c.Partitions)
	case c.PGConns < 1 || c.PGConns > 1000:
		return fmt.Errorf("bench config: PGConns must be 1..1000, got %d", c.PGConns)
	}
	if c.Client != ClientBuiltin && c.Client != ClientWrk {
		return fmt.Errorf("bench config: Client must be builtin or wrk, got %q", c.Client)
	}
	if c.Client == ClientWrk && c.Scenario != ScenarioFlashSale {
		return fmt.Errorf("bench config: Client wrk drives the flash-sale scenario only")
	}
	if c.Client == ClientWrk && (c.Rate > 0 || c.RateFraction > 0) {
		return fmt.Errorf("bench config: Client wrk cannot pace a load (Rate)")
	}
	if contains(c.Targets, TargetHTTP) {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("bench config: URL must be an http(s) URL for the http target, got %q", c.URL)
		}
		if c.Token == "" {
			return fmt.Errorf("bench config: Token is required for the http target")
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
