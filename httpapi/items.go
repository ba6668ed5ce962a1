package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/shelfline/inventory/engine"
)

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// ifMatch is a request's If-Match: "*" (any existing item) or the versions
// its strong entity tags name. A weak tag (W/"4") never matches, since
// If-Match compares strongly (RFC 9110 §13.1.1), and neither does a member
// that is no tag of ours.
type ifMatch struct {
	star     bool
	versions []int64
}

// ifMatchOf reads the request's If-Match fields (several fields form one
// list, RFC 9110 §5.3). ok is false when there is none.
func ifMatchOf(c *fiber.Ctx) (m ifMatch, ok bool) {
	var members []string
	for _, f := range c.Request().Header.PeekAll(fiber.HeaderIfMatch) {
		for _, t := range strings.Split(string(f), ",") {
			if t = strings.TrimSpace(t); t != "" {
				members = append(members, t)
			}
		}
	}
	if len(members) == 0 {
		return ifMatch{}, false
	}
	for _, t := range members {
		if t == "*" {
			m.star = true
			continue
		}
		if len(t) < 3 || t[0] != '"' || t[len(t)-1] != '"' {
			continue
		}
		if v, err := strconv.ParseInt(t[1:len(t)-1], 10, 64); err == nil && v > 0 && strconv.FormatInt(v, 10) == t[1:len(t)-1] {
			m.versions = append(m.versions, v)
		}
	}
	return m, true
}

// has reports whether m matches an item at version v (0: absent).
func (m ifMatch) has(v int64) bool {
	return v > 0 && (m.star || slices.Contains(m.versions, v))
}

// maxIfMatchRetries bounds how often a write under a multi-tag If-Match is
// tried again after a concurrent change moved the item to another version
// the list also names.
const maxIfMatchRetries = 3

// underIfMatch runs write with the version it must expect for m to hold.
// One tag is handed to the engine as is, which compares atomically; for a
// list or "*" the item is read and the write expects the version read, when
// m names it, so it is still atomic: a change in between fails the write,
// which is tried again if the new version is named too. A keyed request
// whose precondition fails on the version read still goes to the engine,
// which checks the key before the version: the retry of a request that
// succeeded replays instead of failing on the version it changed itself.
func (s *Server) underIfMatch(ctx context.Context, store, sku string, m ifMatch, keyed bool, write func(expect int64) (result, error)) (result, error) {
	if !m.star && len(m.versions) == 1 {
		return write(m.versions[0])
	}
	for try := 0; ; try++ {
		it, err := s.e.GetItem(ctx, store, sku)
		if err != nil && !errors.Is(err, engine.ErrNotFound) {
			return result{}, err
		}
		if err != nil || !m.has(it.Version) {
			if keyed && len(m.versions) > 0 {
				return write(m.versions[0])
			}
			if err != nil {
				return result{}, preconditionFailed("If-Match but the item does not exist").with("current_version", 0)
			}
			return result{}, problemFor(&engine.VersionMismatchError{Current: it.Version})
		}
		res, err := write(it.Version)
		var vme *engine.VersionMismatchError
		if errors.As(err, &vme) && m.has(vme.Current) && try < maxIfMatchRetries {
			continue
		}
		return res, err
	}
}

// noneMatch reports whether If-None-Match h matches an item of version v.
func noneMatch(h string, v int64) bool {
	for _, t := range strings.Split(h, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag(v) {
			return true
		}
	}
	return false
}

func preconditionFailed(detail string) *Problem {
	return problem(http.StatusPreconditionFailed, "version-mismatch", detail)
}

