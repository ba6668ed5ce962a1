package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/shelfline/inventory/engine"
)

// bulkResult is one line's outcome in POST /v1/adjustments: its own status
// and either the item or the problem.
type bulkResult struct {
	Status int          `json:"status"`
	Item   *engine.Item `json:"item,omitempty"`
	Error  *Problem     `json:"error,omitempty"`
}

func (s *Server) bulkAdjust(c *fiber.Ctx) error {
	cl := callerOf(c)
	if cl.Role == RoleReader {
		return forbidden("a reader token may not change stock")
	}
	if err := requireJSON(c, false); err != nil {
		return err
	}
	var b bulkBody
	if err := decodeStrict(c.Body(), &b); err != nil {
		return err
	}
	if len(b.Updates) == 0 || len(b.Updates) > MaxBulk {
		return badRequest(fmt.Sprintf("updates must hold 1..%d lines", MaxBulk)).with("field", "updates")
	}
	for i, u := range b.Updates {
		if !cl.canWrite(u.Store) {
			return forbidden(fmt.Sprintf("updates[%d]: this token may only use store %s", i, cl.Store))
		}
	}
	out := make([]bulkResult, len(b.Updates))
	// Lines without a delta are refused here; the engine applies the rest.
	var reqs []engine.AdjustRequest
	var at []int
	for i, u := range b.Updates {
		if u.Delta.Null || !u.Delta.Set {
			p := badRequest("delta is required and must be an integer").with("field", "delta")
			out[i] = bulkResult{Status: p.Status, Error: p}
			s.m.countProblem(p)
			continue
		}
		reqs = append(reqs, engine.AdjustRequest{Store: u.Store, SKU: u.SKU, Delta: u.Delta.V, Reason: u.Reason})
		at = append(at, i)
	}
	timeout := s.cfg.RequestTimeout + time.Duration(len(b.Updates))*10*time.Millisecond
	return s.doWriteTimeout(c, timeout, func(ctx context.Context, op engine.Op) (result, error) {
		anyReplayed := false
		if len(reqs) > 0 {
			res, err := s.e.AdjustMany(ctx, reqs, op)
			if err != nil {
				return result{}, err
			}
			anyReplayed = res.Replayed
			for j, r := range res.Lines {
				i := at[j]
				if r.Err == nil {
					it := r.Item
					out[i] = bulkResult{Status: http.StatusOK, Item: &it}
					anyReplayed = anyReplayed || r.Replayed
					continue
				}
				p := problemFor(r.Err)
				if p.Status >= 500 && p.Status != http.StatusServiceUnavailable {
					s.logger(c).Error("bulk adjustment line failed", zapErr(r.Err))
				}
				out[i] = bulkResult{Status: p.Status, Error: p}
				s.m.countProblem(p)
			}
		}
		return result{status: http.StatusOK, body: fiber.Map{"results": out}, replayed: anyReplayed}, nil
	})
}
