package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/httpapi"
	"github.com/shelfline/inventory/internal/admin"
	"github.com/shelfline/inventory/persist"
	"github.com/shelfline/inventory/webhook"
)

// reconcilerAdapter serves httpapi's Reconciler with the persist one.
type reconcilerAdapter struct{ r *persist.Reconciler }

func (a reconcilerAdapter) Reconcile(ctx context.Context, mode string) (any, error) {
	m, err := persist.ParseMode(mode)
	if err != nil {
		return nil, err
	}
	return a.r.Reconcile(ctx, m)
}

// CancelRun asks the run to stop (persist.Reconciler.RequestCancel).
func (a reconcilerAdapter) CancelRun(ctx context.Context, run int64) (any, error) {
	return a.r.RequestCancel(ctx, run)
}

func randomToken() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// prepare makes the partitions writable: without a ledger by marking them
// ready (there is nothing to rebuild from); with one, by applying pending
// migrations.
func prepare(ctx context.Context, cfg *config, d *deps, migrate bool) error {
	if d.pool == nil {
		d.log.Warn("LEDGER OFF (INVENTORY_DATABASE_URL=off): no PostgreSQL ledger, no history, no reconciliation, " +
			"no rebuild after a Redis loss; stock lives in Redis alone")
		return d.e.Init(ctx)
	}
	if migrate {
		if err := persist.Migrate(ctx, d.pool); err != nil {
			return err
		}
	}
	return nil
}

