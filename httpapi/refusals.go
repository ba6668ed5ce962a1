package httpapi

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"go.uber.org/zap"

	"github.com/shelfline/inventory/engine"
)

// refusalFlush is how often the refusals counted in this process go to
// Redis: a flash sale's thousands of refusals per second cost Redis one
// pipeline per interval, and the refused requests never wait on it.
const refusalFlush = 200 * time.Millisecond

// refusals gathers the insufficient-stock refusals of store routes, per
// item, and adds them to the engine's counts (engine.CountRefusals) in the
// background.
type refusals struct {
	e    *engine.Engine
	log  *zap.Logger
	done <-chan struct{}

	once    sync.Once
	mu      sync.Mutex
	pending map[engine.ItemRef]int64
}

func newRefusals(e *engine.Engine, log *zap.Logger, done <-chan struct{}) *refusals {
	return &refusals{e: e, log: log, done: done, pending: map[engine.ItemRef]int64{}}
}

// count notes a refused request's short lines at store.
func (r *refusals) count(store string, sh []engine.Shortage) {
	if store == "" || len(sh) == 0 {
		return
	}
	r.once.Do(func() { go r.run() })
	r.mu.Lock()
	for _, l := range sh {
		r.pending[engine.ItemRef{Store: store, SKU: l.SKU}]++
	}
	r.mu.Unlock()
}

// local returns the count of an item not yet flushed.
func (r *refusals) local(store, sku string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending[engine.ItemRef{Store: store, SKU: sku}]
}

func (r *refusals) run() {
	t := time.NewTicker(refusalFlush)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			r.flush()
			return
		case <-t.C:
			r.flush()
		}
	}
}

// flush sends the pending counts; they are dropped from pending only once
// Redis has them, so a failed flush is retried with the next one. (A
// pipeline that failed after some counts landed may count those twice:
// the numbers are for people watching, not stock.)
func (r *refusals) flush() {
	r.mu.Lock()
	batch := r.pending
	r.pending = map[engine.ItemRef]int64{}
	r.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.e.CountRefusals(ctx, batch); err != nil {
		r.log.Warn("refusal counts", zapErr(err))
		r.mu.Lock()
		for k, n := range batch {
			if len(r.pending) < 100000 { // bounded while Redis is away
				r.pending[k] += n
			}
		}
		r.mu.Unlock()
	}
}

// noteRefusal counts an insufficient-stock answer of a store route.
func (s *Server) noteRefusal(c *fiber.Ctx, p *Problem) {
	if p.Status != fiber.StatusConflict || !strings.HasSuffix(p.Type, "/insufficient-stock") {
		return
	}
	sh, _ := p.Extra["shortages"].([]engine.Shortage)
	store := c.Params("store")
	if store == "" || len(sh) == 0 {
		return
	}
	s.refused.count(utils.CopyString(store), sh)
}

// itemRefusals serves GET /v1/stores/{store}/items/{sku}/refusals: how many
// requests were refused for insufficient stock of the item (its line was
// short), counted by every API process, for a day after the last one.
func (s *Server) itemRefusals(c *fiber.Ctx) error {
	store, sku := utils.CopyString(c.Params("store")), utils.CopyString(c.Params("sku"))
	if err := callerOf(c).mustRead(store); err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	n, err := s.e.Refusals(ctx, store, sku)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"store": store, "sku": sku, "refusals": n + s.refused.local(store, sku)})
}
