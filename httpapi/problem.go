package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/webhook"
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
	// RequestID, when set, is sent as the member request_id: the id of the
	// request that the problem answers (HeaderRequestID). The server sets
	// it on every problem+json body it sends; the problems of a bulk
	// request's lines, inside its 200 body, go without.
	RequestID string
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter int
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// MarshalJSON writes the standard members and the extra ones side by side.
func (p *Problem) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, 5+len(p.Extra))
	for k, v := range p.Extra {
		m[k] = v
	}
	if p.RequestID != "" {
		m["request_id"] = p.RequestID
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
// Every detail is written for the client: never an error's text with its
// Go wrapping ("get s1/lamp: not found: lamp").
func problemFor(err error) *Problem {
	var (
		p   *Problem
		ve  *engine.ValidationError
		vme *engine.VersionMismatchError
		ise *engine.InsufficientStockError
		ple *engine.PurchaseLimitError
		nhe *engine.NotHeldError
		nfe *engine.NotFoundError
		fe  *fiber.Error
		// tu is an error of a collaborator (the reconciler) that says it
		// passes: 503 with Retry-After.
		tu interface{ Unavailable() bool }
	)
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &ve):
		return problem(http.StatusBadRequest, "invalid-request", validationDetail(ve)).with("field", ve.Field)
	case errors.As(err, &vme):
		return problem(http.StatusPreconditionFailed, "version-mismatch", versionDetail(vme.Current)).with("current_version", vme.Current)
	case errors.As(err, &ise):
		sh := ise.Shortages
		if sh == nil {
			sh = []engine.Shortage{}
		}
		return problem(http.StatusConflict, "insufficient-stock", shortageDetail(sh)).with("shortages", sh)
	case errors.As(err, &ple):
		return problem(http.StatusConflict, "purchase-limit",
			fmt.Sprintf("item %s allows %d per customer and this customer already has %d", ple.SKU, ple.Limit, ple.Already)).
			with("sku", ple.SKU).with("limit", ple.Limit).with("already", ple.Already)
	case errors.Is(err, engine.ErrCustomerRequired):
		return problem(http.StatusBadRequest, "customer-required", customerRequiredDetail(err))
	case errors.As(err, &nhe):
		return problem(http.StatusConflict, "reservation-not-held", fmt.Sprintf("the reservation is %s, not held", nhe.Status)).
			with("reservation_status", nhe.Status)
	case errors.Is(err, engine.ErrReservationNotHeld):
		return problem(http.StatusConflict, "reservation-not-held", "the reservation is not held")
	case errors.Is(err, webhook.ErrNotFound):
		return problem(http.StatusNotFound, "not-found", "no webhook has this id")
	case errors.As(err, &nfe) && engine.ValidID(nfe.What):
		// Outside the reservation routes (which say so themselves), what
		// is not found is an item: the engine names its SKU.
		return problem(http.StatusNotFound, "not-found", fmt.Sprintf("item %s does not exist", nfe.What))
	case errors.Is(err, engine.ErrNotFound):
		return problem(http.StatusNotFound, "not-found", "what the request names does not exist")
	case errors.Is(err, engine.ErrIdempotencyMismatch):
		return problem(http.StatusUnprocessableEntity, "idempotency-key-reused",
			"this Idempotency-Key was used before for a different request")
	case errors.Is(err, engine.ErrAlreadyApplied):
		return problem(http.StatusConflict, "already-applied", "this Idempotency-Key's request was applied before Redis lost its data, "+
			"and its first response was lost with it; nothing was changed now: read the item for its current state")
	case errors.Is(err, engine.ErrConflict):
		return problem(http.StatusConflict, "conflict", conflictDetail(err))
	case errors.Is(err, engine.ErrPartitionNotReady):
		return unavailable("the store's partition is being rebuilt from the ledger; retry shortly")
	case errors.Is(err, engine.ErrBackpressure):
		return unavailable("the ledger is behind; writes are shed until it catches up")
	case errors.Is(err, engine.ErrRedisFull):
		return unavailable("Redis is out of memory (past maxmemory): writes are refused, and nothing was changed, " +
			"until memory is freed or maxmemory raised; reads still answer")
	case errors.Is(err, context.DeadlineExceeded):
		return unavailable("the request timed out")
	case errors.As(err, &fe):
		return fiberProblem(fe)
	case errors.As(err, &tu) && tu.Unavailable():
		return unavailable("another run of this operation is in progress; retry shortly")
	case engine.IsUnavailable(err):
		return unavailable("the stock service is unreachable; retry shortly")
	}
	return problem(http.StatusInternalServerError, "internal", "internal error")
}

