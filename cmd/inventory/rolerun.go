package main

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfline/inventory/internal/admin"
	"github.com/shelfline/inventory/persist"
)

// role is one long-running role that a command runs alone (persist, relay,
// webhooks): what runRole needs to start it.
type role struct {
	// started is the log line once it runs ("persister started").
	started string
	// ledger says it needs PostgreSQL: the command refuses a ledger that
	// is off, and applies pending migrations before build.
	ledger bool
	// build makes the role from the process's clients and the partitions
	// of --own (nil: all).
	build func(d *deps, parts []int) (*running, error)
}

// running is a role built by role.build.
type running struct {
	// run runs the role until its context ends.
	run func(context.Context) error
	// collectors are its metrics, besides the build info, the runtime's
	// and the streams' that every process serves.
	collectors []prometheus.Collector
	// checks are its /readyz checks; Engine and Ledger are filled in.
	checks admin.Checks
	// close, when set, releases it once run returned.
	close func()
}

// runRole is the start-up every one-role command shares, once its flags
// are parsed and checked: the partitions of own; the admin address, bound
// first so that a taken port stops the process before it connects to
// anything; the logger, traces and Redis and PostgreSQL clients (start);
// the migrations when the role needs the ledger; the role; its metrics
// and checks on the admin address, whose /readyz answers 503 as soon as
// ctx ends (the shutdown begins); then the role until ctx ends. It returns
// the role's error, else the admin server's.
func runRole(ctx context.Context, cfg *config, own, adminAddr string, r role) error {
	if r.ledger && cfg.ledgerOff() {
		return errNeedLedger
	}
	parts, err := parseParts(own, cfg.Partitions)
	if err != nil {
		return fmt.Errorf("--own: %w", err)
	}
	adm, err := listenAdmin(adminAddr)
	if err != nil {
		return err
	}
	defer adm.close() //nolint:errcheck // closed below; this is for the early returns
	d, stop, err := start(ctx, cfg)
	if err != nil {
		return err
	}
	defer stop()
	log := d.log
	if r.ledger {
		if err := persist.Migrate(ctx, d.pool); err != nil {
			return err
		}
	}
	w, err := r.build(d, parts)
	if err != nil {
		return err
	}
	if w.close != nil {
		defer w.close()
	}
	reg := newRegistry()
	if err := admin.Register(reg, append(w.collectors, admin.StreamCollector(d.e))...); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var adminErr error
	checks := w.checks
	checks.Engine = d.e
	if d.pool != nil {
		checks.Ledger = d.pool
	}
	if err := adm.serve(admin.Config{Registry: reg, Checks: checks, Build: ptr(build())}, log, func(err error) {
		adminErr = err
		cancel()
	}); err != nil {
		return err
	}
	// /readyz answers 503 as soon as the shutdown begins.
	go func() {
		<-runCtx.Done()
		adm.beginShutdown()
	}()
	log.Info(r.started)
	err = w.run(runCtx)
	if cerr := adm.close(); err == nil {
		err = cerr
	}
	if err == nil && adminErr != nil {
		err = adminErr
	}
	return err
}
