package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Transfers (docs/design.md §20, DESIGN §11). A transfer brings units to a
// location, from another location or from a supplier. Its record lives in
// the partition of its destination, which decides its status; the source
// keeps an outbound marker. A transfer from a location is a chain of
// idempotent steps, each one script in one partition (luascripts/
// transfer.lua): ship (source), expect (destination); cancel (destination),
// return (source). The first half of each pair queues the second in its
// partition's pending set; the caller runs it at once, and a TransferWorker
// runs any that is still there once due (a crash, a lost reply, a failover
// in between).

// Transfer statuses.
const (
	TransferInTransit = "in_transit"
	TransferReceived  = "received"
	TransferCancelled = "cancelled"
)

// Transfer event types (docs/design.md §5.1).
const (
	EventTransferOut      = "TRANSFER_OUT"
	EventTransferExpected = "TRANSFER_EXPECTED"
	EventTransferIn       = "TRANSFER_IN"
	EventTransferLoss     = "TRANSFER_LOSS"
	EventTransferCancel   = "TRANSFER_CANCEL"
)

// Transfer is a transfer as clients see it.
type Transfer struct {
	ID string `json:"id"`
	// From is the source location; nil for a supplier's delivery.
	From   *string        `json:"from"`
	To     string         `json:"to"`
	Status string         `json:"status"`
	Lines  []TransferLine `json:"lines"`
	// ExpectedAt is when the units should arrive; nil when unknown.
	ExpectedAt *time.Time `json:"expected_at"`
	// Reference is free text (a purchase order); nil when none.
	Reference *string   `json:"reference"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// TransferLine is one SKU of a transfer and what has become of its units.
type TransferLine struct {
	SKU      string `json:"sku"`
	Qty      int64  `json:"qty"`
	Received int64  `json:"received"`
	Damaged  int64  `json:"damaged"`
	Missing  int64  `json:"missing"`
}

// Open returns the units of the line not yet accounted for.
func (l TransferLine) Open() int64 { return l.Qty - l.Received - l.Damaged - l.Missing }

// TransferRequest creates a transfer.
type TransferRequest struct {
	// From is the source; empty for a supplier's delivery.
	From string
	To   string
	// Lines holds 1..MaxLines lines with distinct SKUs, qty 1..MaxQty.
	Lines []Line
	// ExpectedAt, when set, is the expected arrival.
	ExpectedAt *time.Time
	// Reference is free text of at most MaxReasonLen characters.
	Reference string
}

// ReceiveLine is what arrived of one SKU of a transfer.
type ReceiveLine struct {
	SKU      string
	Received int64
	Damaged  int64
	Missing  int64
}

// TransferResult is the outcome of a transfer write.
type TransferResult struct {
	Transfer Transfer
	// Replayed is true when the result was stored by an earlier request with
	// the same idempotency key and nothing changed now.
	Replayed bool
}

// TransferStateError reports a transfer that is no longer in transit (its
// status), or one that was partly received (status "partly_received") when
// asked to cancel. It matches ErrConflict.
type TransferStateError struct {
	Status string
}

func (e *TransferStateError) Error() string { return "transfer is " + e.Status }

// Is reports whether target is ErrConflict.
func (e *TransferStateError) Is(target error) bool { return target == ErrConflict }

// OverReceipt is a receipt line that passes what is open.
type OverReceipt struct {
	SKU       string `json:"sku"`
	Requested int64  `json:"requested"`
	Open      int64  `json:"open"`
}

// OverReceiptError reports receipt lines that pass what is open. It matches
// ErrConflict.
type OverReceiptError struct {
	Lines []OverReceipt
}

func (e *OverReceiptError) Error() string {
	parts := make([]string, len(e.Lines))
	for i, l := range e.Lines {
		parts[i] = fmt.Sprintf("%s receives %d, %d open", l.SKU, l.Requested, l.Open)
	}
	return "receipt passes what is open: " + strings.Join(parts, "; ")
}

// Is reports whether target is ErrConflict.
func (e *OverReceiptError) Is(target error) bool { return target == ErrConflict }

// transferRequest is the transfer script's request (luascripts/
// transfer.lua, "Request members").
type transferRequest struct {
	Op         string   `json:"op"`
	ID         string   `json:"id,omitempty"`
	From       string   `json:"from,omitempty"`
	To         string   `json:"to,omitempty"`
	Lines      any      `json:"lines,omitempty"`
	ExpectedAt int64    `json:"expected_at,omitempty"`
	Reference  string   `json:"reference,omitempty"`
	CreatedAt  int64    `json:"created_at,omitempty"`
	GraceMs    int64    `json:"grace_ms,omitempty"`
	KeepMs     int64    `json:"keep_ms,omitempty"`
	IDs        []string `json:"ids,omitempty"`
	Status     string   `json:"status,omitempty"`
	Store      string   `json:"store,omitempty"`
	After      string   `json:"after,omitempty"`
	Limit      int      `json:"limit,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	Principal  string   `json:"principal,omitempty"`
	OpID       string   `json:"op_id,omitempty"`
	IdemKey    string   `json:"idem_key,omitempty"`
	// Fingerprint and Generated: as in request (op.go).
	Fingerprint string `json:"fingerprint,omitempty"`
	Generated   bool   `json:"generated,omitempty"`
}

