package httpapi

import (
	"context"
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/zap"

	"github.com/shelfline/inventory/engine"
)

// result is a successful write's response.
type result struct {
	status int
	body   any
	// version, when positive, is sent as the ETag.
	version int64
	loc     string
	// replayed: the engine answered from its idempotency record.
	replayed bool
}

// doWrite runs a change: it claims the request's Idempotency-Key (replaying
// a completed earlier response, or answering 422 for a different request),
// runs fn, stores a successful response under the key and drops the claim
// of a failed one.
func (s *Server) doWrite(c *fiber.Ctx, fn func(ctx context.Context, op engine.Op) (result, error)) error {
	return s.doWriteTimeout(c, s.cfg.RequestTimeout, fn)
}

func (s *Server) doWriteTimeout(c *fiber.Ctx, timeout time.Duration, fn func(ctx context.Context, op engine.Op) (result, error)) error {
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cl := callerOf(c)
	op := engine.Op{Principal: cl.principal}
	// A repeated Idempotency-Key is refused (400), never decided by the
	// first one; singleHeader copies the value, which outlives the request.
	k, err := singleHeader(c, headerIdempotencyKey)
	if err != nil {
		return err
	}
	key := ""
	owned := false
	if k != "" {
		// Only a keyed request needs its fingerprint (the engine and the
		// stored response compare it); hashing every body was wasted work.
		op.Fingerprint = fingerprint(c.Method(), c.OriginalURL(), c.Body())
		key = k
		prev, own, err := s.idem.claim(ctx, cl.principal, key, op.Fingerprint)
		if err != nil {
			return err
		}
		if prev != nil {
			s.m.replays.Inc()
			return sendStored(c, prev, true)
		}
		owned = own
		op.IdempotencyKey = key
	}
	res, err := fn(ctx, op)
	if err != nil {
		if owned {
			if derr := s.idem.drop(context.Background(), cl.principal, key, op.Fingerprint); derr != nil {
				s.log.Warn("drop idempotency claim", zapErr(derr))
			}
		}
		return err
	}
	b, err := json.Marshal(res.body)
	if err != nil {
		return err
	}
	st := stored{FP: op.Fingerprint, Status: res.status, Loc: res.loc, Body: b}
	if res.version > 0 {
		st.ETag = etag(res.version)
	}
	if key != "" {
		if err := s.idem.keep(context.Background(), cl.principal, key, st); err != nil {
			// The change is made and the engine keeps its own record, so
			// a retry still replays: report success.
			s.log.Warn("store idempotent response", zapErr(err))
		}
	}
	if res.replayed {
		s.m.replays.Inc()
	}
	return sendStored(c, &st, res.replayed)
}

func sendStored(c *fiber.Ctx, st *stored, replayed bool) error {
	if st.ETag != "" {
		c.Set(fiber.HeaderETag, st.ETag)
	}
	if st.Loc != "" {
		c.Set(fiber.HeaderLocation, st.Loc)
	}
	if replayed {
		c.Set("Idempotent-Replayed", "true")
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(st.Status).Send(st.Body)
}

func zapErr(err error) zap.Field { return zap.Error(err) }
