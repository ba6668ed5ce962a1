package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/shelfline/inventory/engine"
)

// ProblemTypeBase starts the type URI of every problem this API answers;
// the last path segment names the problem ("purchase-limit", …).
const ProblemTypeBase = "https://shelfline.dev/problems/"

// retryAfterSeconds is the Retry-After of a 503 or 429.
const retryAfterSeconds = 1

// Problem is an RFC 9457 problem detail. Extra holds the members beyond the
// standard ones (shortages, current_version, sku, limit, already, …).
type Problem struct {
	Type   string
	Title  string
	Status int
	Detail string
	Extra  map[string]any
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter int
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// MarshalJSON writes the standard members and the extra ones side by side.
func (p *Problem) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, 4+len(p.Extra))
	for k, v := range p.Extra {
		m[k] = v
	}
	m["type"] = p.Type
	m["title"] = p.Title
	m["status"] = p.Status
	m["detail"] = p.Detail
	return json.Marshal(m)
}

func problem(status int, slug, detail string) *Problem {
	return &Problem{Type: ProblemTypeBase + slug, Title: http.StatusText(status), Status: status, Detail: detail}
}

func (p *Problem) with(k string, v any) *Problem {
	if p.Extra == nil {
		p.Extra = map[string]any{}
	}
	p.Extra[k] = v
	return p
}

func badRequest(detail string) *Problem {
	return problem(http.StatusBadRequest, "invalid-request", detail)
}

func unavailable(detail string) *Problem {
	p := problem(http.StatusServiceUnavailable, "unavailable", detail)
	p.RetryAfter = retryAfterSeconds
	return p
}

// problemFor maps an error from the engine, the ledger or this package to a
// problem. It is the one place where domain errors become HTTP statuses.
func problemFor(err error) *Problem {
	var (
		p   *Problem
		ve  *engine.ValidationError
		vme *engine.VersionMismatchError
		ise *engine.InsufficientStockError
		ple *engine.PurchaseLimitError
		nhe *engine.NotHeldError
		fe  *fiber.Error
	)
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &ve):
		return problem(http.StatusBadRequest, "invalid-request", ve.Error()).with("field", ve.Field)
	case errors.As(err, &vme):
		return problem(http.StatusPreconditionFailed, "version-mismatch", vme.Error()).with("current_version", vme.Current)
	case errors.As(err, &ise):
		sh := ise.Shortages
		if sh == nil {
			sh = []engine.Shortage{}
		}
		return problem(http.StatusConflict, "insufficient-stock", ise.Error()).with("shortages", sh)
	case errors.As(err, &ple):
		return problem(http.StatusConflict, "purchase-limit", ple.Error()).
			with("sku", ple.SKU).with("limit", ple.Limit).with("already", ple.Already)
	case errors.Is(err, engine.ErrCustomerRequired):
		return problem(http.StatusBadRequest, "customer-required", err.Error())
	case errors.As(err, &nhe):
		return problem(http.StatusConflict, "reservation-not-held", nhe.Error()).with("reservation_status", nhe.Status)
	case errors.Is(err, engine.ErrReservationNotHeld):
		return problem(http.StatusConflict, "reservation-not-held", err.Error())
	case errors.Is(err, engine.ErrNotFound):
		return problem(http.StatusNotFound, "not-found", err.Error())
	case errors.Is(err, engine.ErrIdempotencyMismatch):
		return problem(http.StatusUnprocessableEntity, "idempotency-key-reused", err.Error())
	case errors.Is(err, engine.ErrAlreadyApplied):
		return problem(http.StatusConflict, "already-applied", "this Idempotency-Key's request was applied before Redis lost its data, "+
			"and its first response was lost with it; nothing was changed now: read the item for its current state")
	case errors.Is(err, engine.ErrConflict):
		return problem(http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, engine.ErrPartitionNotReady):
		return unavailable("the store's partition is being rebuilt from the ledger; retry shortly")
	case errors.Is(err, engine.ErrBackpressure):
		return unavailable("the ledger is behind; writes are shed until it catches up")
	case errors.Is(err, context.DeadlineExceeded):
		return unavailable("the request timed out")
	case errors.As(err, &fe):
		return fiberProblem(fe)
	case engine.IsUnavailable(err):
		return unavailable("the stock service is unreachable; retry shortly")
	}
	return problem(http.StatusInternalServerError, "internal", "internal error")
}

func fiberProblem(fe *fiber.Error) *Problem {
	switch fe.Code {
	case fiber.StatusRequestEntityTooLarge:
		return problem(fe.Code, "body-too-large", "the request body is over 1 MiB")
	case fiber.StatusNotFound:
		return problem(fe.Code, "not-found", "no such route")
	case fiber.StatusMethodNotAllowed:
		return problem(fe.Code, "method-not-allowed", "method not allowed on this route")
	case fiber.StatusRequestTimeout:
		return problem(fe.Code, "timeout", "the request was not read in time")
	}
	if fe.Code >= 400 && fe.Code < 500 {
		return problem(fe.Code, "invalid-request", fe.Message)
	}
	return problem(fe.Code, "internal", fe.Message)
}

// writeProblem sends p as application/problem+json.
func writeProblem(c *fiber.Ctx, p *Problem) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if p.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(p.RetryAfter))
	}
	c.Set(fiber.HeaderContentType, "application/problem+json")
	return c.Status(p.Status).Send(b)
}
