package httpapi

import (
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/shelfline/inventory/engine"
)

// Available to promise (DESIGN §12).

// queryQty parses ?qty= as an integer 1..engine.MaxQty (required).
func queryQty(c *fiber.Ctx) (int64, error) {
	q := c.Query("qty")
	n, err := strconv.ParseInt(q, 10, 64)
	if q == "" || err != nil || strings.TrimLeft(q, "0123456789") != "" || n < 1 || n > engine.MaxQty {
		return 0, badRequest("qty is required and must be an integer 1.."+strconv.Itoa(engine.MaxQty)).with("field", "qty")
	}
	return n, nil
}

func (s *Server) promise(c *fiber.Ctx) error {
	store, sku := c.Params("store"), c.Params("sku")
	if err := callerOf(c).mustRead(store); err != nil {
		return err
	}
	qty, err := queryQty(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	p, err := s.e.PromiseAt(ctx, store, sku, qty)
	if err != nil {
		return err
	}
	return c.JSON(p)
}

func (s *Server) chainPromise(c *fiber.Ctx) error {
	sku := c.Params("sku")
	qty, err := queryQty(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	p, err := s.e.PromiseChain(ctx, sku, qty)
	if err != nil {
		return err
	}
	// A store token sees only its own store.
	if cl := callerOf(c); cl.Role == RoleStore {
		own := []engine.Promise{}
		for _, sp := range p.Stores {
			if sp.Store == cl.Store {
				own = append(own, sp)
			}
		}
		p.Stores = own
	}
	return c.JSON(p)
}