// wireReceiveLine encodes a receipt line as [sku, received, damaged,
// missing].
type wireReceiveLine ReceiveLine

func (l wireReceiveLine) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(l.SKU)
	if err != nil {
		return nil, err
	}
	return []byte(fmt.Sprintf("[%s,%d,%d,%d]", b, l.Received, l.Damaged, l.Missing)), nil
}

// TransferRecord is a transfer's record as the scripts answer it and the
// events of its steps carry it for the ledger (transfer.lua t_json): one
// side's view, Status being shipped or returned for the source's outbound
// marker. Times are unix ms; ExpectedAt 0 is none, From "" a supplier.
type TransferRecord struct {
	ID, From, To, Status string
	Lines                []TransferLine
	ExpectedAt           int64
	Reference            string
	CreatedAt, UpdatedAt int64
}

// ParseTransferRecord decodes a record (TransferRecord).
func ParseTransferRecord(s string) (TransferRecord, error) {
	var a []json.RawMessage
	if err := json.Unmarshal([]byte(s), &a); err != nil || len(a) != 9 {
		return TransferRecord{}, fmt.Errorf("script reply: malformed transfer %q", s)
	}
	var w TransferRecord
	var lines [][]json.RawMessage
	for i, dst := range []any{&w.ID, &w.From, &w.To, &w.Status, &lines, &w.ExpectedAt, &w.Reference, &w.CreatedAt, &w.UpdatedAt} {
		if err := json.Unmarshal(a[i], dst); err != nil {
			return TransferRecord{}, fmt.Errorf("script reply: malformed transfer %q: %w", s, err)
		}
	}
	for _, l := range lines {
		if len(l) != 5 {
			return TransferRecord{}, fmt.Errorf("script reply: malformed transfer line in %q", s)
		}
		var tl TransferLine
		for i, dst := range []any{&tl.SKU, &tl.Qty, &tl.Received, &tl.Damaged, &tl.Missing} {
			if err := json.Unmarshal(l[i], dst); err != nil {
				return TransferRecord{}, fmt.Errorf("script reply: malformed transfer line in %q: %w", s, err)
			}
		}
		w.Lines = append(w.Lines, tl)
	}
	return w, nil
}

// Source reports whether the record is a source's outbound marker.
func (w TransferRecord) Source() bool { return w.Status == "shipped" || w.Status == "returned" }

// Transfer returns the client's view: a marker that shipped reads in transit.
func (w TransferRecord) Transfer() Transfer { return w.transfer() }

