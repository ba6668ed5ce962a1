package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/shelfline/inventory/engine"
)

// toLines converts decoded lines; a line without a qty is refused here
// (decoding), every other rule is the engine's.
func toLines(in []lineBody) ([]engine.Line, error) {
	out := make([]engine.Line, len(in))
	for i, l := range in {
		if !l.Qty.Set || l.Qty.Null {
			f := fmt.Sprintf("lines[%d].qty", i)
			return nil, badRequest(f+" is required and must be an integer").with("field", f)
		}
		out[i] = engine.Line{SKU: l.SKU, Qty: l.Qty.V}
	}
	return out, nil
}

// linesRequest is the prologue of checkout and reserve: the caller may
// write to the store, the body is JSON and decodes into b, and its lines
// convert.
func linesRequest(c *fiber.Ctx, b any, lines func() []lineBody) (string, []engine.Line, error) {
	store := c.Params("store")
	if err := decodeWrite(c, store, b); err != nil {
		return "", nil, err
	}
	ls, err := toLines(lines())
	return store, ls, err
}

// decodeWrite is the prologue of a handler that changes a store's stock:
// the caller may write to the store, and the body is JSON that decodes
// strictly into b.
func decodeWrite(c *fiber.Ctx, store string, b any) error {
	if err := callerOf(c).mustWrite(store); err != nil {
		return err
	}
	if err := requireJSON(c, false); err != nil {
		return err
	}
	return decodeStrict(c.Body(), b)
}

func (s *Server) checkout(c *fiber.Ctx) error {
	var b checkoutBody
	store, lines, err := linesRequest(c, &b, func() []lineBody { return b.Lines })
	if err != nil {
		return err
	}
	req := engine.CheckoutRequest{Store: store, Lines: lines, Customer: b.Customer, Channel: b.Channel, Fulfilment: b.Fulfilment}
	return s.doWrite(c, func(ctx context.Context, op engine.Op) (result, error) {
		r, err := s.e.Checkout(ctx, req, op)
		if err != nil {
			return result{}, err
		}
		return result{status: http.StatusOK, body: linesResult{Lines: r.Items}, replayed: r.Replayed}, nil
	})
}
