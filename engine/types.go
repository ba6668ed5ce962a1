package engine

import (
	"encoding/json"
	"fmt"
	"time"
)

// Item is one SKU at one store.
type Item struct {
	Store     string `json:"store"`
	SKU       string `json:"sku"`
	OnHand    int64  `json:"on_hand"`
	Reserved  int64  `json:"reserved"`
	Available int64  `json:"available"`
	// Version starts at 1 and grows by 1 on every change.
	Version int64 `json:"version"`
	// ReorderPoint is nil when none is set.
	ReorderPoint *int64 `json:"reorder_point"`
	// MaxPerCustomer is the purchase limit per customer, nil when none.
	MaxPerCustomer *int64    `json:"max_per_customer"`
	UpdatedAt      time.Time `json:"updated_at"`
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