func (w TransferRecord) transfer() Transfer {
	t := Transfer{ID: w.ID, To: w.To, Status: w.Status, Lines: w.Lines,
		CreatedAt: time.UnixMilli(w.CreatedAt).UTC(), UpdatedAt: time.UnixMilli(w.UpdatedAt).UTC()}
	if t.Lines == nil {
		t.Lines = []TransferLine{}
	}
	if w.From != "" {
		f := w.From
		t.From = &f
	}
	if w.ExpectedAt > 0 {
		x := time.UnixMilli(w.ExpectedAt).UTC()
		t.ExpectedAt = &x
	}
	if w.Reference != "" {
		r := w.Reference
		t.Reference = &r
	}
	if t.Status == "shipped" {
		t.Status = TransferInTransit
	}
	return t
}

// transferReply is the transfer script's reply, decoded by name.
type transferReply struct {
	replayed  bool
	transfers []TransferRecord
	ids       []string
	next      string
	kept      bool
}

func decodeTransferReply(v any) (*transferReply, error) {
	a, ok := v.([]any)
	if !ok || len(a)%2 != 0 {
		return nil, fmt.Errorf("transfer script reply: unexpected %T", v)
	}
	r := &transferReply{}
	for i := 0; i < len(a); i += 2 {
		name, _ := a[i].(string)
		val, ok := a[i+1].(string)
		if !ok {
			return nil, fmt.Errorf("transfer script reply: %s is a %T, not a string", name, a[i+1])
		}
		switch name {
		case "replayed":
			r.replayed = val == "1"
		case "transfer":
			w, err := ParseTransferRecord(val)
			if err != nil {
				return nil, err
			}
			r.transfers = append(r.transfers, w)
		case "id":
			r.ids = append(r.ids, val)
		case "next":
			r.next = val
		case "kept":
			r.kept = val == "1"
		default:
			return nil, fmt.Errorf("transfer script reply: unknown field %q", name)
		}
	}
	return r, nil
}

func (r *transferReply) one() (TransferRecord, error) {
	if len(r.transfers) != 1 {
		return TransferRecord{}, fmt.Errorf("transfer script reply: %d transfers, want 1", len(r.transfers))
	}
	return r.transfers[0], nil
}

// runTransfer runs one request of the transfer script on partition p.
func (e *Engine) runTransfer(ctx context.Context, p int, r *transferRequest) (*transferReply, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	v, err := e.run(ctx, e.scripts.Transfer, p, string(b))
	if err != nil {
		return nil, err
	}
	return decodeTransferReply(v)
}

// transferWrite runs a step a client asked for, with its idempotency key:
// the claim, the operation id and the record, as write does (op.go).
func (e *Engine) transferWrite(ctx context.Context, p int, r *transferRequest, op Op) (*transferReply, error) {
	r.Principal = op.Principal
	if op.IdempotencyKey == "" {
		r.OpID = GeneratedOpPrefix + randomHex(16)
		r.Generated = true
		return e.runTransfer(ctx, p, r)
	}
	if !ValidIdempotencyKey(op.IdempotencyKey) {
		return nil, invalid("Idempotency-Key", "must be 1..255 printable ASCII characters")
	}
	fp := op.Fingerprint
	if fp == "" {
		c := *r
		c.Principal, c.ID, c.GraceMs, c.KeepMs = "", "", 0, 0 // the id is made per call; the others are settings
		b, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		fp = string(b)
	}
	sum := sha256.Sum256([]byte(fp))
	r.Fingerprint = hex.EncodeToString(sum[:16])
	r.OpID = op.IdempotencyKey
	r.IdemKey = idemKeyOf(op.Principal, r.OpID)
	repeat, err := e.claim(ctx, op.Principal, op.IdempotencyKey, r.Fingerprint)
	if err != nil {
		return nil, err
	}
	res, err := e.runTransfer(ctx, p, r)
	if err != nil && !repeat && refusedUnchanged(err) {
		e.unclaim(op.Principal, op.IdempotencyKey, r.Fingerprint)
	}
	return res, err
}

