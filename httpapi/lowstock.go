package httpapi

import (
	"context"
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/shelfline/inventory/engine"
)

// LowStock reads the items at or below their reorder point from the
// ledger (persist.Ledger.LowStock, over its partial index).
type LowStock interface {
	// LowStock returns up to limit items of store whose available units
	// are at or below their reorder point, in SKU order, as the ledger
	// last persisted them.
	LowStock(ctx context.Context, store string, limit int) ([]engine.Item, error)
}

// lowStock serves GET /v1/stores/{store}/low-stock: the replenishment list
// of a store, from PostgreSQL (it trails Redis by the persister's lag).
func (s *Server) lowStock(c *fiber.Ctx) error {
	store := c.Params("store")
	if err := callerOf(c).mustRead(store); err != nil {
		return err
	}
	if err := engine.ValidateStore(store); err != nil {
		return err
	}
	limit, err := queryLimit(c, 100, 1000)
	if err != nil {
		return err
	}
	if s.cfg.LowStock == nil {
		return unavailable("the ledger is off (INVENTORY_DATABASE_URL=off): the low-stock list is read from it")
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	items, err := s.cfg.LowStock.LowStock(ctx, store, limit)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || !isDomainErr(err) {
			s.logger(c).Warn("low stock", zapErr(err))
			return unavailable("the ledger is unreachable; retry shortly")
		}
		return err
	}
	if items == nil {
		items = []engine.Item{}
	}
	return c.JSON(fiber.Map{"items": items})
}
