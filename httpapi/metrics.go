package httpapi

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.HistogramVec
	conflicts *prometheus.CounterVec
	replays   prometheus.Counter
	shed      *prometheus.CounterVec
	scripts   *prometheus.HistogramVec
	feeds     prometheus.GaugeFunc
}

func newMetrics(reg *prometheus.Registry, s *Server) (*metrics, error) {
	m := &metrics{
		reg: reg,
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "inventory_http_request_duration_seconds",
			Help:    "HTTP request latency by route, method and status.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method", "status"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inventory_conflicts_total",
			Help: "Requests refused for the state they met, by problem type (insufficient-stock, version-mismatch, purchase-limit, …).",
		}, []string{"type"}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inventory_idempotent_replays_total",
			Help: "Requests answered from an earlier response with the same Idempotency-Key.",
		}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inventory_http_shed_total",
			Help: "Requests refused by a limit: in_flight (503) or rate (429).",
		}, []string{"limit"}),
		scripts: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "inventory_redis_script_duration_seconds",
			Help:    "Latency of the engine's Lua script calls, by script.",
			Buckets: []float64{.0001, .00025, .0005, .001, .002, .005, .01, .025, .05, .1, .5},
		}, []string{"script"}),
	}
	m.feeds = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "inventory_event_feeds_open", Help: "Open SSE and WebSocket feeds.",
	}, func() float64 { return float64(s.streams.Load()) })
	cs := []prometheus.Collector{m.requests, m.conflicts, m.replays, m.shed, m.scripts, m.feeds,
		&streamCollector{s: s, desc: prometheus.NewDesc("inventory_stream_length", "Entries in each partition's event stream.", []string{"partition"}, nil)}}
	if s.cfg.PersisterStats != nil {
		cs = append(cs, &persisterCollector{f: s.cfg.PersisterStats})
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Process and Go metrics, unless the caller registered them already.
	_ = reg.Register(collectors.NewGoCollector())
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.e.ObserveScripts(func(script string, d time.Duration, _ error) {
		m.scripts.WithLabelValues(script).Observe(d.Seconds())
	})
	return m, nil
}

func (m *metrics) countProblem(p *Problem) {
	switch p.Status {
	case 409, 412, 422:
		m.conflicts.WithLabelValues(strings.TrimPrefix(p.Type, ProblemTypeBase)).Inc()
	}
}

// observe times every request and maps an error to its problem here, so
// the status is known when the latency is recorded.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		p := problemFor(err)
		s.m.countProblem(p)
		if herr := s.errorHandler(c, err); herr != nil {
			return herr
		}
	}
	route := c.Route().Path
	if c.Response().StatusCode() == fiber.StatusNotFound && route == "/" && c.Path() != "/" {
		route = "unmatched"
	}
	s.m.requests.WithLabelValues(route, utils.CopyString(c.Method()), strconv.Itoa(c.Response().StatusCode())).Observe(time.Since(start).Seconds())
	return nil
}

func (s *Server) metricsHandler() fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{}))
}

// streamCollector reports the length of every partition's stream at
// scrape time.
type streamCollector struct {
	s    *Server
	desc *prometheus.Desc
}

func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	lengths, _ := c.s.e.StreamLengths(ctx)
	for i, n := range lengths {
		if n >= 0 {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), strconv.Itoa(i))
		}
	}
}

// PersisterPartition is one partition's state in PersisterStats.
type PersisterPartition struct {
	// Partition is the partition's number.
	Partition int
	// Lag is the number of the partition's events not yet written to
	// PostgreSQL (pending in the persister's consumer group or never
	// delivered to it); negative while not measured yet.
	Lag int64
	// Failing is set when the persister's attempts to write the
	// partition's events have kept failing for longer than its threshold:
	// /readyz then shows the partition degraded (still 200).
	Failing bool
	// FailingSince is when those failures began; zero while there are none.
	FailingSince time.Time
	// LastSuccess is when the persister last wrote a batch of the partition
	// or found nothing left to write.
	LastSuccess time.Time
	// Error is the last failure's message.
	Error string
}

type persisterCollector struct {
	f func() PersisterStats
}

var (
	descLag       = prometheus.NewDesc("inventory_persister_lag_events", "Events not yet written to PostgreSQL, all partitions.", nil, nil)
	descPersisted = prometheus.NewDesc("inventory_persister_events_total", "Events written to PostgreSQL.", nil, nil)
	descBatches   = prometheus.NewDesc("inventory_persister_batches_total", "Batches written to PostgreSQL.", nil, nil)
	descDead      = prometheus.NewDesc("inventory_persister_dead_letters_total", "Events moved to the dead-letter stream: unparsable, or refused by PostgreSQL for their content.", nil, nil)
	descErrors    = prometheus.NewDesc("inventory_persister_errors_total", "Failed persister batches.", nil, nil)
	descBatchSize = prometheus.NewDesc("inventory_persister_last_batch_size", "Size of the last batch written.", nil, nil)
	descPartLag   = prometheus.NewDesc("inventory_persister_partition_lag_events",
		"Events of the partition not yet written to PostgreSQL: the persister group's pending entries plus those never delivered.", []string{"partition"}, nil)
	descFailing = prometheus.NewDesc("inventory_persister_failing",
		"1 while the persister's writes of the partition's events have kept failing past its threshold, else 0.", []string{"partition"}, nil)
	descSinceOK = prometheus.NewDesc("inventory_persister_seconds_since_success",
		"Seconds since the persister last wrote a batch of the partition or found nothing left to write.", []string{"partition"}, nil)
)

func (c *persisterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLag, descPersisted, descBatches, descDead, descErrors, descBatchSize,
		descPartLag, descFailing, descSinceOK} {
		ch <- d
	}
}

func (c *persisterCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.f()
	ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(st.Lag))
	ch <- prometheus.MustNewConstMetric(descPersisted, prometheus.CounterValue, float64(st.Persisted))
	ch <- prometheus.MustNewConstMetric(descBatches, prometheus.CounterValue, float64(st.Batches))
	ch <- prometheus.MustNewConstMetric(descDead, prometheus.CounterValue, float64(st.DeadLetters))
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(st.Errors))
	ch <- prometheus.MustNewConstMetric(descBatchSize, prometheus.GaugeValue, float64(st.LastBatchSize))
	now := time.Now()
	for _, p := range st.Partitions {
		part := strconv.Itoa(p.Partition)
		if p.Lag >= 0 {
			ch <- prometheus.MustNewConstMetric(descPartLag, prometheus.GaugeValue, float64(p.Lag), part)
		}
		failing := 0.0
		if p.Failing {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(descFailing, prometheus.GaugeValue, failing, part)
		if !p.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(descSinceOK, prometheus.GaugeValue, max(now.Sub(p.LastSuccess).Seconds(), 0), part)
		}
	}
}