func (s *Server) putItem(c *fiber.Ctx) error {
	store, sku := c.Params("store"), c.Params("sku")
	var b setBody
	if err := decodeWrite(c, store, &b); err != nil {
		return err
	}
	if err := required("on_hand", b.OnHand); err != nil {
		return err
	}
	req := engine.SetRequest{Store: store, SKU: sku, OnHand: b.OnHand.V}
	// Absent keeps the current setting; null clears it.
	if b.ReorderPoint.Set {
		if b.ReorderPoint.Null {
			req.ClearReorderPoint = true
		} else {
			req.ReorderPoint = &b.ReorderPoint.V
		}
	}
	if b.MaxPerCustomer.Set {
		if b.MaxPerCustomer.Null {
			req.ClearMaxPerCustomer = true
		} else {
			req.MaxPerCustomer = &b.MaxPerCustomer.V
		}
	}
	if b.SafetyStock.Set {
		if b.SafetyStock.Null {
			req.ClearSafetyStock = true
		} else {
			req.SafetyStock = &b.SafetyStock.V
		}
	}
	im, hasIM := ifMatchOf(c)
	inm := c.Get(fiber.HeaderIfNoneMatch)
	return s.doWrite(c, func(ctx context.Context, op engine.Op) (result, error) {
		set := func(req engine.SetRequest) (result, error) {
			r, err := s.e.Set(ctx, req, op)
			if err != nil {
				return result{}, err
			}
			st := http.StatusOK
			loc := ""
			if r.Created {
				st = http.StatusCreated
				loc = "/v1/stores/" + store + "/items/" + sku
			}
			return result{status: st, body: r.Item, version: r.Item.Version, loc: loc, replayed: r.Replayed}, nil
		}
		switch {
		case hasIM:
			return s.underIfMatch(ctx, store, sku, im, op.IdempotencyKey != "", func(expect int64) (result, error) {
				req.ExpectVersion = &expect
				return set(req)
			})
		case strings.TrimSpace(inm) == "*":
			zero := int64(0)
			req.ExpectVersion = &zero
		}
		return set(req)
	})
}

func (s *Server) getItem(c *fiber.Ctx) error {
	store, sku := c.Params("store"), c.Params("sku")
	if err := callerOf(c).mustRead(store); err != nil {
		return err
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	it, err := s.e.GetItem(ctx, store, sku)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, etag(it.Version))
	if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" && noneMatch(inm, it.Version) {
		return c.SendStatus(http.StatusNotModified)
	}
	return c.JSON(it)
}

