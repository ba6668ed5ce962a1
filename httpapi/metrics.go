package httpapi

import (
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shelfline/inventory/internal/admin"
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
	for _, c := range []prometheus.Collector{m.requests, m.conflicts, m.replays, m.shed, m.scripts, m.feeds} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// The metrics a process shares with its admin address (stream lengths,
	// the persister), unless the caller registered them already on the same
	// registry.
	shared := []prometheus.Collector{admin.StreamCollector(s.e)}
	if f := s.persisterStats(); f != nil {
		shared = append(shared, admin.PersisterCollector(f))
	}
	if err := admin.Register(reg, shared...); err != nil {
		return nil, err
	}
	// Process and Go metrics, unless the caller registered them already.
	_ = admin.Register(reg, admin.RuntimeCollectors()...)
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
		s.noteRefusal(c, p)
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

// PersisterPartition is one partition's state in PersisterStats: its lag
// and whether the persister's writes of it keep failing.
type PersisterPartition = admin.PersisterPartition

// DownstreamReleases is one downstream group's releases in PersisterStats.
type DownstreamReleases = admin.DownstreamReleases

// persisterStats returns the persister's state as the admin package's
// collectors and checks take it, or nil when the server has none.
func (s *Server) persisterStats() func() admin.PersisterStats {
	if s.cfg.PersisterStats == nil {
		return nil
	}
	return func() admin.PersisterStats { return admin.PersisterStats(s.cfg.PersisterStats()) }
}
