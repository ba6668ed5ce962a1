// Package admin is the admin address that every long-running inventory
// process serves (DESIGN §14): /metrics from the process's own Prometheus
// registry, /healthz (the process lives) and /readyz (it can do its work;
// 503 as soon as a shutdown begins), so a persister worker is observed like
// the API. It also holds what the API's own /metrics and /readyz share with
// it: the collectors of the persister, reconciler, rebuilder, streams and
// build, and the readiness checks.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Routes are the paths the admin address serves, all with GET.
var Routes = []string{"/metrics", "/healthz", "/readyz"}

// Config configures a Server. The zero value of every field but Registry
// and Checks.Engine selects its documented default.
type Config struct {
	// Registry holds the process's metrics, served on /metrics. Required.
	Registry *prometheus.Registry
	// Checks are what /readyz looks at. Checks.Engine is required.
	Checks Checks
	// Build is reported by /healthz. Defaults to ReadBuild().
	Build *Build
	// Logger receives the server's errors. Defaults to zap.NewNop().
	Logger *zap.Logger
	// ReadyTimeout bounds the checks of one /readyz. Defaults to 2s.
	ReadyTimeout time.Duration
	// ShutdownTimeout bounds the wait for requests in flight when Serve
	// stops. Defaults to 5s.
	ShutdownTimeout time.Duration
	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Build == nil {
		b := ReadBuild()
		c.Build = &b
	} else {
		b := *c.Build
		c.Build = &b
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 2 * time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Registry == nil:
		return errors.New("admin config: Registry is required")
	case c.Checks.Engine == nil:
		return errors.New("admin config: Checks.Engine is required")
	case c.ReadyTimeout < 0:
		return errors.New("admin config: ReadyTimeout must not be negative")
	case c.ShutdownTimeout < 0:
		return errors.New("admin config: ShutdownTimeout must not be negative")
	}
	return nil
}

// Server serves the admin routes. Construct it with New; run it with Serve.
// Its methods are safe for concurrent use.
type Server struct {
	cfg      Config
	mux      *http.ServeMux
	shutting atomic.Bool
}

// New returns a Server for cfg. It errors on an invalid config.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	return s, nil
}

// Handler returns the server's routes as an http.Handler.
func (s *Server) Handler() http.Handler { return s.mux }

// BeginShutdown makes /readyz answer 503 from now on. /metrics and /healthz
// keep answering until Serve stops. Calling it twice is harmless.
func (s *Server) BeginShutdown() { s.shutting.Store(true) }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.cfg.Build.String()})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.shutting.Load() {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, ShuttingDown())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
	defer cancel()
	rd := s.cfg.Checks.Check(ctx, s.cfg.Now())
	if rd.Code() != http.StatusOK {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, rd.Code(), rd)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Listen listens on addr (host:port; port 0 picks a free one) for Serve.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin address %s: %w", addr, err)
	}
	return ln, nil
}

// Serve serves the admin routes on ln until ctx is done, then waits up to
// ShutdownTimeout for requests in flight and returns nil. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          zap.NewStdLog(s.cfg.Logger),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin server: %w", err)
	case <-ctx.Done():
	}
	s.BeginShutdown()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("admin server: shutdown: %w", err)
	}
	<-errc // http.ErrServerClosed
	return nil
}