// TransferPartition returns the partition a transfer id belongs to (its
// destination's), or an error when id is not a transfer id of this
// deployment: a *ValidationError when malformed, ErrNotFound when it names
// a partition this deployment lacks.
func (e *Engine) TransferPartition(id string) (int, error) {
	m := resIDRE.FindStringSubmatch(id)
	if m == nil {
		return 0, invalid("transfer id", "malformed")
	}
	p, err := strconv.Atoi(m[1])
	if err != nil || p >= e.cfg.Partitions {
		return 0, &NotFoundError{What: "transfer " + id}
	}
	return p, nil
}

func (e *Engine) graceMs() int64 { return e.cfg.TransferGrace.Milliseconds() }

// DefaultTransferRetention is Config.TransferRetention's default.
const DefaultTransferRetention = 7 * 24 * time.Hour

// keepMs is how long a finished record stays (transfer.lua keep_ms); 0
// keeps it for good.
func (e *Engine) keepMs() int64 {
	if e.cfg.TransferRetention < 0 {
		return 0
	}
	return e.cfg.TransferRetention.Milliseconds()
}

// TransferRetention returns how long a finished transfer stays in Redis;
// negative: for good.
func (e *Engine) TransferRetention() time.Duration { return e.cfg.TransferRetention }

// CreateTransfer creates a transfer. With From the units leave the source
// at once (all lines or none) and count as incoming at the destination;
// without, a supplier's delivery is expected at the destination. The
// second step runs before CreateTransfer returns; when it fails (the
// destination being rebuilt, Redis unreachable) the transfer is still
// created and a TransferWorker finishes the step within seconds. Errors:
// *ValidationError, *InsufficientStockError (the source lacks the units),
// ErrIdempotencyMismatch, ErrBackpressure, ErrPartitionNotReady.
func (e *Engine) CreateTransfer(ctx context.Context, req TransferRequest, op Op) (TransferResult, error) {
	if req.From != "" && !ValidID(req.From) {
		return TransferResult{}, invalid("from", "must match %s", idRE)
	}
	if !ValidID(req.To) {
		return TransferResult{}, invalid("to", "must match %s", idRE)
	}
	if req.From == req.To {
		return TransferResult{}, invalid("to", "a transfer cannot go to its own source")
	}
	wl, err := validLines(req.To, req.Lines, "")
	if err != nil {
		return TransferResult{}, err
	}
	if err := validText("reference", req.Reference, MaxReasonLen); err != nil {
		return TransferResult{}, err
	}
	var ea int64
	if req.ExpectedAt != nil {
		ea = req.ExpectedAt.UnixMilli()
		if ea < 1 || ea > 1e14 {
			return TransferResult{}, invalid("expected_at", "out of range")
		}
	}
	pd := e.Partition(req.To)
	id := strconv.Itoa(pd) + "-" + randomHex(16)
	if req.From == "" {
		r := &transferRequest{Op: "transfer_expect", ID: id, To: req.To, Lines: wl, ExpectedAt: ea, Reference: req.Reference}
		res, err := e.transferWrite(ctx, pd, r, op)
		if err != nil {
			return TransferResult{}, fmt.Errorf("create transfer to %s: %w", req.To, err)
		}
		w, err := res.one()
		if err != nil {
			return TransferResult{}, err
		}
		return TransferResult{Transfer: w.transfer(), Replayed: res.replayed}, nil
	}
	ps := e.Partition(req.From)
	r := &transferRequest{Op: "transfer_ship", ID: id, From: req.From, To: req.To, Lines: wl, ExpectedAt: ea,
		Reference: req.Reference, GraceMs: e.graceMs()}
	res, err := e.transferWrite(ctx, ps, r, op)
	if err != nil {
		return TransferResult{}, fmt.Errorf("create transfer from %s to %s: %w", req.From, req.To, err)
	}
	shipped, err := res.one()
	if err != nil {
		return TransferResult{}, err
	}
	if e.afterShip != nil {
		if err := e.afterShip(shipped.ID); err != nil {
			return TransferResult{}, err
		}
	}
	w, err := e.finishExpect(ctx, ps, shipped, op.Principal)
	if err != nil {
		// Shipped: the transfer exists and the worker finishes the step.
		e.log.Warn("expect step left to the transfer worker", zap.String(logTransfer, shipped.ID), zap.Error(err))
		return TransferResult{Transfer: shipped.transfer(), Replayed: res.replayed}, nil
	}
	return TransferResult{Transfer: w.transfer(), Replayed: res.replayed}, nil
}

