package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/zap"

	"github.com/shelfline/inventory/engine"
)

// result is a successful write's response.
type result struct {
	status int
	body   any
	// raw, when set, is the body already encoded (body is then unused).
	raw []byte
	// version, when positive, is sent as the ETag.
	version int64
	loc     string
	// replayed: the engine answered from its idempotency record.
	replayed bool
}

// doWrite runs a change with the request's Idempotency-Key, if any, and
// its fingerprint (method, path with query, and body): the engine claims the
// key and keeps the result under it, so a retry gets the same result
// (rendered into the same response, with Idempotent-Replayed) and another
// request under the key gets 422. See engine/idempotency.go.
func (s *Server) doWrite(c *fiber.Ctx, fn func(ctx context.Context, op engine.Op) (result, error)) error {
	return s.doWriteTimeout(c, s.cfg.RequestTimeout, fn)
}

func (s *Server) doWriteTimeout(c *fiber.Ctx, timeout time.Duration, fn func(ctx context.Context, op engine.Op) (result, error)) error {
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(requestContext(c), timeout)
	defer cancel()
	cl := callerOf(c)
	op := engine.Op{Principal: cl.principal}
	// A repeated Idempotency-Key is refused (400), never decided by the
	// first one; singleHeader copies the value, which outlives the request.
	k, err := singleHeader(c, headerIdempotencyKey)
	if err != nil {
		return err
	}
	if k != "" {
		// Only a keyed request needs its fingerprint.
		op.Fingerprint = fingerprint(c.Method(), c.OriginalURL(), c.Body())
		op.IdempotencyKey = k
	}
	res, err := fn(ctx, op)
	if err != nil {
		return err
	}
	b := res.raw
	if b == nil {
		if b, err = encodeBody(res.body); err != nil {
			return err
		}
	}
	st := response{Status: res.status, Loc: res.loc, Body: b}
	if res.version > 0 {
		st.ETag = etag(res.version)
	}
	if res.replayed {
		s.m.replays.Inc()
	}
	return sendStored(c, &st, res.replayed)
}

func sendStored(c *fiber.Ctx, st *response, replayed bool) error {
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

// response is a successful write's answer as sent.
type response struct {
	Status int
	ETag   string
	Loc    string
	Body   []byte
}

// fingerprint identifies a keyed request: method, path with query, and
// body. The same key with another fingerprint is another request (422).
func fingerprint(method, uri string, body []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", method, uri)
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func validKeyHeader(k string) error {
	if !engine.ValidIdempotencyKey(k) {
		return badRequest("Idempotency-Key must be 1..255 printable ASCII characters").with("field", "Idempotency-Key")
	}
	return nil
}

func zapErr(err error) zap.Field { return zap.Error(err) }
