package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/persist"
)

// Inbox is the conflict inbox (persist.Inbox): the findings a person must
// decide on, and their decisions.
type Inbox interface {
	List(ctx context.Context, status string, limit int) ([]persist.InboxFinding, error)
	Get(ctx context.Context, id int64) (persist.InboxFinding, error)
	Resolve(ctx context.Context, id, delta int64, note, principal string) (persist.InboxFinding, error)
	Dismiss(ctx context.Context, id int64, note, principal string) (persist.InboxFinding, error)
}

// Operations reports the deployment's state for the operations view
// (persist.Operations).
type Operations interface {
	Overview(ctx context.Context) (*persist.Overview, error)
}

type resolveBody struct {
	Delta Int    `json:"delta"`
	Note  string `json:"note"`
}

type dismissBody struct {
	Note string `json:"note"`
}

// inboxProblem maps the inbox's errors; the engine's (of a correcting
// adjustment) go to problemFor.
func inboxProblem(err error) error {
	switch {
	case errors.Is(err, persist.ErrFindingNotFound):
		return problem(http.StatusNotFound, "not-found", "no finding of the inbox has this id")
	case errors.Is(err, persist.ErrFindingClosed):
		return problem(http.StatusConflict, "finding-closed", "the finding was resolved or dismissed already")
	case errors.Is(err, persist.ErrInvalidLimit):
		return badRequest("limit must be an integer 1..1000").with("field", "limit")
	}
	return err
}

// inboxReady checks the caller and that the inbox is served.
func (s *Server) inboxReady(c *fiber.Ctx) error {
	if err := callerOf(c).mustAdmin(); err != nil {
		return err
	}
	if s.cfg.Inbox == nil {
		return unavailable("the ledger is off (INVENTORY_DATABASE_URL=off): there are no findings")
	}
	return nil
}

func findingID(c *fiber.Ctx) (int64, error) {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, problem(http.StatusNotFound, "not-found", "no finding of the inbox has this id")
	}
	return id, nil
}

// listFindings serves GET /v1/admin/findings?status=open|closed|all&limit=.
func (s *Server) listFindings(c *fiber.Ctx) error {
	if err := s.inboxReady(c); err != nil {
		return err
	}
	limit, err := queryLimit(c, 100, 1000)
	if err != nil {
		return err
	}
	status := utils.CopyString(c.Query("status", "open"))
	if status != "open" && status != "closed" && status != "all" {
		return badRequest("status must be open, closed or all").with("field", "status")
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	fs, err := s.cfg.Inbox.List(ctx, status, limit)
	if err != nil {
		return s.ledgerProblem(c, "findings", inboxProblem(err))
	}
	return c.JSON(fiber.Map{"findings": fs})
}

// getFinding serves GET /v1/admin/findings/{id}.
func (s *Server) getFinding(c *fiber.Ctx) error {
	if err := s.inboxReady(c); err != nil {
		return err
	}
	id, err := findingID(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	f, err := s.cfg.Inbox.Get(ctx, id)
	if err != nil {
		return s.ledgerProblem(c, "finding", inboxProblem(err))
	}
	return c.JSON(f)
}

// resolveFinding serves POST /v1/admin/findings/{id}/resolve
// {"delta","note"}: a correcting adjustment and a note.
func (s *Server) resolveFinding(c *fiber.Ctx) error {
	if err := s.inboxReady(c); err != nil {
		return err
	}
	id, err := findingID(c)
	if err != nil {
		return err
	}
	if err := requireJSON(c, false); err != nil {
		return err
	}
	var b resolveBody
	if err := decodeStrict(c.Body(), &b); err != nil {
		return err
	}
	if err := required("delta", b.Delta); err != nil {
		return err
	}
	return s.decideFinding(c, func(ctx context.Context, principal string) (persist.InboxFinding, error) {
		return s.cfg.Inbox.Resolve(ctx, id, b.Delta.V, b.Note, principal)
	})
}

// dismissFinding serves POST /v1/admin/findings/{id}/dismiss {"note"}.
func (s *Server) dismissFinding(c *fiber.Ctx) error {
	if err := s.inboxReady(c); err != nil {
		return err
	}
	id, err := findingID(c)
	if err != nil {
		return err
	}
	if err := requireJSON(c, false); err != nil {
		return err
	}
	var b dismissBody
	if err := decodeStrict(c.Body(), &b); err != nil {
		return err
	}
	return s.decideFinding(c, func(ctx context.Context, principal string) (persist.InboxFinding, error) {
		return s.cfg.Inbox.Dismiss(ctx, id, b.Note, principal)
	})
}

// decideFinding runs a decision under the request's Idempotency-Key: the
// engine keeps the answer, so a retry replays it.
func (s *Server) decideFinding(c *fiber.Ctx, decide func(context.Context, string) (persist.InboxFinding, error)) error {
	return s.doWrite(c, func(ctx context.Context, op engine.Op) (result, error) {
		if op.IdempotencyKey != "" {
			prev, err := s.e.ClaimResponse(ctx, op)
			if err != nil {
				return result{}, err
			}
			if prev != nil {
				return result{status: http.StatusOK, body: json.RawMessage(prev), replayed: true}, nil
			}
		}
		f, err := decide(ctx, op.Principal)
		if err != nil {
			if op.IdempotencyKey != "" {
				s.e.GiveBack(op)
			}
			return result{}, inboxProblem(err)
		}
		b, err := json.Marshal(f)
		if err != nil {
			return result{}, err
		}
		if op.IdempotencyKey != "" {
			if err := s.e.KeepResponse(ctx, op, b); err != nil {
				s.logger(c).Warn("keep finding decision", zapErr(err))
			}
		}
		return result{status: http.StatusOK, body: json.RawMessage(b)}, nil
	})
}

// operations serves GET /v1/admin/operations.
func (s *Server) operations(c *fiber.Ctx) error {
	if err := callerOf(c).mustAdmin(); err != nil {
		return err
	}
	if s.cfg.Operations == nil {
		return unavailable("the ledger is off (INVENTORY_DATABASE_URL=off): the operations view reads it")
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	ov, err := s.cfg.Operations.Overview(ctx)
	if err != nil {
		return s.ledgerProblem(c, "operations", err)
	}
	return c.JSON(ov)
}

// ledgerProblem returns err when it is a problem already, else logs it and
// answers 503: the ledger (or Redis) failed to answer.
func (s *Server) ledgerProblem(c *fiber.Ctx, what string, err error) error {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	s.logger(c).Warn(what, zapErr(err))
	return unavailable("the ledger is unreachable; retry shortly")
}
