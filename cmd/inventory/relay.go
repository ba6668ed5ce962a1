package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

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
	return runRole(ctx, &cfg, *own, *adminAddr, role{started: "relay started",
		build: func(d *deps, parts []int) (*running, error) {
			r, err := relay.New(d.e, relay.Config{Brokers: bs, Topic: *topic,
				Source: relay.Source{Partitions: parts, Consumer: *consumer}, Logger: d.log.Named("relay")})
			if err != nil {
				return nil, err
			}
			return &running{run: r.Run, collectors: []prometheus.Collector{r.Collector()}, close: r.Close}, nil
		}})
}
