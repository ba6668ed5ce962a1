package httpapi

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/gofiber/fiber/v2"
	"go.uber.org/zap"
)

// HeaderRequestID is the header that carries a request's id: taken from the
// request when it holds a usable one, made otherwise, and echoed in the
// response.
const HeaderRequestID = "X-Request-ID"

// MaxRequestIDLen is the longest request id taken from a request; a longer
// one is replaced by a new id.
const MaxRequestIDLen = 128

// logRequestID is the log key of a request's id.
const logRequestID = "request_id"

const localsRequest = "request"

// request is what the server keeps of one request for its whole life: its
// id, and a logger that writes the id on every line.
type request struct {
	id  string
	log *zap.Logger // made on first use
	// routed: the request went through the middleware. One that Fiber
	// refused before (a body over the limit, headers too large) reaches
	// only the error handler.
	routed bool
}

// requestID gives every request its id (see HeaderRequestID) before any
// other middleware runs, so that every response, every problem and every
// log line of the request carries it.
func (s *Server) requestID(c *fiber.Ctx) error {
	s.request(c).routed = true
	return c.Next()
}

// request returns the request's id and logger, giving the request its id
// and echoing it in the response on the first call. A request that Fiber
// refuses before any middleware (a body over the limit, headers too large)
// reaches the error handler without one: it gets its id there.
func (s *Server) request(c *fiber.Ctx) *request {
	if r, ok := c.Locals(localsRequest).(*request); ok {
		return r
	}
	r := &request{id: requestIDOf(c)}
	c.Locals(localsRequest, r)
	c.Set(HeaderRequestID, r.id)
	return r
}

// logger returns the logger of the request: the server's, with the
// request's id on every line. Handlers and the error handler log through
// it; a goroutine that outlives the handler (a feed) takes it before it
// starts.
func (s *Server) logger(c *fiber.Ctx) *zap.Logger {
	r := s.request(c)
	if r.log == nil {
		r.log = s.log.With(zap.String(logRequestID, r.id))
	}
	return r.log
}

// requestIDOf returns the request's X-Request-ID, copied (Fiber reuses the
// request's memory), when there is exactly one and it is usable; otherwise
// a new id.
func requestIDOf(c *fiber.Ctx) string {
	vs := c.Request().Header.PeekAll(HeaderRequestID)
	if len(vs) == 1 && validRequestID(vs[0]) {
		return string(vs[0])
	}
	return newRequestID()
}

// validRequestID reports whether id may be taken as a request id: 1 to
// MaxRequestIDLen printable ASCII characters. Anything else (empty, too
// long, control characters, bytes beyond ASCII) could break a log line or a
// header, or be used to forge one.
func validRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > MaxRequestIDLen {
		return false
	}
	for _, b := range id {
		if b < 0x20 || b > 0x7e {
			return false
		}
	}
	return true
}

// newRequestID returns a new request id: 16 random hex digits.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b[:])
}
