package httpapi

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

//go:embed assets/openapi.json
var openapiJSON []byte

//go:embed assets/dashboard.html
var dashboardHTML []byte

func (s *Server) openapi(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(openapiJSON)
}

func (s *Server) dashboard(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'")
	return c.Send(dashboardHTML)
}
