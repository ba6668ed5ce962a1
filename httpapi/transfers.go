package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/shelfline/inventory/engine"
)

// Transfers (DESIGN §11, docs/design.md §20). A store token may create
// transfers from its store, receive those to its store, cancel those from
// its store, and read those that touch its store.

type transferBody struct {
	From       *string    `json:"from"`
	To         string     `json:"to"`
	Lines      []lineBody `json:"lines"`
	ExpectedAt *string    `json:"expected_at"`
	Reference  *string    `json:"reference"`
}

type receiveLineBody struct {
	SKU      string `json:"sku"`
	Received Int    `json:"received"`
	Damaged  Int    `json:"damaged"`
	Missing  Int    `json:"missing"`
}

type receiveBody struct {
	Lines []receiveLineBody `json:"lines"`
}

func (s *Server) createTransfer(c *fiber.Ctx) error {
	cl := callerOf(c)
	if cl.Role == RoleReader {
		return forbidden("a reader token may not change stock")
	}
	if err := requireJSON(c, false); err != nil {
		return err
	}
	var b transferBody
	if err := decodeStrict(c.Body(), &b); err != nil {
		return err
	}
	req := engine.TransferRequest{To: b.To}
	if b.From != nil {
		req.From = *b.From
	}
	if cl.Role == RoleStore && (req.From == "" || req.From != cl.Store) {
		return forbidden(fmt.Sprintf("this token may only create transfers from store %s", cl.Store))
	}
	lines, err := toLines(b.Lines)
	if err != nil {
		return err
	}
	req.Lines = lines
	if b.ExpectedAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *b.ExpectedAt)
		if err != nil {
			return badRequest("expected_at must be an RFC 3339 time").with("field", "expected_at")
		}
		req.ExpectedAt = &t
	}
	if b.Reference != nil {
		req.Reference = *b.Reference
	}
	return s.doWrite(c, func(ctx context.Context, op engine.Op) (result, error) {
		r, err := s.e.CreateTransfer(ctx, req, op)
		if err != nil {
			return result{}, err
		}
		return result{status: http.StatusCreated, body: r.Transfer, loc: "/v1/transfers/" + r.Transfer.ID, replayed: r.Replayed}, nil
	})
}

// touches reports whether a transfer has an end at store.
func touches(t engine.Transfer, store string) bool {
	return t.To == store || (t.From != nil && *t.From == store)
}

// transferFor reads a transfer for the caller: 404 when absent, 403 when
// a store token asks for one that does not touch its store.
// TransferLedger reads transfers from the ledger (persist.Ledger): those
// Redis deleted after their retention, and the list of every store's
// (docs/design.md §20.8).
type TransferLedger interface {
	// Transfer returns a transfer; ok is false when the ledger lacks it.
	Transfer(ctx context.Context, id string) (t engine.Transfer, ok bool, err error)
	// Transfers returns a page in (created, id) order after f.Cursor and
	// the next page's cursor ("" at the end).
	Transfers(ctx context.Context, f engine.TransferFilter) ([]engine.Transfer, string, error)
}

// readTransfer reads a transfer from Redis, or from the ledger when Redis
// no longer holds it.
func (s *Server) readTransfer(ctx context.Context, id string) (engine.Transfer, error) {
	t, err := s.e.GetTransfer(ctx, id)
	if errors.Is(err, engine.ErrNotFound) && s.cfg.TransferLedger != nil && engine.ValidID(id) {
		lt, ok, lerr := s.cfg.TransferLedger.Transfer(ctx, id)
		if lerr != nil {
			return t, ledgerUnavailable(lerr)
		}
		if ok {
			return lt, nil
		}
	}
	return t, err
}

func (s *Server) transferFor(ctx context.Context, cl *caller, id string) (engine.Transfer, error) {
	t, err := s.readTransfer(ctx, id)
	if err != nil {
		return t, transferProblem(id, err)
	}
	if cl.Role == RoleStore && !touches(t, cl.Store) {
		return t, forbidden(fmt.Sprintf("this token may only use transfers of store %s", cl.Store))
	}
	return t, nil
}

