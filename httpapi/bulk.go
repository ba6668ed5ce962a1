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
	b, err := decodeBulkAdjust(c.Body(), MaxBulk)
	if err != nil {
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
		b, err := encodeBulkResults(out)
		if err != nil {
			return result{}, err
		}
		return result{status: http.StatusOK, raw: b, replayed: anyReplayed}, nil
	})
}

// bulkSet is PUT /v1/items: sets (creates or updates) many items, each line
// like PUT of one item. Every line is validated before any is applied: one
// invalid line refuses the request (400 naming items[i] and its member) and
// changes nothing. Then each line applies on its own and answers its own
// status (201 created, 200 updated, or its problem), in order.
func (s *Server) bulkSet(c *fiber.Ctx) error {
	cl := callerOf(c)
	if cl.Role == RoleReader {
		return forbidden("a reader token may not change stock")
	}
	if err := requireJSON(c, false); err != nil {
		return err
	}
	b, err := decodeBulkSet(c.Body(), engine.MaxBulkSetLines)
	if err != nil {
		return err
	}
	if len(b.Items) == 0 || len(b.Items) > engine.MaxBulkSetLines {
		return badRequest(fmt.Sprintf("items must hold 1..%d lines", engine.MaxBulkSetLines)).with("field", "items")
	}
	reqs := make([]engine.SetRequest, len(b.Items))
	for i, l := range b.Items {
		if !cl.canWrite(l.Store) {
			return forbidden(fmt.Sprintf("items[%d]: this token may only use store %s", i, cl.Store))
		}
		if l.OnHand.Null || !l.OnHand.Set {
			field := fmt.Sprintf("items[%d].on_hand", i)
			return badRequest(fmt.Sprintf("member %q is required and must be an integer", field)).with("field", field)
		}
		r := engine.SetRequest{Store: l.Store, SKU: l.SKU, OnHand: l.OnHand.V}
		// Absent keeps the current setting; null clears it.
		if l.ReorderPoint.Set {
			if l.ReorderPoint.Null {
				r.ClearReorderPoint = true
			} else {
				r.ReorderPoint = &b.Items[i].ReorderPoint.V
			}
		}
		if l.MaxPerCustomer.Set {
			if l.MaxPerCustomer.Null {
				r.ClearMaxPerCustomer = true
			} else {
				r.MaxPerCustomer = &b.Items[i].MaxPerCustomer.V
			}
		}
		if l.SafetyStock.Set {
			if l.SafetyStock.Null {
				r.ClearSafetyStock = true
			} else {
				r.SafetyStock = &b.Items[i].SafetyStock.V
			}
		}
		reqs[i] = r
	}
	timeout := s.cfg.RequestTimeout + time.Duration(len(reqs))*time.Millisecond
	return s.doWriteTimeout(c, timeout, func(ctx context.Context, op engine.Op) (result, error) {
		res, err := s.e.SetMany(ctx, reqs, op)
		if err != nil {
			return result{}, err
		}
		out := make([]bulkResult, len(reqs))
		anyReplayed := res.Replayed
		for i, r := range res.Lines {
			if r.Err == nil {
				it := r.Item
				st := http.StatusOK
				if r.Created {
					st = http.StatusCreated
				}
				out[i] = bulkResult{Status: st, Item: &it}
				anyReplayed = anyReplayed || r.Replayed
				continue
			}
			p := problemFor(r.Err)
			if p.Status >= 500 && p.Status != http.StatusServiceUnavailable {
				s.logger(c).Error("bulk set line failed", zapErr(r.Err))
			}
			out[i] = bulkResult{Status: p.Status, Error: p}
			s.m.countProblem(p)
		}
		b, err := encodeBulkResults(out)
		if err != nil {
			return result{}, err
		}
		return result{status: http.StatusOK, raw: b, replayed: anyReplayed}, nil
	})
}
