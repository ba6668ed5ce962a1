package httpapi

import (
	"mime"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// routes registers every route. openapi.json documents the same set; a
// test keeps the two in step.
func (s *Server) routes() {
	a := s.app
	a.Use(s.observe)
	a.Get("/healthz", s.healthz)
	a.Get("/readyz", s.readyz)
	a.Get("/metrics", s.metricsHandler())
	a.Get("/openapi.json", s.openapi)
	a.Get("/", s.dashboard)

	// Feeds hold their connection open: they are counted apart from the
	// in-flight requests.
	feeds := a.Group("/v1", s.authenticate, s.rateLimit)
	feeds.Get("/events", s.sse)
	feeds.Get("/ws", s.websocket)

	v1 := a.Group("/v1", s.limitInFlight, s.authenticate, s.rateLimit, s.checkIdempotencyKey)
	v1.Put("/stores/:store/items/:sku", s.putItem)
	v1.Get("/stores/:store/items/:sku", s.getItem)
	v1.Get("/stores/:store/items", s.listItems)
	v1.Post("/stores/:store/items/:sku/adjust", s.adjust)
	v1.Get("/stores/:store/items/:sku/history", s.history)
	v1.Post("/stores/:store/checkout", s.checkout)
	v1.Post("/stores/:store/reservations", s.reserve)
	v1.Get("/stores", s.listStores)
	v1.Get("/reservations/:id", s.getReservation)
	v1.Post("/reservations/:id/commit", s.commit)
	v1.Post("/reservations/:id/release", s.release)
	v1.Post("/adjustments", s.bulkAdjust)
	v1.Get("/items/:sku", s.availability)
	v1.Post("/admin/reconcile", s.reconcile)
}

// checkIdempotencyKey refuses a malformed Idempotency-Key before anything
// else looks at the request.
func (s *Server) checkIdempotencyKey(c *fiber.Ctx) error {
	if k := c.Request().Header.Peek("Idempotency-Key"); k != nil {
		if err := validKeyHeader(string(k)); err != nil {
			return err
		}
	}
	return c.Next()
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
