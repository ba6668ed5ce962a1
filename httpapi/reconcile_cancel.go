package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/shelfline/inventory/persist"
)

// RunCanceller is the optional part of a Reconciler that cancels a
// reconciliation run by its id, in whichever process it runs
// (persist.Reconciler.RequestCancel). It answers what it recorded, or
// persist.ErrRunNotFound or persist.ErrRunFinished.
type RunCanceller interface {
	CancelRun(ctx context.Context, run int64) (any, error)
}

// cancelReconcile serves POST /v1/admin/reconcile/{run}/cancel: it asks a
// running reconciliation run to stop (202); the run stops within about a
// second, records what it found until then, and frees its lock. Asking again
// answers 202 again with the first request's time: the route is idempotent
// by nature, so it keeps no Idempotency-Key record. 404 for an unknown run,
// 409 for a run that is over.
func (s *Server) cancelReconcile(c *fiber.Ctx) error {
	if err := callerOf(c).mustAdmin(); err != nil {
		return err
	}
	if err := requireJSON(c, true); err != nil {
		return err
	}
	if len(c.Body()) > 0 {
		if err := decodeStrict(c.Body(), &emptyBody{}); err != nil {
			return err
		}
	}
	run, err := strconv.ParseInt(c.Params("run"), 10, 64)
	if err != nil || run < 1 {
		return problem(http.StatusNotFound, "not-found", "no reconciliation run has this id")
	}
	rc, ok := s.cfg.Reconciler.(RunCanceller)
	if !ok {
		return unavailable("the ledger is off (INVENTORY_DATABASE_URL=off): there is no reconciliation run")
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	out, err := rc.CancelRun(ctx, run)
	switch {
	case errors.Is(err, persist.ErrRunNotFound):
		return problem(http.StatusNotFound, "not-found", "no reconciliation run has this id")
	case errors.Is(err, persist.ErrRunFinished):
		return problem(http.StatusConflict, "run-finished", "the reconciliation run is over; there is nothing to cancel")
	case err != nil:
		return err
	}
	return c.Status(http.StatusAccepted).JSON(out)
}

// reconcileProblem answers a run that was cancelled (POST
// /v1/admin/reconcile/{run}/cancel, or the end of the process) with 409;
// other errors go to problemFor.
func reconcileProblem(err error) error {
	if errors.Is(err, persist.ErrReconcileCancelled) {
		return problem(http.StatusConflict, "reconcile-cancelled", "the reconciliation run was cancelled before it finished: "+err.Error())
	}
	return err
}
