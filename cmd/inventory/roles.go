package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfline/inventory/internal/admin"
	"github.com/shelfline/inventory/persist"
	"github.com/shelfline/inventory/webhook"
)

// registerDownstreamMaxLag adds --downstream-max-lag to fs.
func registerDownstreamMaxLag(fs *flagSet) *time.Duration {
	return fs.Duration("downstream-max-lag", "INVENTORY_DOWNSTREAM_MAX_LAG", persist.DefaultDownstreamMaxLag,
		"the persister trims no stream entry the webhooks or relay consumer group has not acknowledged, unless the\n"+
			"group's oldest unacknowledged entry is older than this: then the group stops holding the trimming (logged,\n"+
			"counted in inventory_persister_downstream_releases_total) until it catches up; 0 waits without bound")
}

// downstreamMaxLag is the persister's DownstreamMaxLag for the flag's value.
func downstreamMaxLag(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

var errNeedLedger = errors.New("this command needs the ledger: INVENTORY_DATABASE_URL is off")

// parseParts parses "0,1,5-7" into partitions; empty means all.
func parseParts(s string, n int) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(f), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("partition %q", f)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("partition range %q", f)
			}
		}
		if a < 0 || b >= n || a > b {
			return nil, fmt.Errorf("partitions %q outside 0..%d", f, n-1)
		}
		for p := a; p <= b; p++ {
			out = append(out, p)
		}
	}
	return out, nil
}

func runPersist(ctx context.Context, args []string, _, stderr *os.File) error {
	var cfg config
	fs := newFlagSet("persist", "Run only the persister: drain the partitions' event streams into the PostgreSQL ledger.\n"+
		"Run several with different or overlapping --own sets; a consumer group shares the work.", stderr, os.Getenv)
	cfg.register(fs)
	own := fs.String("own", "INVENTORY_PERSIST_OWN", "", "partitions this worker drains, e.g. 0-7 or 0,2,4 (default all)")
	consumer := fs.String("consumer", "INVENTORY_PERSIST_CONSUMER", "", "consumer name in the group (default <hostname>-<pid>)")
	maxLag := registerDownstreamMaxLag(fs)
	adminAddr := registerAdmin(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	return runRole(ctx, &cfg, *own, *adminAddr, role{started: "persister started", ledger: true,
		build: func(d *deps, parts []int) (*running, error) {
			p, err := persist.NewPersister(d.e, d.pool, persist.PersisterConfig{Partitions: parts, Consumer: *consumer,
				DownstreamMaxLag: downstreamMaxLag(*maxLag), Logger: d.log.Named("persister")})
			if err != nil {
				return nil, err
			}
			stats := persisterStats(p)
			return &running{run: p.Run, collectors: []prometheus.Collector{admin.PersisterCollector(stats)},
				checks: admin.Checks{Persister: stats}}, nil
		}})
}

func runReconcile(ctx context.Context, args []string, stdout, stderr *os.File) error {
	var cfg config
	fs := newFlagSet("reconcile", "Compare Redis with the ledger once and print the report as JSON.\n"+
		"check only reports; repair also fixes. Exit status 3 when check mode found drift.", stderr, os.Getenv)
	cfg.register(fs)
	mode := fs.String("mode", "INVENTORY_RECONCILE_MODE", "check", "check or repair")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	m, err := persist.ParseMode(*mode)
	if err != nil {
		return fmt.Errorf("--mode: %w", err)
	}
	if cfg.ledgerOff() {
		return errNeedLedger
	}
	d, stop, err := start(ctx, &cfg)
	if err != nil {
		return err
	}
	defer stop()
	log := d.log
	// Repairs announce their crossings to the webhooks (the store only
	// reads subscriptions and writes deliveries: no target is checked).
	r, err := persist.NewReconciler(d.e, d.pool, persist.ReconcilerConfig{Logger: log.Named("reconciler"),
		Repaired: webhook.NewStore(d.pool, webhook.StoreConfig{}).Enqueue})
	if err != nil {
		return err
	}
	rep, err := r.Reconcile(ctx, m)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return err
	}
	if m == persist.ModeCheck && len(rep.Findings) > 0 {
		return errDrift
	}
	return nil
}

var errDrift = errors.New("drift found (run with --mode repair to fix it)")

func runMigrate(ctx context.Context, args []string, stdout, stderr *os.File) error {
	var cfg config
	fs := newFlagSet("migrate", "Apply pending PostgreSQL schema migrations (safe to run concurrently).", stderr, os.Getenv)
	cfg.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if cfg.ledgerOff() {
		return errNeedLedger
	}
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	pool, err := openPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := persist.Migrate(ctx, pool); err != nil {
		return err
	}
	st, err := persist.MigrationStatus(ctx, pool)
	if err == nil {
		applied := 0
		for _, s := range st {
			if s.Applied {
				applied++
			}
		}
		fmt.Fprintf(stdout, "migrations: %d of %d applied\n", applied, len(st))
	}
	return nil
}
