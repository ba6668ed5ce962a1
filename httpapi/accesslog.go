package httpapi

import (
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"go.uber.org/zap"
)

// Log keys of the access log.
const (
	logRoute     = "route"
	logStatus    = "status"
	logDuration  = "duration"
	logBytes     = "bytes"
	logPrincipal = "principal"
)

// accessLog writes one line per request once its response is decided (see
// logAccess). It is installed when Config.AccessLog is on, after requestID
// and before everything else, so it sees the final status of every request
// that reaches a route, including the problems of the middleware after it.
func (s *Server) accessLog(c *fiber.Ctx) error {
	if err := c.Next(); err != nil {
		// Render the problem now, so the line has its status.
		if herr := s.errorHandler(c, err); herr != nil {
			return herr
		}
	}
	s.logAccess(c)
	return nil
}

// logAccess writes the access line of the request: method, route (the
// matched pattern, "unmatched" for no route), path, status, duration since
// the request was read, bytes of the body (-1 for a stream, whose size is
// not known when the line is written), principal (never the token: the
// caller's key name and token hash, empty before authentication) and, by
// the request's logger, its id. Every string from the request is copied:
// the line may outlive the handler (a buffering or test core).
func (s *Server) logAccess(c *fiber.Ctx) {
	res := c.Response()
	n := -1
	if !res.IsBodyStream() {
		n = len(res.Body())
	}
	principal := ""
	if cl := callerOf(c); cl != nil {
		principal = cl.principal
	}
	s.logger(c).Info("request",
		zap.String(logMethod, utils.CopyString(c.Method())),
		zap.String(logRoute, routeOf(c, s.request(c).routed)),
		zap.String(logPath, utils.CopyString(c.Path())),
		zap.Int(logStatus, res.StatusCode()),
		zap.Duration(logDuration, time.Since(c.Context().Time())),
		zap.Int(logBytes, n),
		zap.String(logPrincipal, principal),
	)
}

// routeOf returns the pattern of the route that served the request, or
// "unmatched" when none did (or the request was refused before routing).
// The pattern belongs to the app, not to the request: it needs no copy.
func routeOf(c *fiber.Ctx, routed bool) string {
	route := c.Route().Path
	if !routed || (route == "/" && c.Path() != "/") {
		return "unmatched"
	}
	return route
}
