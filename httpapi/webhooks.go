package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/webhook"
)

// Webhooks keeps the webhook subscriptions and their delivery logs
// (webhook.Store). Every method's bad input is a *engine.ValidationError;
// an unknown id is webhook.ErrNotFound.
type Webhooks interface {
	Create(ctx context.Context, n webhook.NewSubscription) (webhook.Subscription, error)
	List(ctx context.Context) ([]webhook.Subscription, error)
	Get(ctx context.Context, id string) (webhook.Subscription, error)
	Delete(ctx context.Context, id string) error
	Deliveries(ctx context.Context, id string, limit int) ([]webhook.Delivery, error)
}

var _ Webhooks = (*webhook.Store)(nil)

// webhooks checks the caller is an admin and that subscriptions are kept.
func (s *Server) webhooks(c *fiber.Ctx) (Webhooks, error) {
	if err := callerOf(c).mustAdmin(); err != nil {
		return nil, err
	}
	if s.cfg.Webhooks == nil {
		return nil, unavailable("the ledger is off (INVENTORY_DATABASE_URL=off): webhook subscriptions live in PostgreSQL")
	}
	return s.cfg.Webhooks, nil
}

// webhookErr maps a store failure that is not the caller's to 503.
func (s *Server) webhookErr(c *fiber.Ctx, err error) error {
	var ve *engine.ValidationError
	if errors.Is(err, webhook.ErrNotFound) || errors.As(err, &ve) {
		return err
	}
	s.logger(c).Warn("webhooks", zapErr(err))
	return unavailable("PostgreSQL is unreachable; retry shortly")
}

func (s *Server) createWebhook(c *fiber.Ctx) error {
	wh, err := s.webhooks(c)
	if err != nil {
		return err
	}
	if err := requireJSON(c, false); err != nil {
		return err
	}
	var n webhook.NewSubscription
	if err := decodeStrict(c.Body(), &n); err != nil {
		return err
	}
	return s.doWrite(c, func(ctx context.Context, op engine.Op) (result, error) {
		if op.IdempotencyKey != "" {
			prev, err := s.e.ClaimResponse(ctx, op)
			if err != nil {
				return result{}, err
			}
			if prev != nil {
				var sub webhook.Subscription
				if err := json.Unmarshal(prev, &sub); err != nil {
					return result{}, err
				}
				return result{status: http.StatusCreated, loc: "/v1/webhooks/" + sub.ID, body: json.RawMessage(prev), replayed: true}, nil
			}
		}
		sub, err := wh.Create(ctx, n)
		if err != nil {
			if op.IdempotencyKey != "" {
				s.e.GiveBack(op)
			}
			return result{}, s.webhookErr(c, err)
		}
		if op.IdempotencyKey != "" {
			b, err := json.Marshal(sub)
			if err != nil {
				return result{}, err
			}
			if err := s.e.KeepResponse(ctx, op, b); err != nil {
				s.logger(c).Warn("keep webhook response", zapErr(err))
			}
		}
		return result{status: http.StatusCreated, loc: "/v1/webhooks/" + sub.ID, body: sub}, nil
	})
}

func (s *Server) listWebhooks(c *fiber.Ctx) error {
	wh, err := s.webhooks(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	subs, err := wh.List(ctx)
	if err != nil {
		return s.webhookErr(c, err)
	}
	return c.JSON(fiber.Map{"webhooks": subs})
}

func (s *Server) getWebhook(c *fiber.Ctx) error {
	wh, err := s.webhooks(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	sub, err := wh.Get(ctx, utils.CopyString(c.Params("id")))
	if err != nil {
		return s.webhookErr(c, err)
	}
	return c.JSON(sub)
}

func (s *Server) deleteWebhook(c *fiber.Ctx) error {
	wh, err := s.webhooks(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	if err := wh.Delete(ctx, utils.CopyString(c.Params("id"))); err != nil {
		return s.webhookErr(c, err)
	}
	return c.SendStatus(http.StatusNoContent)
}

func (s *Server) webhookDeliveries(c *fiber.Ctx) error {
	wh, err := s.webhooks(c)
	if err != nil {
		return err
	}
	limit, err := queryLimit(c, 100, 1000)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	ds, err := wh.Deliveries(ctx, utils.CopyString(c.Params("id")), limit)
	if err != nil {
		return s.webhookErr(c, err)
	}
	return c.JSON(fiber.Map{"deliveries": ds})
}
