package httpapi

import (
	"context"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/shelfline/inventory/engine"
)

// move moves units of an item between states (docs/design.md §2.1):
// 200 with the item.
func (s *Server) move(c *fiber.Ctx) error {
	store, sku := c.Params("store"), c.Params("sku")
	var b moveBody
	if err := decodeWrite(c, store, &b); err != nil {
		return err
	}
	if err := required("qty", b.Qty); err != nil {
		return err
	}
	req := engine.MoveRequest{Store: store, SKU: sku, From: b.From, To: b.To, Qty: b.Qty.V, Reason: b.Reason}
	return s.doWrite(c, func(ctx context.Context, op engine.Op) (result, error) {
		r, err := s.e.Move(ctx, req, op)
		if err != nil {
			return result{}, err
		}
		return result{status: http.StatusOK, body: r.Item, version: r.Item.Version, replayed: r.Replayed}, nil
	})
}

// fulfil hands committed units over, every line or none: 200 with the
// items, {"lines":[item…]} as a checkout answers.
func (s *Server) fulfil(c *fiber.Ctx) error {
	var b fulfilmentBody
	store, lines, err := linesRequest(c, &b, func() []lineBody { return b.Lines })
	if err != nil {
		return err
	}
	req := engine.FulfilRequest{Store: store, Lines: lines, Reference: b.Reference}
	return s.doWrite(c, func(ctx context.Context, op engine.Op) (result, error) {
		r, err := s.e.Fulfil(ctx, req, op)
		if err != nil {
			return result{}, err
		}
		return result{status: http.StatusOK, body: linesResult{Lines: r.Items}, replayed: r.Replayed}, nil
	})
}