// validationDetail says which field is wrong and how: "on_hand must be
// 0..1000000000000", "delta is invalid: on_hand would pass …".
func validationDetail(ve *engine.ValidationError) string {
	switch {
	case ve.Msg == "":
		return ve.Field + " is invalid"
	case strings.HasPrefix(ve.Msg, "must ") || strings.HasPrefix(ve.Msg, "at most "):
		return ve.Field + " " + ve.Msg
	}
	return ve.Field + " is invalid: " + ve.Msg
}

func versionDetail(current int64) string {
	if current == 0 {
		return "the item does not exist, which fails the request's precondition"
	}
	return fmt.Sprintf("the item is at version %d, which fails the request's precondition", current)
}

func shortageDetail(sh []engine.Shortage) string {
	if len(sh) == 0 {
		return "not enough stock"
	}
	parts := make([]string, len(sh))
	for i, s := range sh {
		parts[i] = fmt.Sprintf("%s %d requested, %d available", s.SKU, s.Requested, s.Available)
	}
	return "not enough stock: " + strings.Join(parts, "; ")
}

// customerRequiredRE finds the SKU the engine names in an
// ErrCustomerRequired ("… (lamp)").
var customerRequiredRE = regexp.MustCompile(`\(([A-Za-z0-9][A-Za-z0-9._-]{0,63})\)$`)

func customerRequiredDetail(err error) string {
	if m := customerRequiredRE.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Sprintf("item %s has a purchase limit, so the request must name its customer", m[1])
	}
	return "an item of this request has a purchase limit, so the request must name its customer"
}

// conflictDetail describes an engine.ErrConflict: in practice an on_hand
// that would fall below the units held (reserved, committed, damaged,
// quality_control, display), which the engine reports as "conflict: on_hand
// N is below the R units held of SKU".
func conflictDetail(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, engine.ErrConflict.Error()+": "); i >= 0 {
		var (
			onHand, reserved int64
			sku              string
		)
		rest := msg[i+len(engine.ErrConflict.Error())+2:]
		if n, _ := fmt.Sscanf(rest, "on_hand %d is below the %d units held of %s", &onHand, &reserved, &sku); n == 3 && engine.ValidID(sku) {
			return fmt.Sprintf("on_hand %d would be below the %d units of %s held by reservations and the states committed, damaged, quality_control and display", onHand, reserved, sku)
		}
	}
	return "the request conflicts with the item's current state (on_hand may not go below the units held by reservations and the states)"
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
	case fiber.StatusRequestHeaderFieldsTooLarge:
		return problem(fe.Code, "headers-too-large", "the request's headers are too large")
	}
	if fe.Code >= 400 && fe.Code < 500 {
		detail := "the request is malformed"
		if t := http.StatusText(fe.Code); t != "" {
			detail += " (" + strings.ToLower(t) + ")"
		}
		return problem(fe.Code, "invalid-request", detail)
	}
	return problem(fe.Code, "internal", "internal error")
}

// writeProblem sends p as application/problem+json, with the request's id
// as its request_id. p itself is left as it is: an error's problem may be
// a value shared between requests.
func writeProblem(c *fiber.Ctx, p *Problem, requestID string) error {
	q := *p
	q.RequestID = requestID
	b, err := json.Marshal(&q)
	if err != nil {
		return err
	}
	if p.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(p.RetryAfter))
	}
	c.Set(fiber.HeaderContentType, "application/problem+json")
	return c.Status(p.Status).Send(b)
}
