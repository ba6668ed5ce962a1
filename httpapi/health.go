package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"
)

func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok", "version": s.cfg.Version})
}

// readyz answers 200 when Redis answers, every partition is ready, and
// PostgreSQL answers (when the ledger is on); else 503 naming what is not.
func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	checks := fiber.Map{}
	ok := true
	rdb := s.e.Client()
	if err := rdb.Ping(ctx).Err(); err != nil {
		checks["redis"] = "unreachable: " + err.Error()
		ok = false
	} else {
		checks["redis"] = "ok"
		cmds := make([]*redis.IntCmd, s.e.Partitions())
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := range cmds {
				cmds[i] = p.Exists(ctx, s.e.ReadyKey(i))
			}
			return nil
		})
		notReady := []int{}
		for i, cmd := range cmds {
			if n, err := cmd.Result(); err != nil || n != 1 {
				notReady = append(notReady, i)
			}
		}
		if err != nil && len(notReady) == 0 {
			notReady = append(notReady, -1)
		}
		if len(notReady) > 0 {
			checks["partitions"] = fmt.Sprintf("not ready: %v", notReady)
			ok = false
		} else {
			checks["partitions"] = "ok"
		}
	}
	if s.cfg.Ledger == nil {
		checks["postgres"] = "off"
	} else if err := s.cfg.Ledger.Ping(ctx); err != nil {
		checks["postgres"] = "unreachable: " + err.Error()
		ok = false
	} else {
		checks["postgres"] = "ok"
	}
	if !ok {
		c.Set(fiber.HeaderRetryAfter, "1")
		return c.Status(http.StatusServiceUnavailable).JSON(fiber.Map{"status": "not ready", "checks": checks})
	}
	return c.JSON(fiber.Map{"status": "ready", "checks": checks})
}