const logTransfer = "transfer"

// finishExpect runs the expect step of a shipped transfer at its
// destination, then drops it from the source's pending set.
func (e *Engine) finishExpect(ctx context.Context, ps int, m TransferRecord, principal string) (TransferRecord, error) {
	lines := make([]wireLine, len(m.Lines))
	for i, l := range m.Lines {
		lines[i] = wireLine{SKU: l.SKU, Qty: l.Qty}
	}
	r := &transferRequest{Op: "transfer_expect", ID: m.ID, From: m.From, To: m.To, Lines: lines,
		ExpectedAt: m.ExpectedAt, Reference: m.Reference, CreatedAt: m.CreatedAt,
		Principal: principal, OpID: m.ID + ":expect"}
	res, err := e.runTransfer(ctx, e.Partition(m.To), r)
	if err != nil {
		return TransferRecord{}, fmt.Errorf("expect transfer %s at %s: %w", m.ID, m.To, err)
	}
	w, err := res.one()
	if err != nil {
		return TransferRecord{}, err
	}
	if err := e.rdb.ZRem(ctx, e.TransferPendingKey(ps), "expect:"+m.ID).Err(); err != nil {
		return w, fmt.Errorf("expect transfer %s: drop pending step: %w", m.ID, err)
	}
	return w, nil
}

// finishReturn runs the return step of a cancelled transfer at its source,
// then drops it from the destination's pending set.
func (e *Engine) finishReturn(ctx context.Context, pd int, t TransferRecord, principal string) error {
	r := &transferRequest{Op: "transfer_return", ID: t.ID, Principal: principal, OpID: t.ID + ":return"}
	if _, err := e.runTransfer(ctx, e.Partition(t.From), r); err != nil {
		return fmt.Errorf("return transfer %s to %s: %w", t.ID, t.From, err)
	}
	if err := e.rdb.ZRem(ctx, e.TransferPendingKey(pd), "return:"+t.ID).Err(); err != nil {
		return fmt.Errorf("return transfer %s: drop pending step: %w", t.ID, err)
	}
	return nil
}

// ReceiveTransfer books what arrived of a transfer: received units join
// the destination's on_hand, damaged ones on_hand in the damaged state,
// missing ones are written off; incoming drops by all three. Errors:
// *ValidationError, ErrNotFound, *TransferStateError (not in transit),
// *OverReceiptError, ErrIdempotencyMismatch, ErrBackpressure,
// ErrPartitionNotReady.
func (e *Engine) ReceiveTransfer(ctx context.Context, id string, lines []ReceiveLine, op Op) (TransferResult, error) {
	p, err := e.TransferPartition(id)
	if err != nil {
		return TransferResult{}, err
	}
	if len(lines) < 1 || len(lines) > MaxLines {
		return TransferResult{}, invalid("lines", "must hold 1..%d lines", MaxLines)
	}
	seen := make(map[string]bool, len(lines))
	wl := make([]wireReceiveLine, len(lines))
	for i, l := range lines {
		if !ValidID(l.SKU) {
			return TransferResult{}, invalid(fmt.Sprintf("lines[%d].sku", i), "must match %s", idRE)
		}
		if seen[l.SKU] {
			return TransferResult{}, invalid(fmt.Sprintf("lines[%d].sku", i), "%s appears twice", l.SKU)
		}
		seen[l.SKU] = true
		for _, f := range []struct {
			name string
			n    int64
		}{{"received", l.Received}, {"damaged", l.Damaged}, {"missing", l.Missing}} {
			if f.n < 0 || f.n > MaxQty {
				return TransferResult{}, invalid(fmt.Sprintf("lines[%d].%s", i, f.name), "must be 0..%d", MaxQty)
			}
		}
		if l.Received+l.Damaged+l.Missing < 1 {
			return TransferResult{}, invalid(fmt.Sprintf("lines[%d]", i), "accounts for no unit")
		}
		wl[i] = wireReceiveLine(l)
	}
	res, err := e.afterExpect(ctx, id, op.Principal, func() (*transferReply, error) {
		return e.transferWrite(ctx, p, &transferRequest{Op: "transfer_receive", ID: id, Lines: wl, KeepMs: e.keepMs()}, op)
	})
	if err != nil {
		return TransferResult{}, fmt.Errorf("receive transfer %s: %w", id, err)
	}
	w, err := res.one()
	if err != nil {
		return TransferResult{}, err
	}
	return TransferResult{Transfer: w.transfer(), Replayed: res.replayed}, nil
}