// transferProblem maps what the engine answered about transfer id: an id
// of any shape that names no transfer is 404.
func transferProblem(id string, err error) error {
	var (
		ve  *engine.ValidationError
		tse *engine.TransferStateError
		ore *engine.OverReceiptError
	)
	switch {
	case errors.Is(err, engine.ErrNotFound), errors.As(err, &ve) && ve.Field == "transfer id":
		if !engine.ValidID(id) {
			return problem(http.StatusNotFound, "not-found", "this transfer does not exist")
		}
		return problem(http.StatusNotFound, "not-found", fmt.Sprintf("transfer %s does not exist", id))
	case errors.As(err, &tse):
		detail := fmt.Sprintf("the transfer is %s", tse.Status)
		if tse.Status == "partly_received" {
			detail = "units of the transfer were received already; only a transfer of which nothing was received can be cancelled"
		}
		return problem(http.StatusConflict, "transfer-state", detail).with("transfer_status", tse.Status)
	case errors.As(err, &ore):
		parts := ""
		for i, l := range ore.Lines {
			if i > 0 {
				parts += "; "
			}
			parts += fmt.Sprintf("%s %d received, %d open", l.SKU, l.Requested, l.Open)
		}
		return problem(http.StatusConflict, "over-receipt", "the receipt passes what is open: "+parts).with("lines", ore.Lines)
	}
	return err
}

func (s *Server) getTransfer(c *fiber.Ctx) error {
	id := utils.CopyString(c.Params("id"))
	ctx, cancel := s.ctx(c)
	defer cancel()
	t, err := s.transferFor(ctx, callerOf(c), id)
	if err != nil {
		return err
	}
	return c.JSON(t)
}

func (s *Server) listTransfers(c *fiber.Ctx) error {
	cl := callerOf(c)
	f := engine.TransferFilter{Store: c.Query("store"), Status: c.Query("status"), Cursor: c.Query("cursor")}
	if cl.Role == RoleStore {
		if f.Store == "" {
			f.Store = cl.Store
		}
		if err := cl.mustRead(f.Store); err != nil {
			return err
		}
	}
	limit, err := queryLimit(c, 100, engine.MaxListLimit)
	if err != nil {
		return err
	}
	f.Limit = limit
	ctx, cancel := s.ctx(c)
	defer cancel()
	ts, next, err := s.listTransfersFrom(ctx, f)
	if err != nil {
		return err
	}
	var nc any
	if next != "" {
		nc = next
	}
	return c.JSON(fiber.Map{"transfers": ts, "next_cursor": nc})
}

func (s *Server) receiveTransfer(c *fiber.Ctx) error {
	cl := callerOf(c)
	if cl.Role == RoleReader {
		return forbidden("a reader token may not change stock")
	}
	id := utils.CopyString(c.Params("id"))
	if err := requireJSON(c, false); err != nil {
		return err
	}
	var b receiveBody
	if err := decodeStrict(c.Body(), &b); err != nil {
		return err
	}
	lines := make([]engine.ReceiveLine, len(b.Lines))
	for i, l := range b.Lines {
		lines[i] = engine.ReceiveLine{SKU: l.SKU, Received: l.Received.V, Damaged: l.Damaged.V, Missing: l.Missing.V}
	}
	if cl.Role == RoleStore {
		ctx, cancel := s.ctx(c)
		t, err := s.transferFor(ctx, cl, id)
		cancel()
		if err != nil {
			return err
		}
		if t.To != cl.Store {
			return forbidden(fmt.Sprintf("this token may only receive transfers to store %s", cl.Store))
		}
	}
	return s.doWrite(c, func(ctx context.Context, op engine.Op) (result, error) {
		r, err := s.e.ReceiveTransfer(ctx, id, lines, op)
		if err != nil {
			return result{}, transferProblem(id, err)
		}
		return result{status: http.StatusOK, body: r.Transfer, replayed: r.Replayed}, nil
	})
}

