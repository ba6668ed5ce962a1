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

// wreq is the JSON request of a write script.
type wreq struct {
	O        string     `json:"o"`
	Store    string     `json:"store,omitempty"`
	SKU      string     `json:"sku,omitempty"`
	OnHand   *int64     `json:"oh,omitempty"`
	RP       *int64     `json:"rp,omitempty"`
	MPC      *int64     `json:"mpc,omitempty"`
	EV       *int64     `json:"ev,omitempty"`
	Delta    int64      `json:"delta,omitempty"`
	Lines    []wireLine `json:"lines,omitempty"`
	Customer string     `json:"customer,omitempty"`
	RID      string     `json:"rid,omitempty"`
	TTL      int64      `json:"ttl,omitempty"`
	Reason   string     `json:"reason,omitempty"`
	PR       string     `json:"pr,omitempty"`
	OpID     string     `json:"op,omitempty"`
	IDK      string     `json:"idk,omitempty"`
	FP       string     `json:"fp,omitempty"`
	Gen      bool       `json:"gen,omitempty"`
	// Sticky: a refusal is recorded under the operation id too (a bulk
	// request's line), so a retry answers it again.
	Sticky bool `json:"sticky,omitempty"`
}

// wireLine encodes a line as [sku, qty].
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
func identify(r *wreq, op Op) error {
	r.PR = op.Principal
	if op.IdempotencyKey == "" {
		r.OpID = GeneratedOpPrefix + randomHex(16)
		r.Gen = true
		return nil
	}
	if !ValidIdempotencyKey(op.IdempotencyKey) {
		return invalid("Idempotency-Key", "must be 1..255 printable ASCII characters")
	}
	if op.Fingerprint == "" {
		c := *r
		c.PR = ""
		if c.O == "reserve" {
			c.RID = "" // generated per call, not part of the request
		}
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		r.FP = hex.EncodeToString(sum[:16])
	} else {
		sum := sha256.Sum256([]byte(op.Fingerprint))
		r.FP = hex.EncodeToString(sum[:16])
	}
	r.OpID = op.IdempotencyKey
	if op.line > 0 {
		r.OpID += LineOpSeparator + strconv.Itoa(op.line-1)
		r.Sticky = true
	}
	r.IDK = idemKeyOf(op.Principal, r.OpID)
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

// write runs one write request on partition p and returns its reply.
func (e *Engine) write(ctx context.Context, p int, r *wreq, op Op) (*reply, error) {
	if err := identify(r, op); err != nil {
		return nil, err
	}
	b, err := jsonMarshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	claimed := false
	if op.IdempotencyKey != "" && op.line == 0 {
		repeat, err := e.claim(ctx, op.Principal, op.IdempotencyKey, r.FP)
		if err != nil {
			return nil, err
		}
		claimed = !repeat
	}
	var res any
	if e.cfg.DisableGroupCommit {
		res, err = e.run(ctx, e.scripts.Ops[r.O], p, string(b))
	} else {
		res, err = e.batcher(p).submit(ctx, string(b))
	}
	if err != nil {
		if claimed && refusedUnchanged(err) {
			e.unclaim(op.Principal, op.IdempotencyKey, r.FP)
		}
		return nil, err
	}
	arr, ok := res.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: unexpected reply %T", r.O, res)
	}
	return &reply{a: arr}, nil
}

// jsonMarshal encodes a write request.
func jsonMarshal(r *wreq) ([]byte, error) { return json.Marshal(r) }