// CancelTransfer cancels a transfer of which nothing was received: the
// destination's incoming drops at once, and the units go back to the
// source (at once, or by a TransferWorker within seconds). Errors:
// *ValidationError, ErrNotFound, *TransferStateError, ErrIdempotencyMismatch,
// ErrBackpressure, ErrPartitionNotReady.
func (e *Engine) CancelTransfer(ctx context.Context, id string, op Op) (TransferResult, error) {
	p, err := e.TransferPartition(id)
	if err != nil {
		return TransferResult{}, err
	}
	res, err := e.afterExpect(ctx, id, op.Principal, func() (*transferReply, error) {
		return e.transferWrite(ctx, p, &transferRequest{Op: "transfer_cancel", ID: id, GraceMs: e.graceMs(), KeepMs: e.keepMs()}, op)
	})
	if err != nil {
		return TransferResult{}, fmt.Errorf("cancel transfer %s: %w", id, err)
	}
	w, err := res.one()
	if err != nil {
		return TransferResult{}, err
	}
	if w.From != "" && !res.replayed {
		if e.afterShip != nil {
			if err := e.afterShip(w.ID); err != nil {
				return TransferResult{}, err
			}
		}
		if err := e.finishReturn(ctx, p, w, op.Principal); err != nil {
			e.log.Warn("return step left to the transfer worker", zap.String(logTransfer, w.ID), zap.Error(err))
		}
	}
	return TransferResult{Transfer: w.transfer(), Replayed: res.replayed}, nil
}

// GetTransfer reads a transfer. Errors: ErrNotFound (an id that is not of
// this deployment's shape included), ErrPartitionNotReady.
func (e *Engine) GetTransfer(ctx context.Context, id string) (Transfer, error) {
	p, err := e.TransferPartition(id)
	if err != nil {
		return Transfer{}, &NotFoundError{What: "transfer " + id}
	}
	res, err := e.runTransfer(ctx, p, &transferRequest{Op: "transfer_get", ID: id})
	if errors.Is(err, ErrNotFound) {
		// Shipped, its expect step not run yet (the caller stopped between
		// the halves): the source's marker answers, as CreateTransfer did.
		m, ferr := e.shippedMarker(ctx, id)
		if ferr != nil {
			return Transfer{}, fmt.Errorf("get transfer %s: %w", id, ferr)
		}
		if m != nil {
			return m.transfer(), nil
		}
	}
	if err != nil {
		return Transfer{}, fmt.Errorf("get transfer %s: %w", id, err)
	}
	w, err := res.one()
	if err != nil {
		return Transfer{}, err
	}
	return w.transfer(), nil
}

