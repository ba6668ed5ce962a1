package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/shelfline/inventory/internal/admin"
	"github.com/shelfline/inventory/relay"
)

func runRelay(ctx context.Context, args []string, _, stderr *os.File) error {
	var cfg config
	fs := newFlagSet("relay", "Copy every event of the partitions' streams to a Kafka topic, at least once, keyed <store>/<sku>\n"+
		"(one item's events keep their order), with an idempotent producer; a stream entry is acknowledged only after\n"+
		"the broker acknowledged its record. Give each relay its own --own set of partitions.", stderr, os.Getenv)
	cfg.register(fs)
	brokers := fs.String("kafka-brokers", "INVENTORY_KAFKA_BROKERS", "", "Kafka seed brokers, host:port,… (required)")
	topic := fs.String("kafka-topic", "INVENTORY_KAFKA_TOPIC", relay.DefaultTopic, "Kafka topic the events go to")
	own := fs.String("own", "INVENTORY_RELAY_OWN", "", "partitions whose events this relay copies, e.g. 0-7 or 0,2,4 (default all)")
	consumer := fs.String("consumer", "INVENTORY_RELAY_CONSUMER", "", "consumer name in the group (default <hostname>-<pid>)")
	adminAddr := registerAdmin(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	var bs []string
	for _, b := range strings.Split(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			bs = append(bs, b)
		}
	}
	if len(bs) == 0 {
		return fmt.Errorf("INVENTORY_KAFKA_BROKERS / --kafka-brokers is required")
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
	r, err := relay.New(d.e, relay.Config{Brokers: bs, Topic: *topic, Partitions: parts, Consumer: *consumer, Logger: log.Named("relay")})
	if err != nil {
		return err
	}
	defer r.Close()
	reg := newRegistry()
	if err := admin.Register(reg, r.Collector(), admin.StreamCollector(d.e)); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var adminErr error
	checks := admin.Checks{Engine: d.e}
	if d.pool != nil {
		checks.Ledger = d.pool
	}
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
	log.Info("relay started")
	err = r.Run(runCtx)
	if cerr := adm.close(); err == nil {
		err = cerr
	}
	if err == nil && adminErr != nil {
		err = adminErr
	}
	return err
}
