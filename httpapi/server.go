// Package httpapi serves the inventory's HTTP API (DESIGN §7) over Fiber:
// thin handlers that decode strictly, authorise, call one engine or ledger
// method and map its result or error to HTTP; bearer-token auth; idempotent
// replays; conditional requests; limits; the event feed over Server-Sent
// Events and WebSocket; health, readiness, metrics, the OpenAPI document and
// a small live dashboard.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/admin"
)

// Ledger is what the API needs of the PostgreSQL ledger.
type Ledger interface {
	// History returns up to limit events of one item, newest first.
	History(ctx context.Context, store, sku string, limit int) ([]engine.Event, error)
	// Ping checks that PostgreSQL answers.
	Ping(ctx context.Context) error
}

// Reconciler runs a reconciliation on demand. Mode is "check" or "repair";
// the report is sent as JSON.
type Reconciler interface {
	Reconcile(ctx context.Context, mode string) (any, error)
}

// Config configures a Server. The zero value of every field but Engine
// selects its documented default.
type Config struct {
	// Engine runs the stock operations. Required.
	Engine *engine.Engine
	// Keys are the accepted API keys. Required: at least one.
	Keys []Key
	// Ledger serves history and readiness of PostgreSQL; nil when the
	// ledger is off (history answers 503).
	Ledger Ledger
	// Reconciler serves POST /v1/admin/reconcile; nil: 503.
	Reconciler Reconciler
	// Webhooks serves /v1/webhooks (webhook.Store); nil: 503.
	Webhooks Webhooks
	// LowStock serves GET /v1/stores/{store}/low-stock (persist.Ledger);
	// nil when the ledger is off (503).
	LowStock LowStock
	// TransferLedger (persist.Ledger) answers reads of transfers Redis no
	// longer holds and lists every store's transfers; nil when the ledger is
	// off (Redis alone answers).
	TransferLedger TransferLedger
	// Inbox serves the conflict inbox (GET /v1/admin/findings, …);
	// Operations serves GET /v1/admin/operations. nil when the ledger is
	// off (503).
	Inbox      Inbox
	Operations Operations
	// Logger receives request errors and, with AccessLog, the access log;
	// every line of a request carries its id (request_id). Defaults to
	// zap.NewNop().
	Logger *zap.Logger
	// AccessLog, when true, writes one Info line per request to Logger
	// ("request": method, route, path, status, duration, bytes, principal
	// and request_id; never the token). Defaults to false.
	AccessLog bool
	// Registry receives the API's metrics. Defaults to a new registry.
	Registry *prometheus.Registry
	// BodyLimit is the largest accepted request body. Defaults to 1 MiB.
	BodyLimit int
	// ReadTimeout and WriteTimeout bound reading a request and writing a
	// response (streams extend their own write deadline). Default to 10s.
	ReadTimeout, WriteTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections. Defaults to 60s.
	IdleTimeout time.Duration
	// RequestTimeout bounds one request's work in Redis. Defaults to 5s.
	RequestTimeout time.Duration
	// MaxInFlight is the most requests served at once (streams aside);
	// beyond it the API answers 503 with Retry-After: this is what sheds
	// overload. Defaults to 2048.
	MaxInFlight int
	// MaxStreams is the most open SSE and WebSocket feeds; beyond it a new
	// feed is answered 503 with Retry-After. Defaults to 512.
	MaxStreams int
	// MaxStreamsPerToken is the most feeds one token may hold open, so that
	// one token cannot take every slot; beyond it a new feed of that token
	// is answered 429 with Retry-After. At most MaxStreams. Defaults to half
	// of MaxStreams, at least 1.
	MaxStreamsPerToken int
	// RatePerSecond and RateBurst are the request rate limit (token bucket)
	// of every key that has none of its own (Key.Rate); beyond it the API
	// answers 429 with Retry-After. RatePerSecond zero or negative, the
	// default, means no limit: one token may go at the engine's full speed,
	// and only MaxInFlight sheds load. RateBurst zero is twice the rate, at
	// least 1.
	RatePerSecond float64
	RateBurst     int
	// Heartbeat is the interval of the feeds' keep-alive comments.
	// Defaults to 15s.
	Heartbeat time.Duration
	// EventPoll is how often the server looks for new events for its
	// feeds (one pipeline for all of them). Defaults to 100ms.
	EventPoll time.Duration
	// Now returns the current time, for the rate limits. Defaults to
	// time.Now.
	Now func() time.Time
	// Version is reported by /healthz.
	Version string
	// PersisterStats, when set, is exported on /metrics.
	PersisterStats func() PersisterStats
	// Rebuild, when set, reports the process's rebuilds of partitions:
	// /readyz shows their progress while partitions are not ready.
	Rebuild func() admin.RebuildStats
	// Tracing, when true, gives every request but the probes (/healthz,
	// /readyz, /metrics) an OpenTelemetry server span named by its route,
	// with its request id (request_id), through the global tracer provider
	// and propagator (see internal/tracing). Defaults to false: no
	// middleware at all.
	Tracing bool
}