// afterExpect runs a step on a transfer's record (receive, cancel); when
// the record is missing because the transfer was shipped and its expect
// step has not run yet (its caller stopped between the halves, and the
// TransferWorker's grace has not passed), it runs the expect step now, as
// the worker would (idempotent: one operation id per step), and the step
// once more. So a transfer answered 201 is never 404 to a receipt or a
// cancel either.
func (e *Engine) afterExpect(ctx context.Context, id, principal string, step func() (*transferReply, error)) (*transferReply, error) {
	res, err := step()
	if !errors.Is(err, ErrNotFound) {
		return res, err
	}
	m, ps, ferr := e.shippedMarkerAt(ctx, id)
	if ferr != nil || m == nil {
		return res, err
	}
	if _, ferr := e.finishExpect(ctx, ps, *m, principal); ferr != nil {
		return nil, ferr
	}
	return step()
}

// shippedMarker returns the outbound marker of a transfer whose source
// shipped it and whose record does not exist (yet), or nil. The id does not
// name the source's partition: one pipelined read of every partition's
// marker key, only on a record's miss.
func (e *Engine) shippedMarker(ctx context.Context, id string) (*TransferRecord, error) {
	m, _, err := e.shippedMarkerAt(ctx, id)
	return m, err
}

// shippedMarkerAt is shippedMarker that also answers the source's partition.
func (e *Engine) shippedMarkerAt(ctx context.Context, id string) (*TransferRecord, int, error) {
	pipe := e.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, e.cfg.Partitions)
	for p := range cmds {
		cmds[p] = pipe.HMGet(ctx, e.transferOutKey(p, id), transferHashFields...)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, err
	}
	for p, c := range cmds {
		m, err := parseTransferHash(id, c.Val())
		if err != nil {
			return nil, 0, err
		}
		if m != nil && m.Status == "shipped" {
			return m, p, nil
		}
	}
	return nil, 0, nil
}

// GetTransfers reads the records of ids that Redis holds (one script per
// partition), by id; ids Redis lacks (unknown, or deleted after their
// retention) are left out. Errors: *ValidationError (more than
// MaxListLimit ids), ErrPartitionNotReady.
func (e *Engine) GetTransfers(ctx context.Context, ids []string) (map[string]Transfer, error) {
	if len(ids) > MaxListLimit {
		return nil, invalid("ids", "at most %d", MaxListLimit)
	}
	by := map[int][]string{}
	for _, id := range ids {
		if p, err := e.TransferPartition(id); err == nil {
			by[p] = append(by[p], id)
		}
	}
	out := make(map[string]Transfer, len(ids))
	for p, some := range by {
		res, err := e.runTransfer(ctx, p, &transferRequest{Op: "transfer_get_many", IDs: some})
		if err != nil {
			return nil, fmt.Errorf("get transfers: %w", err)
		}
		for _, w := range res.transfers {
			out[w.ID] = w.transfer()
		}
	}
	return out, nil
}

// TransferFilter selects transfers to list.
type TransferFilter struct {
	// Store, when set, keeps the transfers from or to it.
	Store string
	// Status, when set, keeps the transfers in that status.
	Status string
	// Cursor is the next_cursor of the previous page; empty for the first.
	Cursor string
	// Limit is 1..MaxListLimit. Defaults to 100.
	Limit int
}

// ListTransfers returns a page of transfers in order of creation (then id)
// and the cursor of the next page ("" at the end). Errors:
// *ValidationError, ErrPartitionNotReady.
func (e *Engine) ListTransfers(ctx context.Context, f TransferFilter) ([]Transfer, string, error) {
	f, err := ValidTransferFilter(f)
	if err != nil {
		return nil, "", err
	}
	return e.listTransfers(ctx, f)
}

// ValidTransferFilter checks a filter and fills in its default limit.
// Errors: *ValidationError.
func ValidTransferFilter(f TransferFilter) (TransferFilter, error) {
	if f.Store != "" && !ValidID(f.Store) {
		return f, invalid("store", "must match %s", idRE)
	}
	switch f.Status {
	case "", TransferInTransit, TransferReceived, TransferCancelled:
	default:
		return f, invalid("status", "must be in_transit, received or cancelled")
	}
	if f.Limit == 0 {
		f.Limit = 100
	}
	if f.Limit < 1 || f.Limit > MaxListLimit {
		return f, invalid("limit", "must be 1..%d", MaxListLimit)
	}
	if err := validTransferCursor(f.Cursor); err != nil {
		return f, err
	}
	return f, nil
}