func runServe(ctx context.Context, args []string, stdout, stderr *os.File) error {
	var cfg config
	fs := newFlagSet("serve", "Run the HTTP API together with the persister, the reconciler, the rebuilder, the\n"+
		"reservation sweeper and the webhook workers. Each role can be switched off, so API pods and workers can scale apart.", stderr, os.Getenv)
	cfg.register(fs)
	cfg.registerAPI(fs)
	api := fs.Bool("api", "INVENTORY_API", true, "serve the HTTP API on --addr")
	persister := fs.Bool("persister", "INVENTORY_PERSISTER", true, "run the persister (needs the ledger)")
	maxLag := registerDownstreamMaxLag(fs)
	reconciler := fs.Bool("reconciler", "INVENTORY_RECONCILER", true, "run periodic reconciliation in repair mode (needs the ledger)")
	reconcileEvery := fs.Duration("reconcile-interval", "INVENTORY_RECONCILE_INTERVAL", 5*time.Minute, "time between periodic reconciliations")
	rebuilder := fs.Bool("rebuilder", "INVENTORY_REBUILDER", true, "rebuild partitions whose readiness marker is missing from the ledger")
	sweeper := fs.Bool("sweeper", "INVENTORY_SWEEPER", true, "expire due reservations")
	transferWorker := fs.Bool("transfer-worker", "INVENTORY_TRANSFER_WORKER", true, "finish the steps of transfers left undone by a crash, a lost reply or a failover")
	transferRetention := fs.Duration("transfer-retention", "INVENTORY_TRANSFER_RETENTION", engine.DefaultTransferRetention,
		"how long a received or cancelled transfer stays in Redis before the transfer worker deletes it\n"+
			"(reads then come from the ledger); 0 keeps them in Redis for good")
	webhooks := fs.Bool("webhooks", "INVENTORY_WEBHOOKS", true, "run the webhook delivery workers (needs the ledger)")
	allowPrivate := registerWebhookPrivate(fs)
	retention := registerWebhookRetention(fs)
	migrate := fs.Bool("migrate", "INVENTORY_MIGRATE", true, "apply pending migrations at start")
	rate := fs.Float64("rate-limit", "INVENTORY_RATE_LIMIT", 0, "default request rate limit, requests per second, of each token without its own rate= in\n"+
		"INVENTORY_API_KEYS (token bucket; beyond it 429 with Retry-After); 0 or negative: none, so one token may go at full speed")
	burst := fs.Int("rate-burst", "INVENTORY_RATE_BURST", 0, "bucket size of the --rate-limit default (0: twice the rate)")
	maxInFlight := fs.Int("max-in-flight", "INVENTORY_MAX_IN_FLIGHT", 4096, "requests served at once; beyond, 503 with Retry-After (this is what sheds overload)")
	maxFeeds := fs.Int("max-feeds", "INVENTORY_MAX_FEEDS", 512, "open event feeds (SSE and WebSocket) at once; beyond, 503 with Retry-After")
	maxFeedsPerToken := fs.Int("max-feeds-per-token", "INVENTORY_MAX_FEEDS_PER_TOKEN", 0, "open event feeds one token may hold; beyond, 429 with Retry-After (0: half of --max-feeds)")
	seedDemoChain := fs.Bool("seed-demo", "INVENTORY_SEED_DEMO", false, "load the demo chain at start when there are no stores yet (the way to seed the embedded Redis)")
	accessLog := fs.Bool("access-log", "INVENTORY_ACCESS_LOG", false, "log one line per HTTP request (method, route, status, duration, request id; never the token)")
	drainDelay := fs.Duration("drain-delay", "INVENTORY_DRAIN_DELAY", 0, "on SIGTERM, how long /readyz answers 503 while requests are still served, before the\n"+
		"drain: time for load balancers that probe /readyz to stop sending")
	adminAddr := registerAdmin(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	switch {
	case *transferRetention < 0 || (*transferRetention > 0 && *transferRetention < time.Second):
		return fmt.Errorf("--transfer-retention must be 0 (kept for good) or at least 1s")
	case *transferRetention == 0:
		cfg.TransferRetention = -1
	default:
		cfg.TransferRetention = *transferRetention
	}
	switch {
	case *burst < 0:
		return fmt.Errorf("--rate-burst must not be negative (0: twice the rate)")
	case *maxFeeds < 1:
		return fmt.Errorf("--max-feeds must be positive")
	case *maxFeedsPerToken < 0 || *maxFeedsPerToken > *maxFeeds:
		return fmt.Errorf("--max-feeds-per-token must be 0..--max-feeds (%d)", *maxFeeds)
	case *drainDelay < 0:
		return fmt.Errorf("--drain-delay must not be negative")
	}
	// A bad key is reported before anything connects.
	keys, err := httpapi.ParseKeys(cfg.APIKeys)
	if err != nil {
		return fmt.Errorf("INVENTORY_API_KEYS: %w", err)
	}
	adm, err := listenAdmin(*adminAddr)
	if err != nil {
		return err
	}
	defer adm.close() //nolint:errcheck // closed below; this is for the early returns
	d, stop, err := start(ctx, &cfg)
	if err != nil {
		return err
	}
	defer stop()
	log := d.log
	if err := prepare(ctx, &cfg, d, *migrate); err != nil {
		return err
	}
	e := d.e
	if *seedDemoChain {
		if err := seedIfEmpty(ctx, d, stdout); err != nil {
			return err
		}
	}

	if len(keys) == 0 && *api {
		tok := randomToken()
		keys = []httpapi.Key{{Token: tok, Role: httpapi.RoleAdmin}}
		fmt.Fprintf(stdout, "INVENTORY_API_KEYS is empty: generated an admin token for this run (shown once):\n\n    %s\n\n", tok)
	}

	// One registry for the process: the API's /metrics and the admin
	// address show the same.
	reg := newRegistry()
	shared := []prometheus.Collector{admin.StreamCollector(e), admin.TransferCollector(e)}
	checks := admin.Checks{Engine: e, Partitions: *api}
	hcfg := httpapi.Config{Engine: e, Keys: keys, Logger: log.Named("http"), Version: buildVersion(), Registry: reg,
		AccessLog: *accessLog, RatePerSecond: *rate, RateBurst: *burst, MaxInFlight: *maxInFlight,
		MaxStreams: *maxFeeds, MaxStreamsPerToken: *maxFeedsPerToken, Tracing: d.tracing}
	type worker struct {
		role string
		run  func(context.Context) error
	}
	var workers []worker
	if *sweeper {
		workers = append(workers, worker{"sweeper", engine.NewSweeper(e, engine.SweeperConfig{}).Run})
	}
	if *transferWorker {
		workers = append(workers, worker{"transfer-worker",
			engine.NewTransferWorker(e, engine.TransferWorkerConfig{Logger: log.Named("transfers")}).Run})
	}
	if d.pool != nil {
		ledger := persist.NewLedger(d.pool)
		hcfg.Ledger, hcfg.LowStock, hcfg.TransferLedger = ledger, ledger, ledger
		checks.Ledger = d.pool
		whStore := webhook.NewStore(d.pool, webhook.StoreConfig{AllowPrivate: *allowPrivate})
		hcfg.Webhooks = whStore
		rec, err := persist.NewReconciler(e, d.pool, persist.ReconcilerConfig{Interval: *reconcileEvery, Logger: log.Named("reconciler"),
			Repaired: whStore.Enqueue})
		if err != nil {
			return err
		}
		hcfg.Reconciler = reconcilerAdapter{rec}
		if *webhooks {
			w, err := webhook.NewDispatcher(e, d.pool, webhook.Config{AllowPrivate: *allowPrivate,
				Retention: webhookRetention(*retention), Logger: log.Named("webhooks")})
			if err != nil {
				return err
			}
			shared = append(shared, w.Collector())
			workers = append(workers, worker{"webhooks", w.Run})
		}
		// Runs on demand (POST /v1/admin/reconcile) count too.
		shared = append(shared, admin.ReconcilerCollector(reconcilerStats(rec)))
		rebuilds := []func() persist.RebuilderStats{func() persist.RebuilderStats { return rec.Stats().Rebuilds }}
		if *reconciler {
			workers = append(workers, worker{"reconciler", rec.Run})
		}
		if *persister {
			p, err := persist.NewPersister(e, d.pool, persist.PersisterConfig{DownstreamMaxLag: downstreamMaxLag(*maxLag), Logger: log.Named("persister")})
			if err != nil {
				return err
			}
			stats := persisterStats(p)
			hcfg.PersisterStats = func() httpapi.PersisterStats { return httpapi.PersisterStats(stats()) }
			checks.Persister = stats
			shared = append(shared, admin.PersisterCollector(stats))
			workers = append(workers, worker{"persister", p.Run})
		} else {
			log.Warn("persister off: events accumulate in Redis until a persister runs (writes are refused past the high watermark)")
		}
		if *rebuilder {
			rb, err := persist.NewRebuilder(e, d.pool, persist.RebuilderConfig{Logger: log.Named("rebuilder")})
			if err != nil {
				return err
			}
			rebuilds = append(rebuilds, rb.Stats)
			workers = append(workers, worker{"rebuilder", rb.Run})
		} else {
			log.Warn("rebuilder off: a partition without its readiness marker stays unavailable until a rebuilder runs")
		}
		rstats := rebuildStats(rebuilds...)
		shared = append(shared, admin.RebuildCollector(rstats))
		checks.Rebuild = rstats
		hcfg.Rebuild = rstats
		hcfg.Inbox = persist.NewInbox(e, d.pool)
		hcfg.Operations = persist.NewOperations(e, d.pool, persist.OperationsConfig{Rebuilds: sumRebuilds(rebuilds...)})
	}
	if err := admin.Register(reg, shared...); err != nil {
		return err
	}

	var srv *httpapi.Server
	if *api {
		if srv, err = httpapi.New(hcfg); err != nil {
			return err
		}
	}

	// Workers stop after the API has drained its requests, or at once when
	// a worker or the admin server fails.
	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	var adminErr error
	if err := adm.serve(admin.Config{Registry: reg, Checks: checks, Build: ptr(build())}, log, func(err error) {
		adminErr = err
		stopWork()
	}); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(workCtx)
	for _, w := range workers {
		g.Go(func() error {
			log.Info("started", zap.String(logRole, w.role))
			if err := w.run(gctx); err != nil {
				return fmt.Errorf("%s: %w", w.role, err)
			}
			log.Info("stopped", zap.String(logRole, w.role))
			return nil
		})
	}
	// A shutdown makes /readyz answer 503 at once, on the API and the
	// admin address, then (after --drain-delay) drains the API, then stops
	// the workers.
	apiCtx, stopAPI := context.WithCancel(context.Background())
	defer stopAPI()
	g.Go(func() error {
		signalled := false
		select {
		case <-ctx.Done():
			signalled = true
		case <-gctx.Done():
		}
		adm.beginShutdown()
		if srv != nil {
			srv.BeginShutdown()
		}
		log.Info("shutting down: /readyz answers 503", zap.Duration(logDrainDelay, *drainDelay))
		if signalled && srv != nil && *drainDelay > 0 {
			t := time.NewTimer(*drainDelay)
			select {
			case <-t.C:
			case <-gctx.Done():
				t.Stop()
			}
		}
		stopAPI()
		return nil
	})
	if srv != nil {
		g.Go(func() error {
			defer stopWork()
			log.Info("listening", zap.String(logAddr, "http://"+cfg.Addr))
			if err := srv.ListenAndServe(apiCtx, cfg.Addr); err != nil {
				return fmt.Errorf("http: %w", err)
			}
			log.Info("http server stopped")
			return nil
		})
	} else {
		g.Go(func() error {
			<-apiCtx.Done()
			stopWork()
			return nil
		})
	}
	err = g.Wait()
	if cerr := adm.close(); err == nil {
		err = cerr
	}
	if err == nil && adminErr != nil {
		err = adminErr
	}
	return err
}

func ptr[T any](v T) *T { return &v }
