package webhook

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// QueueStats is where the delivery queue stands, all endpoints together.
type QueueStats struct {
	// Pending counts the deliveries not made yet.
	Pending int64
	// Retrying counts the pending deliveries that failed at least once:
	// the retry queue.
	Retrying int64
	// OldestAge is the age of the oldest pending delivery; zero when none.
	OldestAge time.Duration
}

// Queue reads the delivery queue's state from PostgreSQL.
func (d *Dispatcher) Queue(ctx context.Context) (QueueStats, error) {
	var q QueueStats
	var age float64
	err := d.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE attempts > 0),
		COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
		FROM webhook_deliveries WHERE status = 'pending'`).Scan(&q.Pending, &q.Retrying, &age)
	if err != nil {
		return QueueStats{}, fmt.Errorf("delivery queue: %w", err)
	}
	q.OldestAge = time.Duration(age * float64(time.Second))
	return q, nil
}

// IntakeLag returns, per partition read, the stream entries the webhook
// group has not acknowledged yet (not yet turned into deliveries).
func (d *Dispatcher) IntakeLag(ctx context.Context) (map[int]int64, error) {
	out := make(map[int]int64, len(d.cfg.Partitions))
	for _, p := range d.cfg.Partitions {
		st, ok, err := d.e.GroupState(ctx, p, d.cfg.Group)
		if err != nil {
			return nil, err
		}
		if ok {
			out[p] = st.Unacked
		}
	}
	return out, nil
}

var (
	descDeliveries = prometheus.NewDesc("inventory_webhook_deliveries_total",
		"Webhook delivery attempts by endpoint (webhook id) and outcome: delivered, retry (to be tried again), failed (given up).",
		[]string{"webhook", "outcome"}, nil)
	descPending  = prometheus.NewDesc("inventory_webhook_pending_deliveries", "Webhook deliveries not made yet, all endpoints.", nil, nil)
	descRetrying = prometheus.NewDesc("inventory_webhook_retry_queue_length", "Pending webhook deliveries that failed at least once.", nil, nil)
	descOldest   = prometheus.NewDesc("inventory_webhook_oldest_undelivered_seconds",
		"Age of the oldest webhook delivery not made yet (0 when none).", nil, nil)
	descIntake = prometheus.NewDesc("inventory_webhook_intake_lag_events",
		"Events of the partition's stream the webhook workers have not read yet.", []string{"partition"}, nil)
	descUnparsed = prometheus.NewDesc("inventory_webhook_unparsed_events_total", "Stream entries that did not parse, acknowledged without a delivery.", nil, nil)
	descPruned   = prometheus.NewDesc("inventory_webhook_pruned_deliveries_total",
		"Delivered and failed webhook deliveries this worker deleted from the log past INVENTORY_WEBHOOK_DELIVERY_RETENTION.", nil, nil)
)

// Collector exports the dispatcher's metrics: its attempts by endpoint and
// outcome, and, read at scrape time, the queue (pending, retrying, oldest
// age) and each partition's intake lag.
func (d *Dispatcher) Collector() prometheus.Collector { return collector{d} }

type collector struct{ d *Dispatcher }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDeliveries, descPending, descRetrying, descOldest, descIntake, descUnparsed, descPruned} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.d.Stats()
	for id, m := range s.Attempts {
		for _, o := range []string{OutcomeDelivered, OutcomeRetry, OutcomeFailed} {
			ch <- prometheus.MustNewConstMetric(descDeliveries, prometheus.CounterValue, float64(m[o]), id, o)
		}
	}
	ch <- prometheus.MustNewConstMetric(descUnparsed, prometheus.CounterValue, float64(s.Unparsed))
	ch <- prometheus.MustNewConstMetric(descPruned, prometheus.CounterValue, float64(s.Pruned))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if q, err := c.d.Queue(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(q.Pending))
		ch <- prometheus.MustNewConstMetric(descRetrying, prometheus.GaugeValue, float64(q.Retrying))
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, q.OldestAge.Seconds())
	}
	if lag, err := c.d.IntakeLag(ctx); err == nil {
		for p, n := range lag {
			ch <- prometheus.MustNewConstMetric(descIntake, prometheus.GaugeValue, float64(n), strconv.Itoa(p))
		}
	}
}
