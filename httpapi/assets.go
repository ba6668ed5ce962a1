package httpapi

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"

	"github.com/gofiber/fiber/v2"
)

//go:embed assets/openapi.json
var openapiJSON []byte

// uiFiles is the dashboard: plain HTML, CSS and ES modules, served as they
// are (no build step). index.html is served at /, the rest under /ui/.
//
//go:embed assets/ui
var uiFiles embed.FS

var uiFS, _ = fs.Sub(uiFiles, "assets/ui")

// dashboardCSP allows the dashboard's own files only: no inline script or
// style, no other origin.
const dashboardCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"

func (s *Server) openapi(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(openapiJSON)
}

func (s *Server) dashboard(c *fiber.Ctx) error {
	return sendUIFile(c, "index.html")
}

// uiFile serves GET /ui/{file}: one of the dashboard's files.
func (s *Server) uiFile(c *fiber.Ctx) error {
	return sendUIFile(c, c.Params("file"))
}

func sendUIFile(c *fiber.Ctx, name string) error {
	if name == "" || path.Base(name) != name || name[0] == '.' {
		return problem(http.StatusNotFound, "not-found", "no such dashboard file")
	}
	b, err := fs.ReadFile(uiFS, name)
	if err != nil {
		return problem(http.StatusNotFound, "not-found", "no such dashboard file")
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if path.Ext(name) == ".js" {
		ct = "text/javascript; charset=utf-8"
	}
	c.Set(fiber.HeaderContentType, ct)
	c.Set("Content-Security-Policy", dashboardCSP)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	return c.Send(b)
}
