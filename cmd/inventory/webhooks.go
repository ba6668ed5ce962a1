package main

import (
	"context"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	return runRole(ctx, &cfg, *own, *adminAddr, role{started: "webhook workers started", ledger: true,
		build: func(d *deps, parts []int) (*running, error) {
			w, err := webhook.NewDispatcher(d.e, d.pool, webhook.Config{Source: webhook.Source{Partitions: parts, Consumer: *consumer},
				AllowPrivate: *allowPrivate, Retention: webhookRetention(*retention), Logger: d.log.Named("webhooks")})
			if err != nil {
				return nil, err
			}
			return &running{run: w.Run, collectors: []prometheus.Collector{w.Collector()}}, nil
		}})
}