func (s *Server) listItems(c *fiber.Ctx) error {
	store := c.Params("store")
	if err := callerOf(c).mustRead(store); err != nil {
		return err
	}
	limit, err := queryLimit(c, 100, engine.MaxListLimit)
	if err != nil {
		return err
	}
	cursor := c.Query("cursor")
	ctx, cancel := s.ctx(c)
	defer cancel()
	items, next, err := s.e.ListItems(ctx, store, cursor, limit)
	if err != nil {
		return err
	}
	var nc any
	if next != "" {
		nc = next
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": nc})
}

// queryLimit parses ?limit= as an integer 1..max, def when absent.
func queryLimit(c *fiber.Ctx, def, max int) (int, error) {
	q := c.Query("limit")
	if q == "" {
		return def, nil
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 1 || n > max || strings.TrimLeft(q, "0123456789") != "" {
		return 0, badRequest("limit must be an integer 1.."+strconv.Itoa(max)).with("field", "limit")
	}
	return n, nil
}

func (s *Server) adjust(c *fiber.Ctx) error {
	store, sku := c.Params("store"), c.Params("sku")
	var b adjustBody
	if err := decodeWrite(c, store, &b); err != nil {
		return err
	}
	if err := required("delta", b.Delta); err != nil {
		return err
	}
	req := engine.AdjustRequest{Store: store, SKU: sku, Delta: b.Delta.V, State: b.State, Reason: b.Reason}
	im, hasIM := ifMatchOf(c)
	return s.doWrite(c, func(ctx context.Context, op engine.Op) (result, error) {
		adjust := func(req engine.AdjustRequest) (result, error) {
			r, err := s.e.Adjust(ctx, req, op)
			if err != nil {
				if hasIM && errors.Is(err, engine.ErrNotFound) {
					return result{}, preconditionFailed("If-Match but the item does not exist").with("current_version", 0)
				}
				return result{}, err
			}
			return result{status: http.StatusOK, body: r.Item, version: r.Item.Version, replayed: r.Replayed}, nil
		}
		if hasIM && !(im.star && len(im.versions) == 0) {
			return s.underIfMatch(ctx, store, sku, im, op.IdempotencyKey != "", func(expect int64) (result, error) {
				req.ExpectVersion = &expect
				return adjust(req)
			})
		}
		// No If-Match, or a bare "*": any existing item will do, which the
		// adjustment itself checks.
		return adjust(req)
	})
}

func (s *Server) availability(c *fiber.Ctx) error {
	sku := c.Params("sku")
	ctx, cancel := s.ctx(c)
	defer cancel()
	a, err := s.e.Availability(ctx, sku)
	if err != nil {
		return err
	}
	// A store token sees only its own store.
	if cl := callerOf(c); cl.Role == RoleStore {
		f := engine.Availability{SKU: a.SKU, Stores: []engine.Item{}}
		for _, it := range a.Stores {
			if it.Store == cl.Store {
				f.Stores = append(f.Stores, it)
				f.Available += it.Available
			}
		}
		a = f
	}
	return c.JSON(a)
}

func (s *Server) listStores(c *fiber.Ctx) error {
	ctx, cancel := s.ctx(c)
	defer cancel()
	stores, err := s.e.Stores(ctx)
	if err != nil {
		return err
	}
	if cl := callerOf(c); cl.Role == RoleStore {
		own := []string{}
		for _, st := range stores {
			if st == cl.Store {
				own = append(own, st)
			}
		}
		stores = own
	}
	return c.JSON(fiber.Map{"stores": stores})
}

func (s *Server) history(c *fiber.Ctx) error {
	store, sku := c.Params("store"), c.Params("sku")
	if err := callerOf(c).mustRead(store); err != nil {
		return err
	}
	if err := engine.ValidateItemRef(store, sku); err != nil {
		return err
	}
	limit, err := queryLimit(c, 100, 1000)
	if err != nil {
		return err
	}
	if s.cfg.Ledger == nil {
		return unavailable("the ledger is off (INVENTORY_DATABASE_URL=off): no history is kept")
	}
	ctx, cancel := s.ctx(c)
	defer cancel()
	evs, err := s.cfg.Ledger.History(ctx, store, sku, limit)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || !isDomainErr(err) {
			s.logger(c).Warn("history", zapErr(err))
			return unavailable("the ledger is unreachable; retry shortly")
		}
		return err
	}
	if len(evs) == 0 {
		if _, err := s.e.GetItem(ctx, store, sku); err != nil {
			return err
		}
	}
	if evs == nil {
		evs = []engine.Event{}
	}
	return c.JSON(fiber.Map{"events": evs})
}

func isDomainErr(err error) bool {
	var ve *engine.ValidationError
	return errors.Is(err, engine.ErrNotFound) || errors.As(err, &ve)
}

func (s *Server) reconcile(c *fiber.Ctx) error {
	if err := callerOf(c).mustAdmin(); err != nil {
		return err
	}
	if err := requireJSON(c, true); err != nil {
		return err
	}
	if len(c.Body()) > 0 {
		if err := decodeStrict(c.Body(), &emptyBody{}); err != nil {
			return err
		}
	}
	mode := utils.CopyString(c.Query("mode", "check"))
	if mode != "check" && mode != "repair" {
		return badRequest("mode must be check or repair").with("field", "mode")
	}
	if s.cfg.Reconciler == nil {
		return unavailable("the ledger is off (INVENTORY_DATABASE_URL=off): there is nothing to reconcile against")
	}
	return s.doWriteTimeout(c, 0, func(ctx context.Context, op engine.Op) (result, error) {
		if op.IdempotencyKey == "" {
			rep, err := s.cfg.Reconciler.Reconcile(ctx, mode)
			if err != nil {
				return result{}, reconcileProblem(err)
			}
			return result{status: http.StatusOK, body: rep}, nil
		}
		// A run is not a stock write: the engine keeps its whole report.
		prev, err := s.e.ClaimResponse(ctx, op)
		if err != nil {
			return result{}, err
		}
		if prev != nil {
			return result{status: http.StatusOK, body: json.RawMessage(prev), replayed: true}, nil
		}
		rep, err := s.cfg.Reconciler.Reconcile(ctx, mode)
		if err != nil {
			s.e.GiveBack(op)
			return result{}, reconcileProblem(err)
		}
		b, err := json.Marshal(rep)
		if err != nil {
			return result{}, err
		}
		if err := s.e.KeepResponse(ctx, op, b); err != nil {
			s.logger(c).Warn("keep reconcile report", zapErr(err))
		}
		return result{status: http.StatusOK, body: json.RawMessage(b)}, nil
	})
}