func (e *Engine) listTransfers(ctx context.Context, f TransferFilter) ([]Transfer, string, error) {
	out := []Transfer{}
	keep := func(w TransferRecord) {
		t := w.transfer()
		if f.Status == "" || t.Status == f.Status {
			out = append(out, t)
		}
	}
	if f.Store != "" {
		// One index in the store's partition; records of transfers from
		// the store live in their destinations' partitions.
		after := f.Cursor
		for len(out) < f.Limit {
			res, err := e.runTransfer(ctx, e.Partition(f.Store), &transferRequest{Op: "transfer_list", Store: f.Store,
				After: after, Limit: f.Limit - len(out)})
			if err != nil {
				return nil, "", fmt.Errorf("list transfers of %s: %w", f.Store, err)
			}
			for _, w := range res.transfers {
				keep(w)
			}
			for _, id := range res.ids {
				t, err := e.GetTransfer(ctx, id)
				switch {
				case errors.Is(err, ErrNotFound):
					continue // not expected yet: its worker creates the record
				case err != nil:
					return nil, "", err
				}
				if f.Status == "" || t.Status == f.Status {
					out = append(out, t)
				}
			}
			if res.next == "" {
				return out, "", nil
			}
			after = res.next
		}
		return out, after, nil
	}
	// Every partition's records, merged in (created, id) order: take a page
	// from each, keep the first limit.
	type entry struct {
		key string
		w   TransferRecord
	}
	var all []entry
	more := false
	for p := 0; p < e.cfg.Partitions; p++ {
		res, err := e.runTransfer(ctx, p, &transferRequest{Op: "transfer_list", After: f.Cursor, Limit: f.Limit})
		if err != nil {
			return nil, "", fmt.Errorf("list transfers: %w", err)
		}
		for _, w := range res.transfers {
			all = append(all, entry{key: transferCursor(w.CreatedAt, w.ID), w: w})
		}
		more = more || res.next != ""
	}
	sort.Slice(all, func(i, j int) bool { return cursorLess(all[i].key, all[j].key) })
	if len(all) > f.Limit {
		all, more = all[:f.Limit], true
	}
	for _, en := range all {
		keep(en.w)
	}
	next := ""
	if more && len(all) > 0 {
		next = all[len(all)-1].key
	}
	return out, next, nil
}

func transferCursor(ms int64, id string) string { return strconv.FormatInt(ms, 10) + ":" + id }

func validTransferCursor(c string) error {
	if c == "" {
		return nil
	}
	ms, id, ok := strings.Cut(c, ":")
	n, err := strconv.ParseUint(ms, 10, 63)
	if !ok || err != nil || n == 0 || id == "" || len(c) > 200 {
		return invalid("cursor", "malformed")
	}
	return nil
}

func cursorLess(a, b string) bool {
	am, aid, _ := strings.Cut(a, ":")
	bm, bid, _ := strings.Cut(b, ":")
	an, _ := strconv.ParseInt(am, 10, 64)
	bn, _ := strconv.ParseInt(bm, 10, 64)
	if an != bn {
		return an < bn
	}
	return aid < bid
}

// OpenTransfers returns the in-transit transfers to a store, by id.
// Errors: *ValidationError, ErrPartitionNotReady.
func (e *Engine) OpenTransfers(ctx context.Context, store string) ([]Transfer, error) {
	if !ValidID(store) {
		return nil, invalid("store", "must match %s", idRE)
	}
	res, err := e.runTransfer(ctx, e.Partition(store), &transferRequest{Op: "transfer_open", Store: store})
	if err != nil {
		return nil, fmt.Errorf("open transfers to %s: %w", store, err)
	}
	out := make([]Transfer, 0, len(res.transfers))
	for _, w := range res.transfers {
		if w.Status == TransferInTransit {
			out = append(out, w.transfer())
		}
	}
	return out, nil
}
