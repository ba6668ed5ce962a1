package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok", "version": s.cfg.Version})
}

// readyz answers 200 when Redis answers, every partition is ready, and
// PostgreSQL answers (when the ledger is on); else 503 naming what is not.
// A partition whose persister keeps failing (PersisterStats) leaves the
// server serving: 200 with status "degraded", naming the partition and the
// error.
func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	checks := fiber.Map{}
	ok := true
	if err := s.e.Ping(ctx); err != nil {
		checks["redis"] = "unreachable: " + err.Error()
		ok = false
	} else {
		checks["redis"] = "ok"
		all := make([]int, s.e.Partitions())
		for i := range all {
			all[i] = i
		}
		notReady, err := s.e.PartitionsNotReady(ctx, all)
		if err != nil {
			notReady = all // none could be checked
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
	body := fiber.Map{"status": "ready", "checks": checks}
	if s.cfg.PersisterStats != nil {
		if failing := failingPartitions(s.cfg.PersisterStats(), time.Now()); len(failing) == 0 {
			checks["persister"] = "ok"
		} else {
			msgs := make([]string, len(failing))
			for i, f := range failing {
				msgs[i] = fmt.Sprintf("partition %d failing for %s: %s", f.Partition, f.FailingFor, f.Error)
			}
			checks["persister"] = "degraded: events wait in Redis; " + strings.Join(msgs, "; ")
			body["status"] = "degraded"
			body["degraded"] = failing
		}
	}
	if !ok {
		body["status"] = "not ready"
		c.Set(fiber.HeaderRetryAfter, "1")
		return c.Status(http.StatusServiceUnavailable).JSON(body)
	}
	return c.JSON(body)
}

// failingPartition is a partition whose persister keeps failing, as
// /readyz shows it.
type failingPartition struct {
	Check        string    `json:"check"`
	Partition    int       `json:"partition"`
	FailingSince time.Time `json:"failing_since"`
	FailingFor   string    `json:"failing_for"`
	Lag          int64     `json:"lag"`
	Error        string    `json:"error"`
}

func failingPartitions(st PersisterStats, now time.Time) []failingPartition {
	var out []failingPartition
	for _, p := range st.Partitions {
		if !p.Failing {
			continue
		}
		f := failingPartition{Check: "persister", Partition: p.Partition, Lag: max(p.Lag, 0), Error: p.Error}
		if !p.FailingSince.IsZero() {
			f.FailingSince = p.FailingSince.UTC()
			f.FailingFor = now.Sub(p.FailingSince).Round(time.Second).String()
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out
}
