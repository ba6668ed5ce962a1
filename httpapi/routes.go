package httpapi

import (
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/gofiber/contrib/otelfiber/v2"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"
)

// routes registers every route. openapi.json documents the same set; a
// test keeps the two in step.
func (s *Server) routes() {
	a := s.app
	a.Use(s.requestID)
	if s.cfg.Tracing {
		a.Use(s.tracing())
	}
	if s.cfg.AccessLog {
		a.Use(s.accessLog)
	}
	a.Use(s.observe)
	a.Use(s.recoverPanic)
	a.Get("/healthz", s.healthz)
	a.Get("/readyz", s.readyz)
	a.Get("/metrics", s.metricsHandler())
	a.Get("/openapi.json", s.openapi)
	a.Get("/", s.dashboard)
	a.Get("/ui/:file", s.uiFile)

	// Middleware is attached per route: a Fiber group's handlers would
	// apply to every route under its prefix, feeds included.
	feed := func(h fiber.Handler) []fiber.Handler { return []fiber.Handler{s.authenticate, s.rateLimit, h} }
	api := func(h fiber.Handler) []fiber.Handler {
		return []fiber.Handler{s.limitInFlight, s.authenticate, s.rateLimit, s.checkIdempotencyKey, h}
	}
	// Feeds hold their connection open: they are counted apart from the
	// in-flight requests.
	a.Get("/v1/events", feed(s.sse)...)
	a.Get("/v1/ws", feed(s.websocket)...)

	a.Put("/v1/stores/:store/items/:sku", api(s.putItem)...)
	a.Get("/v1/stores/:store/items/:sku", api(s.getItem)...)
	a.Get("/v1/stores/:store/items", api(s.listItems)...)
	a.Post("/v1/stores/:store/items/:sku/adjust", api(s.adjust)...)
	a.Post("/v1/stores/:store/items/:sku/moves", api(s.move)...)
	a.Post("/v1/stores/:store/fulfilments", api(s.fulfil)...)
	a.Get("/v1/stores/:store/items/:sku/history", api(s.history)...)
	a.Get("/v1/stores/:store/items/:sku/refusals", api(s.itemRefusals)...)
	a.Get("/v1/stores/:store/low-stock", api(s.lowStock)...)
	a.Post("/v1/stores/:store/checkout", api(s.checkout)...)
	a.Post("/v1/stores/:store/reservations", api(s.reserve)...)
	a.Get("/v1/stores", api(s.listStores)...)
	a.Get("/v1/reservations/:id", api(s.getReservation)...)
	a.Post("/v1/reservations/:id/commit", api(s.commit)...)
	a.Post("/v1/reservations/:id/release", api(s.release)...)
	a.Post("/v1/adjustments", api(s.bulkAdjust)...)
	a.Put("/v1/items", api(s.bulkSet)...)
	a.Get("/v1/items/:sku", api(s.availability)...)
	a.Post("/v1/admin/reconcile", api(s.reconcile)...)
	a.Post("/v1/admin/reconcile/:run/cancel", api(s.cancelReconcile)...)
	a.Post("/v1/transfers", api(s.createTransfer)...)
	a.Get("/v1/transfers", api(s.listTransfers)...)
	a.Get("/v1/transfers/:id", api(s.getTransfer)...)
	a.Post("/v1/transfers/:id/receive", api(s.receiveTransfer)...)
	a.Post("/v1/transfers/:id/cancel", api(s.cancelTransfer)...)
	a.Get("/v1/stores/:store/items/:sku/promise", api(s.promise)...)
	a.Get("/v1/items/:sku/promise", api(s.chainPromise)...)
	a.Get("/v1/admin/operations", api(s.operations)...)
	a.Get("/v1/admin/findings", api(s.listFindings)...)
	a.Get("/v1/admin/findings/:id", api(s.getFinding)...)
	a.Post("/v1/admin/findings/:id/resolve", api(s.resolveFinding)...)
	a.Post("/v1/admin/findings/:id/dismiss", api(s.dismissFinding)...)
	a.Post("/v1/webhooks", api(s.createWebhook)...)
	a.Get("/v1/webhooks", api(s.listWebhooks)...)
	a.Get("/v1/webhooks/:id", api(s.getWebhook)...)
	a.Delete("/v1/webhooks/:id", api(s.deleteWebhook)...)
	a.Get("/v1/webhooks/:id/deliveries", api(s.webhookDeliveries)...)
}

// tracing is the OpenTelemetry middleware of Config.Tracing: a server span
// per request, named by its route, with the request's id; the probes are
// left out.
func (s *Server) tracing() fiber.Handler {
	return otelfiber.Middleware(
		otelfiber.WithNext(func(c *fiber.Ctx) bool {
			switch c.Path() {
			case "/healthz", "/readyz", "/metrics":
				return true
			}
			return false
		}),
		otelfiber.WithCustomAttributes(func(c *fiber.Ctx) []attribute.KeyValue {
			return []attribute.KeyValue{attribute.String(logRequestID, s.request(c).id)}
		}),
	)
}

// recoverPanic turns a handler's panic into a 500 problem, logged with its
// stack, so one bad request never takes the server down.
func (s *Server) recoverPanic(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.logger(c).Error("handler panicked", zap.String(logPath, utils.CopyString(c.Path())), zap.Any("panic", r), zap.Stack("stack"))
			err = problem(http.StatusInternalServerError, "internal", "internal error")
		}
	}()
	return c.Next()
}

// headerIdempotencyKey is the request header of an idempotent write.
const headerIdempotencyKey = "Idempotency-Key"

// checkIdempotencyKey refuses a malformed or repeated Idempotency-Key
// before anything else looks at the request.
func (s *Server) checkIdempotencyKey(c *fiber.Ctx) error {
	if m := c.Method(); m != fiber.MethodPost && m != fiber.MethodPut {
		return c.Next() // reads ignore the header
	}
	k, err := singleHeader(c, headerIdempotencyKey)
	if err != nil {
		return err
	}
	if c.Request().Header.Peek(headerIdempotencyKey) != nil {
		if err := validKeyHeader(k); err != nil {
			return err
		}
	}
	return c.Next()
}

// singleHeader returns the value of the request header name, copied (Fiber
// reuses the request's memory), or "" when it is absent. A request that
// sends the header more than once is refused with 400: which value was meant
// is not for the server to guess.
func singleHeader(c *fiber.Ctx, name string) (string, error) {
	vs := c.Request().Header.PeekAll(name)
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return string(vs[0]), nil
	}
	return "", badRequest(fmt.Sprintf("the request has %d %s headers; send exactly one", len(vs), name)).with("field", name)
}

// requireJSON answers 415 unless the request says its body is JSON. With
// allowEmpty, a request without a body passes whatever it says.
func requireJSON(c *fiber.Ctx, allowEmpty bool) error {
	if allowEmpty && len(c.Body()) == 0 {
		return nil
	}
	ct := c.Get(fiber.HeaderContentType)
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		return nil
	}
	return problem(http.StatusUnsupportedMediaType, "unsupported-media-type",
		"the request body must be application/json").with("content_type", ct)
}
