package engine

import (
	"encoding/json"
	"fmt"
	"time"
)

// Item is one SKU at one store.
type Item struct {
	Store    string `json:"store"`
	SKU      string `json:"sku"`
	OnHand   int64  `json:"on_hand"`
	Reserved int64  `json:"reserved"`
	// States holds the units of on_hand in the states of docs/design.md
	// §10 (committed, damaged, quality_control, display) and incoming
	// (not part of on_hand).
	States
	// Available is what a sale may take (see Available).
	Available int64 `json:"available"`
	// SafetyStock is the sellable units kept back from every sale but a
	// till sale; nil when none is set.
	SafetyStock *int64 `json:"safety_stock"`
	// Version starts at 1 and grows by 1 on every change.
	Version int64 `json:"version"`
	// ReorderPoint is nil when none is set.
	ReorderPoint *int64 `json:"reorder_point"`
	// MaxPerCustomer is the purchase limit per customer, nil when none.
	MaxPerCustomer *int64    `json:"max_per_customer"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// States are an item's units in the states of docs/design.md §10 besides
// reserved. Committed, Damaged, QualityControl and Display are part of
// on_hand and never sold; Incoming is on its way (a transfer, §11) and not
// part of on_hand.
type States struct {
	// Committed: sold, not yet handed over (a later fulfilment).
	Committed int64 `json:"committed"`
	// Damaged, QualityControl and Display (floor models) are unsellable.
	Damaged        int64 `json:"damaged"`
	QualityControl int64 `json:"quality_control"`
	Display        int64 `json:"display"`
	// Incoming is on its way to the location; always 0 until transfers
	// bring units.
	Incoming int64 `json:"incoming"`
}

// Held returns the units of on_hand the states hold (Incoming is not part
// of on_hand).
func (s States) Held() int64 { return s.Committed + s.Damaged + s.QualityControl + s.Display }

// State names (docs/design.md §10): where a move takes units from or to, and
// where an adjust puts its delta.
const (
	StateAvailable      = "available"
	StateCommitted      = "committed"
	StateDamaged        = "damaged"
	StateQualityControl = "quality_control"
	StateDisplay        = "display"
)

// ValidState reports whether s names a state a move or adjust accepts.
func ValidState(s string) bool {
	switch s {
	case StateAvailable, StateCommitted, StateDamaged, StateQualityControl, StateDisplay:
		return true
	}
	return false
}

// Available is the one rule of docs/design.md §10: on_hand less reserved,
// committed, damaged, quality_control and display, less safety_stock when
// set; 0 when that is negative. A checkout or reservation takes at most
// this (the Lua prelude's available() is its mirror). It reads the counts,
// not it.Available.
func Available(it Item) int64 {
	a := it.OnHand - it.Reserved - it.Held()
	if it.SafetyStock != nil {
		a -= *it.SafetyStock
	}
	return max(a, 0)
}

// TillAvailable is what a till sale ("channel":"pos") may take: Available
// without the safety stock kept back.
func TillAvailable(it Item) int64 {
	return max(it.OnHand-it.Reserved-it.Held(), 0)
}

// Line is one SKU and quantity of a checkout or reservation.
type Line struct {
	SKU string `json:"sku"`
	Qty int64  `json:"qty"`
}

// Reservation statuses.
const (
	StatusHeld      = "held"
	StatusCommitted = "committed"
	StatusReleased  = "released"
	StatusExpired   = "expired"
)

// Reservation is a hold on some units of one store's items.
type Reservation struct {
	ID       string `json:"id"`
	Store    string `json:"store"`
	Customer string `json:"customer"`
	// Status is held, committed, released or expired.
	Status    string    `json:"status"`
	Lines     []Line    `json:"lines"`
	ExpiresAt time.Time `json:"expires_at"`
}

func decodeLines(s string) ([]Line, error) {
	var raw [][2]json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("decode reservation lines %q: %w", s, err)
	}
	out := make([]Line, len(raw))
	for i, l := range raw {
		if err := json.Unmarshal(l[0], &out[i].SKU); err != nil {
			return nil, fmt.Errorf("decode reservation line sku: %w", err)
		}
		var q json.Number
		if err := json.Unmarshal(l[1], &q); err != nil {
			return nil, fmt.Errorf("decode reservation line qty: %w", err)
		}
		n, err := q.Int64()
		if err != nil {
			f, ferr := q.Float64()
			if ferr != nil {
				return nil, fmt.Errorf("decode reservation line qty %q: %w", q, err)
			}
			n = int64(f)
		}
		out[i].Qty = n
	}
	return out, nil
}
