package relay

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descProduced = prometheus.NewDesc("inventory_relay_records_total", "Events the Kafka broker acknowledged.", nil, nil)
	descErrors   = prometheus.NewDesc("inventory_relay_errors_total", "Failed produce attempts (each batch is tried again).", nil, nil)
	descUnparsed = prometheus.NewDesc("inventory_relay_unparsed_events_total", "Stream entries that did not parse, acknowledged without a record.", nil, nil)
	descLag      = prometheus.NewDesc("inventory_relay_lag_events",
		"Events of the partition's stream not yet acknowledged by the broker: the relay's lag.", []string{"partition"}, nil)
)

// Collector exports the relay's counters and, read at scrape time, its lag
// per partition.
func (r *Relay) Collector() prometheus.Collector { return collector{r} }

type collector struct{ r *Relay }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descProduced, descErrors, descUnparsed, descLag} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.r.Stats()
	ch <- prometheus.MustNewConstMetric(descProduced, prometheus.CounterValue, float64(s.Produced))
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(s.Errors))
	ch <- prometheus.MustNewConstMetric(descUnparsed, prometheus.CounterValue, float64(s.Unparsed))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if lag, err := c.r.Lag(ctx); err == nil {
		for p, n := range lag {
			ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(n), strconv.Itoa(p))
		}
	}
}