func (s *Server) cancelTransfer(c *fiber.Ctx) error {
	cl := callerOf(c)
	if cl.Role == RoleReader {
		return forbidden("a reader token may not change stock")
	}
	id := utils.CopyString(c.Params("id"))
	if err := requireJSON(c, true); err != nil {
		return err
	}
	if len(c.Body()) > 0 {
		if err := decodeStrict(c.Body(), &emptyBody{}); err != nil {
			return err
		}
	}
	if cl.Role == RoleStore {
		ctx, cancel := s.ctx(c)
		t, err := s.transferFor(ctx, cl, id)
		cancel()
		if err != nil {
			return err
		}
		if t.From == nil || *t.From != cl.Store {
			return forbidden(fmt.Sprintf("this token may only cancel transfers from store %s", cl.Store))
		}
	}
	return s.doWrite(c, func(ctx context.Context, op engine.Op) (result, error) {
		r, err := s.e.CancelTransfer(ctx, id, op)
		if err != nil {
			return result{}, transferProblem(id, err)
		}
		return result{status: http.StatusOK, body: r.Transfer, replayed: r.Replayed}, nil
	})
}

// listTransfersFrom answers a list. Without a ledger: Redis alone (every
// partition when no store is named). With one: every store's transfers come
// from the ledger (one index range), a store's from Redis and the ledger
// merged (Redis has the newest, the ledger those Redis deleted after their
// retention); either way Redis' record wins over the ledger's older copy.
func (s *Server) listTransfersFrom(ctx context.Context, f engine.TransferFilter) ([]engine.Transfer, string, error) {
	f, err := engine.ValidTransferFilter(f)
	if err != nil {
		return nil, "", err
	}
	tl := s.cfg.TransferLedger
	if tl == nil {
		return s.e.ListTransfers(ctx, f)
	}
	var fromRedis []engine.Transfer
	redisNext := ""
	if f.Store != "" {
		if fromRedis, redisNext, err = s.e.ListTransfers(ctx, f); err != nil {
			return nil, "", err
		}
	}
	fromLedger, ledgerNext, err := tl.Transfers(ctx, f)
	if err != nil {
		return nil, "", ledgerUnavailable(err)
	}
	seen := make(map[string]bool, len(fromRedis))
	for _, t := range fromRedis {
		seen[t.ID] = true
	}
	var others []string
	for _, t := range fromLedger {
		if !seen[t.ID] {
			others = append(others, t.ID)
		}
	}
	fresh, err := s.e.GetTransfers(ctx, others)
	if err != nil {
		return nil, "", err
	}
	all := fromRedis
	for _, t := range fromLedger {
		if seen[t.ID] {
			continue
		}
		if r, ok := fresh[t.ID]; ok {
			t = r
		}
		if f.Status == "" || t.Status == f.Status {
			all = append(all, t)
		}
	}
	sort.Slice(all, func(i, j int) bool { return transferBefore(all[i], all[j]) })
	next := ""
	if len(all) > f.Limit {
		all = all[:f.Limit]
		next = transferCursorOf(all[len(all)-1])
	} else if redisNext != "" || ledgerNext != "" {
		if len(all) > 0 {
			next = transferCursorOf(all[len(all)-1])
		} else {
			next = max(redisNext, ledgerNext)
		}
	}
	if all == nil {
		all = []engine.Transfer{}
	}
	return all, next, nil
}

func transferBefore(a, b engine.Transfer) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return a.ID < b.ID
}

func transferCursorOf(t engine.Transfer) string {
	return strconv.FormatInt(t.CreatedAt.UnixMilli(), 10) + ":" + t.ID
}

// ledgerUnavailable answers 503 when the ledger fails to answer a read of
// transfers.
func ledgerUnavailable(err error) error {
	_ = err
	return unavailable("the ledger is unreachable; retry shortly")
}
