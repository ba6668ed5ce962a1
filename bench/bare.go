package bench

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"
)

// bareLua is the bare reference's script. It lives here rather than in
// luascripts/ because it is no part of the product: it is the floor the
// product's cost is measured against.
//
//go:embed bare.lua
var bareLua string

var bareScript = redis.NewScript(bareLua)

// BareServer is the bare reference: a Fiber app with one route,
// POST /v1/stores/{store}/checkout, that checks the bearer token, decodes
// the body, runs one EVALSHA (guard, decrement, XADD) and answers. Nothing
// else: no validation beyond what it needs, no idempotency, no metrics.
type BareServer struct {
	app    *fiber.App
	ln     net.Listener
	rdb    redis.UniversalClient
	prefix string
	done   chan error
}

// StartBareServer starts a bare server on a loopback port, with keys under
// prefix, accepting token. Stop it with Stop.
// checkoutBody is the body of a checkout as the bare server reads it.
type checkoutBody struct {
	Lines []Line `json:"lines"`
}

func StartBareServer(rdb redis.UniversalClient, prefix, token string) (*BareServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bare server: %w", err)
	}
	s := &BareServer{ln: ln, rdb: rdb, prefix: prefix, done: make(chan error, 1)}
	s.app = fiber.New(fiber.Config{DisableStartupMessage: true, IdleTimeout: 5 * time.Second})
	auth := "Bearer " + token
	s.app.Post("/v1/stores/:store/checkout", func(c *fiber.Ctx) error {
		if string(c.Request().Header.Peek(fiber.HeaderAuthorization)) != auth {
			return c.SendStatus(fiber.StatusUnauthorized)
		}
		var b checkoutBody
		if err := json.Unmarshal(c.Body(), &b); err != nil || len(b.Lines) != 1 || b.Lines[0].Qty < 1 {
			return c.SendStatus(fiber.StatusBadRequest)
		}
		store, sku := c.Params("store"), b.Lines[0].SKU
		n, err := bareScript.Run(c.UserContext(), s.rdb, []string{s.itemKey(store, sku), s.streamKey()}, b.Lines[0].Qty, store, sku).Int64()
		switch {
		case err != nil:
			return c.SendStatus(fiber.StatusServiceUnavailable)
		case n == -2:
			return c.SendStatus(fiber.StatusNotFound)
		case n == -1:
			c.Set(fiber.HeaderContentType, "application/problem+json")
			return c.Status(fiber.StatusConflict).SendString(`{"type":"/problems/insufficient-stock","status":409}`)
		}
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.SendString(`{"on_hand":` + strconv.FormatInt(n, 10) + `}`)
	})
	go func() { s.done <- s.app.Listener(ln) }()
	return s, nil
}

// URL is the server's base URL.
func (s *BareServer) URL() string { return "http://" + s.ln.Addr().String() }

func (s *BareServer) itemKey(store, sku string) string {
	return s.prefix + ":i:" + store + ":" + sku
}

func (s *BareServer) streamKey() string { return s.prefix + ":events" }

// Stop shuts the server down within ctx's deadline.
func (s *BareServer) Stop(ctx context.Context) error {
	if err := s.app.ShutdownWithContext(ctx); err != nil {
		return err
	}
	select {
	case <-s.done:
	case <-ctx.Done():
	}
	return nil
}

// bareTarget loads a BareServer over HTTP like the http target.
type bareTarget struct {
	*httpClient
	srv    *BareServer
	rdb    *redis.Client
	prefix string
}

func newBareTarget(ctx context.Context, cfg Config, run string) (*bareTarget, error) {
	rdb, err := newRedis(ctx, cfg.RedisURL, cfg.Workers)
	if err != nil {
		return nil, err
	}
	token := randomHex(16)
	prefix := "bench-" + run + "-bare"
	srv, err := StartBareServer(rdb, prefix, token)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	return &bareTarget{httpClient: newHTTPClient(srv.URL(), token, cfg.Workers, 0), srv: srv, rdb: rdb, prefix: prefix}, nil
}

func (t *bareTarget) Seed(ctx context.Context, items []SeedItem) error {
	if err := bareScript.Load(ctx, t.rdb).Err(); err != nil {
		return fmt.Errorf("bare: load script: %w", err)
	}
	_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, it := range items {
			p.HSet(ctx, t.srv.itemKey(it.Store, it.SKU), "oh", it.OnHand, "v", 1)
			p.XAdd(ctx, &redis.XAddArgs{Stream: t.srv.streamKey(), Values: []any{"s", it.Store, "k", it.SKU, "v", 1, "dh", it.OnHand, "oh", it.OnHand}})
		}
		return nil
	})
	return err
}

func (t *bareTarget) Items(ctx context.Context, refs []SeedItem) ([]ItemState, error) {
	out := make([]ItemState, len(refs))
	for i, r := range refs {
		out[i] = ItemState{Store: r.Store, SKU: r.SKU}
		vals, err := t.rdb.HMGet(ctx, t.srv.itemKey(r.Store, r.SKU), "oh", "v").Result()
		if err != nil {
			return nil, err
		}
		if vals[0] == nil {
			continue
		}
		out[i].OnHand, _ = strconv.ParseInt(fmt.Sprint(vals[0]), 10, 64)
		out[i].Version, _ = strconv.ParseInt(fmt.Sprint(vals[1]), 10, 64)
		out[i].Found = true
	}
	return out, nil
}

// CheckLedger checks the bare server's stream as its ledger: per item the
// versions 1..N in order with no gap, and the deltas summing to on_hand.
func (t *bareTarget) CheckLedger(ctx context.Context, items []ItemState) ([]string, error) {
	type acc struct{ n, last, sum int64 }
	seen := map[[2]string]*acc{}
	var v []string
	start := "-"
	for {
		msgs, err := t.rdb.XRangeN(ctx, t.srv.streamKey(), start, "+", 10000).Result()
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			k := [2]string{fmt.Sprint(m.Values["s"]), fmt.Sprint(m.Values["k"])}
			ver, _ := strconv.ParseInt(fmt.Sprint(m.Values["v"]), 10, 64)
			dh, _ := strconv.ParseInt(fmt.Sprint(m.Values["dh"]), 10, 64)
			a := seen[k]
			if a == nil {
				a = &acc{}
				seen[k] = a
			}
			if ver != a.last+1 && len(v) < 20 {
				v = append(v, fmt.Sprintf("stream %s/%s: version %d after %d", k[0], k[1], ver, a.last))
			}
			a.n++
			a.last = ver
			a.sum += dh
		}
		if len(msgs) < 10000 {
			break
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
	for _, it := range items {
		a := seen[[2]string{it.Store, it.SKU}]
		if !it.Found {
			continue
		}
		if a == nil {
			v = append(v, fmt.Sprintf("stream %s/%s: no events", it.Store, it.SKU))
			continue
		}
		if a.last != it.Version || a.n != it.Version || a.sum != it.OnHand {
			v = append(v, fmt.Sprintf("stream %s/%s: %d events up to version %d summing to %d; state has version %d on_hand %d",
				it.Store, it.SKU, a.n, a.last, a.sum, it.Version, it.OnHand))
		}
	}
	return v, nil
}

func (t *bareTarget) Close(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// Idle keep-alive connections first, or the shutdown waits for them.
	errs := []error{t.httpClient.Close(ctx), t.srv.Stop(sctx)}
	errs = append(errs, deletePrefix(ctx, t.rdb, t.prefix), t.rdb.Close())
	return errors.Join(errs...)
}

// HasLedger reports whether there is a ledger to check.
func (t *bareTarget) HasLedger() bool { return true }
