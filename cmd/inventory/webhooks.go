package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/shelfline/inventory/internal/admin"
	"github.com/shelfline/inventory/persist"
	"github.com/shelfline/inventory/webhook"
)

// registerWebhookRetention adds --webhook-delivery-retention to fs.
func registerWebhookRetention(fs *flagSet) *time.Duration {
	return fs.Duration("webhook-delivery-retention", "INVENTORY_WEBHOOK_DELIVERY_RETENTION", webhook.DefaultRetention,
		"how long a delivered or failed webhook delivery stays in the delivery log; the workers then delete it\n"+
			"(hourly; pending deliveries are never deleted); 0 keeps every delivery")
}

// webhookRetention is the dispatcher's Retention for the flag's value.
func webhookRetention(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// registerWebhookPrivate adds --webhook-allow-private to fs.
func registerWebhookPrivate(fs *flagSet) *bool {
	return fs.Bool("webhook-allow-private", "INVENTORY_WEBHOOK_ALLOW_PRIVATE", false,
		"let webhooks target loopback, private and link-local addresses (tests and single-host setups)")
}

func runWebhooks(ctx context.Context, args []string, _, stderr *os.File) error {
	var cfg config
	fs := newFlagSet("webhooks", "Run only the webhook delivery workers: read the partitions' event streams through the\n"+
		"\"webhooks\" consumer group, queue a delivery per subscription in PostgreSQL, and post them, signed, with retries.\n"+
		"Run several with different or overlapping --own sets; the consumer group and the delivery leases share the work.", stderr, os.Getenv)
	cfg.register(fs)
	own := fs.String("own", "INVENTORY_WEBHOOKS_OWN", "", "partitions whose events this worker reads, e.g. 0-7 or 0,2,4 (default all)")
	consumer := fs.String("consumer", "INVENTORY_WEBHOOKS_CONSUMER", "", "consumer name in the group (default <hostname>-<pid>)")
	allowPrivate := registerWebhookPrivate(fs)
	retention := registerWebhookRetention(fs)
	adminAddr := registerAdmin(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.ledgerOff() {
		return errNeedLedger
	}
	parts, err := parseParts(*own, cfg.Partitions)
	if err != nil {
		return fmt.Errorf("--own: %w", err)
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
	if err := persist.Migrate(ctx, d.pool); err != nil {
		return err
	}
	w, err := webhook.NewDispatcher(d.e, d.pool, webhook.Config{Partitions: parts, Consumer: *consumer,
		AllowPrivate: *allowPrivate, Retention: webhookRetention(*retention), Logger: log.Named("webhooks")})
	if err != nil {
		return err
	}
	reg := newRegistry()
	if err := admin.Register(reg, w.Collector(), admin.StreamCollector(d.e)); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var adminErr error
	checks := admin.Checks{Engine: d.e, Ledger: d.pool}
	if err := adm.serve(admin.Config{Registry: reg, Checks: checks, Build: ptr(build())}, log, func(err error) {
		adminErr = err
		cancel()
	}); err != nil {
		return err
	}
	go func() {
		<-runCtx.Done()
		adm.beginShutdown()
	}()
	log.Info("webhook workers started")
	err = w.Run(runCtx)
	if cerr := adm.close(); err == nil {
		err = cerr
	}
	if err == nil && adminErr != nil {
		err = adminErr
	}
	return err
}
