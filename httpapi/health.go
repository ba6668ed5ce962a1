package httpapi

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/shelfline/inventory/internal/admin"
)

func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok", "version": s.cfg.Version})
}

// readyz answers 200 when Redis answers, every partition is ready, and
// PostgreSQL answers (when the ledger is on); else 503 naming what is not.
// A partition whose persister keeps failing (PersisterStats) leaves the
// server serving: 200 with status "degraded", naming the partition and the
// error. Once a shutdown has begun (BeginShutdown, Shutdown) it answers 503
// "shutting down", so load balancers stop sending before the drain. The
// checks are those of the process's admin address (package admin).
func (s *Server) readyz(c *fiber.Ctx) error {
	rd := admin.ShuttingDown()
	if !s.shuttingDown() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var ledger admin.Pinger
		if s.cfg.Ledger != nil {
			ledger = s.cfg.Ledger
		}
		checks := admin.Checks{Engine: s.e, Partitions: true, Ledger: ledger, Persister: s.persisterStats(), Rebuild: s.cfg.Rebuild}
		rd = checks.Check(ctx, time.Now())
	}
	if rd.Code() != fiber.StatusOK {
		c.Set(fiber.HeaderRetryAfter, "1")
	}
	return c.Status(rd.Code()).JSON(rd)
}

// BeginShutdown starts the server's shutdown without stopping it: from now
// on /readyz answers 503, so that load balancers stop sending, and open
// event feeds end (their clients reconnect elsewhere); other requests are
// served until Shutdown drains them. Shutdown calls it too. Calling it
// twice is harmless.
func (s *Server) BeginShutdown() { s.doneOnce.Do(func() { close(s.done) }) }

func (s *Server) shuttingDown() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}