// PersisterStats is what /metrics shows of the persister.
type PersisterStats struct {
	// Lag is the number of events not yet written to PostgreSQL.
	Lag int64
	// Persisted, Batches, DeadLetters and Errors are running totals.
	Persisted, Batches, DeadLetters, Errors int64
	// LastBatchSize is the size of the last batch written.
	LastBatchSize int64
	// Partitions is each partition's lag and health, exported on /metrics;
	// a failing one shows on /readyz as degraded.
	Partitions []PersisterPartition
	// Downstream is, per downstream consumer group released from holding
	// the streams' trimming, its releases (exported on /metrics).
	Downstream map[string]DownstreamReleases
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.BodyLimit == 0 {
		c.BodyLimit = 1 << 20
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 2048
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = 512
	}
	if c.MaxStreamsPerToken == 0 {
		c.MaxStreamsPerToken = max(1, c.MaxStreams/2)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.EventPoll == 0 {
		c.EventPoll = 100 * time.Millisecond
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Engine == nil:
		return errors.New("httpapi config: Engine is required")
	case len(c.Keys) == 0:
		return errors.New("httpapi config: Keys must hold at least one API key")
	case c.BodyLimit < 1:
		return errors.New("httpapi config: BodyLimit must be positive")
	case c.MaxInFlight < 1:
		return errors.New("httpapi config: MaxInFlight must be positive")
	case c.MaxStreams < 1:
		return errors.New("httpapi config: MaxStreams must be positive")
	case c.MaxStreamsPerToken < 1 || c.MaxStreamsPerToken > c.MaxStreams:
		return fmt.Errorf("httpapi config: MaxStreamsPerToken must be 1..MaxStreams (%d)", c.MaxStreams)
	case math.IsNaN(c.RatePerSecond) || math.IsInf(c.RatePerSecond, 0):
		return errors.New("httpapi config: RatePerSecond must be a number")
	case c.RateBurst < 0:
		return errors.New("httpapi config: RateBurst must not be negative")
	}
	for _, k := range c.Keys {
		if math.IsNaN(k.Rate) || math.IsInf(k.Rate, 0) || k.Burst < 0 {
			return fmt.Errorf("httpapi config: Keys: key %s has an invalid Rate or Burst", k.Principal())
		}
	}
	return nil
}

// Server is the HTTP API. Construct it with New; run it with Serve or
// ListenAndServe.
type Server struct {
	cfg     Config
	e       *engine.Engine
	log     *zap.Logger
	app     *fiber.App
	keys    *keyring
	m       *metrics
	limiter *rateLimiter
	slots   *feedSlots
	notify  *notifier
	refused *refusals

	inFlight atomic.Int64
	// streams is the number of open feeds (slots holds them by token).
	streams atomic.Int64

	// done is closed when shutdown begins, to end open feeds.
	done     chan struct{}
	doneOnce sync.Once
	feeds    sync.WaitGroup
}

// New returns a Server for cfg. It has the engine time its script calls
// for /metrics (engine.ObserveScripts).
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:  cfg,
		e:    cfg.Engine,
		log:  cfg.Logger,
		keys: newKeyring(cfg.Keys),
		done: make(chan struct{}),
	}
	s.limiter = newRateLimiter(cfg.RatePerSecond, cfg.RateBurst, cfg.Now)
	for _, k := range s.keys.keys {
		if k.Rate != 0 {
			s.limiter.limit(k.Principal(), k.Rate, k.Burst)
		}
	}
	s.slots = newFeedSlots(cfg.MaxStreams, cfg.MaxStreamsPerToken)
	s.notify = newNotifier(cfg.Engine, cfg.EventPoll, cfg.Logger, s.done)
	s.refused = newRefusals(cfg.Engine, cfg.Logger, s.done)
	m, err := newMetrics(cfg.Registry, s)
	if err != nil {
		return nil, err
	}
	s.m = m
	s.app = fiber.New(fiber.Config{
		AppName:               "inventory",
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		DisableStartupMessage: true,
		ErrorHandler:          s.errorHandler,
		StrictRouting:         false,
		CaseSensitive:         true,
	})
	s.routes()
	return s, nil
}

// App returns the Fiber app, for tests and embedding.
func (s *Server) App() *fiber.App { return s.app }

// Serve serves on ln until ctx is done, then shuts down gracefully: it stops
// accepting, ends the feeds, and waits up to 10s for requests in flight.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Shutdown(sctx)
}

// ListenAndServe listens on addr and serves until ctx is done.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Shutdown stops the server: it ends the feeds and drains requests in
// flight within ctx's deadline. Calling it twice is harmless.
func (s *Server) Shutdown(ctx context.Context) error {
	s.doneOnce.Do(func() { close(s.done) })
	err := s.app.ShutdownWithContext(ctx)
	fin := make(chan struct{})
	go func() { s.feeds.Wait(); close(fin) }()
	select {
	case <-fin:
	case <-ctx.Done():
	}
	return err
}

// errorHandler renders err as a problem with the request's id, and logs
// the unexpected ones (500s) through the request's logger. A request that
// Fiber refused before the middleware (body over the limit, headers too
// large, a timeout reading it) gets its id and, with the access log on, its
// access line here.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	r := s.request(c)
	p := problemFor(err)
	if p.Status >= 500 && p.Status != 503 {
		s.logger(c).Error("request failed", zap.String(logMethod, utils.CopyString(c.Method())),
			zap.String(logPath, utils.CopyString(c.Path())), zap.Error(err))
	}
	if err := writeProblem(c, p, r.id); err != nil {
		return err
	}
	if !r.routed && s.cfg.AccessLog {
		s.logAccess(c)
	}
	return nil
}

const (
	logMethod = "method"
	logPath   = "path"
)

// ctx returns the context of one request's work.
func (s *Server) ctx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(requestContext(c), s.cfg.RequestTimeout)
}

// requestContext is the request's context without its cancellation: it
// carries the request's values (the trace span) to the engine and the
// ledger, while a client that goes away never cancels a change half-way
// (a write runs to its end, and a retry with its key finds the result).
func requestContext(c *fiber.Ctx) context.Context {
	return context.WithoutCancel(c.UserContext())
}
