package engine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
)

// Op carries what identifies a write: the client's idempotency key (scoped by
// principal), the principal, and the request fingerprint. The zero Op is a
// write without a client key; the engine generates an operation id.
type Op struct {
	// IdempotencyKey is the client's key, 1..255 printable ASCII, or empty.
	IdempotencyKey string
	// Principal is who asks (the token's name); keys are scoped by it.
	Principal string
	// Fingerprint identifies the request: the same key with another
	// fingerprint is ErrIdempotencyMismatch. Empty: the engine derives one
	// from the operation and its arguments.
	Fingerprint string
	// line, when positive, is the 1-based line of a bulk request made under
	// IdempotencyKey: the line runs under its own operation id.
	line int
}

// GeneratedOpPrefix starts every operation id the engine generates for a
// write without a client key, so the ledger tells them from client keys: a
// client key is printable ASCII and cannot start with it.
const GeneratedOpPrefix = "·g"

// ValidIdempotencyKey reports whether k is 1..255 printable ASCII.
func ValidIdempotencyKey(k string) bool {
	if len(k) < 1 || len(k) > MaxKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// request is a write script's request: one JSON object, read by member name
// in Lua (luascripts/prelude.lua, "Requests"). It is the one definition of
// those members on the Go side; a test checks that the Lua reads every one
// of them and no other.
type request struct {
	// Op is the operation: set, adjust, checkout, reserve, commit, release,
	// move, fulfil.
	Op    string `json:"op"`
	Store string `json:"store,omitempty"`
	SKU   string `json:"sku,omitempty"`
	// OnHand is set's new on_hand.
	OnHand *int64 `json:"on_hand,omitempty"`
	// ReorderPoint and MaxPerCustomer: nil keeps, -1 clears.
	ReorderPoint   *int64 `json:"reorder_point,omitempty"`
	MaxPerCustomer *int64 `json:"max_per_customer,omitempty"`
	SafetyStock    *int64 `json:"safety_stock,omitempty"`
	// ExpectVersion: nil skips the check; 0 means the item must not exist.
	ExpectVersion *int64 `json:"expect_version,omitempty"`
	Delta         int64  `json:"delta,omitempty"`
	// State is adjust's state (empty: available).
	State string `json:"state,omitempty"`
	// From, To and Qty are a move's.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	Qty  int64  `json:"qty,omitempty"`
	// Channel "pos" is a till sale (may sell the safety stock).
	Channel string `json:"channel,omitempty"`
	// Fulfilment "later" moves sold units to committed.
	Fulfilment    string     `json:"fulfilment,omitempty"`
	Lines         []wireLine `json:"lines,omitempty"`
	Customer      string     `json:"customer,omitempty"`
	ReservationID string     `json:"reservation_id,omitempty"`
	TTLms         int64      `json:"ttl_ms,omitempty"`
	Reason        string     `json:"reason,omitempty"`
	Principal     string     `json:"principal,omitempty"`
	// OpID is the operation id: the client's key (a bulk line's: with its
	// index), or a generated one (Generated).
	OpID string `json:"op_id,omitempty"`
	// IdemKey names the record of a request with a client key (idemKeyOf).
	IdemKey     string `json:"idem_key,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Generated   bool   `json:"generated,omitempty"`
	// Sticky: a refusal is recorded under the operation id too (a bulk
	// request's line), so a retry answers it again.
	Sticky bool `json:"sticky,omitempty"`
}

// wireLine encodes a line as [sku, qty]: the shape a reservation keeps in
// Redis (its field l) and the scripts' replies carry, so a line has one
// shape everywhere. An object per line would cost the script about 70 ns
// more per line to decode, for no reader's benefit.
type wireLine struct {
	SKU string
	Qty int64
}

func (l wireLine) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(l.SKU)
	if err != nil {
		return nil, err
	}
	return []byte("[" + string(b) + "," + strconv.FormatInt(l.Qty, 10) + "]"), nil
}

// identify fills the operation id, idempotency record key and fingerprint.
// A write without a client key gets a fresh random operation id; no one else
// can name it, so it needs no fingerprint.
func identify(r *request, op Op) error {
	r.Principal = op.Principal
	if op.IdempotencyKey == "" {
		r.OpID = GeneratedOpPrefix + randomHex(16)
		r.Generated = true
		return nil
	}
	if !ValidIdempotencyKey(op.IdempotencyKey) {
		return invalid("Idempotency-Key", "must be 1..255 printable ASCII characters")
	}
	if op.Fingerprint == "" {
		c := *r
		c.Principal = ""
		if c.Op == "reserve" {
			c.ReservationID = "" // generated per call, not part of the request
		}
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		r.Fingerprint = hex.EncodeToString(sum[:16])
	} else {
		sum := sha256.Sum256([]byte(op.Fingerprint))
		r.Fingerprint = hex.EncodeToString(sum[:16])
	}
	r.OpID = op.IdempotencyKey
	if op.line > 0 {
		r.OpID += LineOpSeparator + strconv.Itoa(op.line-1)
		r.Sticky = true
	}
	r.IdemKey = idemKeyOf(op.Principal, r.OpID)
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

// write runs one write request on partition p and returns its result.
func (e *Engine) write(ctx context.Context, p int, r *request, op Op) (*result, error) {
	if err := identify(r, op); err != nil {
		return nil, err
	}
	b := r.appendJSON(make([]byte, 0, 256))
	claimed := false
	if op.IdempotencyKey != "" && op.line == 0 {
		repeat, err := e.claim(ctx, op.Principal, op.IdempotencyKey, r.Fingerprint)
		if err != nil {
			return nil, err
		}
		claimed = !repeat
	}
	var res *result
	var err error
	if e.cfg.DisableGroupCommit {
		var v any
		if v, err = e.run(ctx, e.scripts.Ops[r.Op], p, string(b)); err == nil {
			res, err = decodeResult(v)
		}
	} else {
		res, err = e.batcher(p).submit(ctx, string(b))
	}
	if err != nil {
		if claimed && refusedUnchanged(err) {
			e.unclaim(op.Principal, op.IdempotencyKey, r.Fingerprint)
		}
		return nil, err
	}
	return res, nil
}
