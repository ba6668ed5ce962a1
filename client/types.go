package client

import "time"

// Item is one SKU's stock in one store.
type Item struct {
	Store     string `json:"store"`
	SKU       string `json:"sku"`
	OnHand    int64  `json:"on_hand"`
	Reserved  int64  `json:"reserved"`
	Available int64  `json:"available"`
	// Version grows with every change; the item's ETag is its quoted value.
	Version int64 `json:"version"`
	// ReorderPoint and MaxPerCustomer are nil when unset.
	ReorderPoint   *int64    `json:"reorder_point"`
	MaxPerCustomer *int64    `json:"max_per_customer"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// ItemResult is an item returned by a read or a write, with what the
// response's headers said about it.
type ItemResult struct {
	Item
	// ETag is the response's ETag header ("\"<version>\"").
	ETag string `json:"-"`
	// Created is true when PutItem created the item (201).
	Created bool `json:"-"`
	// NotModified is true when GetItem was sent with IfNoneMatch and the
	// item is unchanged (304): Item is then zero.
	NotModified bool `json:"-"`
	// Replayed is true when the server answered with the stored response
	// of an earlier request with the same Idempotency-Key.
	Replayed bool `json:"-"`
}

// SetItem is the body of PutItem: the absolute count and the optional
// settings of an item.
type SetItem struct {
	OnHand         int64  `json:"on_hand"`
	ReorderPoint   *int64 `json:"reorder_point,omitempty"`
	MaxPerCustomer *int64 `json:"max_per_customer,omitempty"`
}

// Adjustment is the body of Adjust: a change of on_hand and its reason.
type Adjustment struct {
	Delta  int64  `json:"delta"`
	Reason string `json:"reason,omitempty"`
	// State is the stock state the delta applies to (damaged, display,
	// …); empty for available.
	State string `json:"state,omitempty"`
}

// Line is one SKU and quantity of a checkout or reservation.
type Line struct {
	SKU string `json:"sku"`
	Qty int64  `json:"qty"`
}

// CheckoutRequest is the body of Checkout: an all-or-nothing sale.
type CheckoutRequest struct {
	Lines []Line `json:"lines"`
	// Customer is required when an item has a purchase limit.
	Customer string `json:"customer,omitempty"`
}

// CheckoutResult holds the items after a sale, in the order of its lines.
type CheckoutResult struct {
	Lines []Item `json:"lines"`
	// Replayed is true when the response was the replay of an earlier one.
	Replayed bool `json:"-"`
}

// ReserveRequest is the body of Reserve: an all-or-nothing hold.
type ReserveRequest struct {
	Lines []Line `json:"lines"`
	// TTLSeconds is 1..86400; 0 leaves the server's default (900).
	TTLSeconds int `json:"ttl_seconds,omitempty"`
	// Customer is required when an item has a purchase limit.
	Customer string `json:"customer,omitempty"`
}

// Reservation statuses.
const (
	StatusHeld      = "held"
	StatusCommitted = "committed"
	StatusReleased  = "released"
	StatusExpired   = "expired"
)

// Reservation is a hold of stock.
type Reservation struct {
	ID       string `json:"id"`
	Store    string `json:"store"`
	Customer string `json:"customer"`
	// Status is one of StatusHeld, StatusCommitted, StatusReleased,
	// StatusExpired.
	Status    string    `json:"status"`
	Lines     []Line    `json:"lines"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ReservationResult is a reservation returned by a call, with whether the
// response was a replay.
type ReservationResult struct {
	Reservation
	// Replayed is true when the response was the replay of an earlier one.
	Replayed bool `json:"-"`
}

// BulkSetItem is one line of SetItems: an item and its body as PutItem
// takes it (nil settings are left as they are).
type BulkSetItem struct {
	Store          string `json:"store"`
	SKU            string `json:"sku"`
	OnHand         int64  `json:"on_hand"`
	ReorderPoint   *int64 `json:"reorder_point,omitempty"`
	MaxPerCustomer *int64 `json:"max_per_customer,omitempty"`
	SafetyStock    *int64 `json:"safety_stock,omitempty"`
}

// BulkUpdate is one line of BulkAdjust.
type BulkUpdate struct {
	Store  string `json:"store"`
	SKU    string `json:"sku"`
	Delta  int64  `json:"delta"`
	Reason string `json:"reason,omitempty"`
}

// BulkLineResult is the outcome of one line of BulkAdjust or SetItems:
// Item when Status is 2xx, Error otherwise.
type BulkLineResult struct {
	Status int      `json:"status"`
	Item   *Item    `json:"item,omitempty"`
	Error  *Problem `json:"error,omitempty"`
}

// BulkResult holds the outcome of every line of BulkAdjust or SetItems, in
// order.
type BulkResult struct {
	Results []BulkLineResult `json:"results"`
	// Replayed is true when the response was the replay of an earlier one.
	Replayed bool `json:"-"`
}

// Availability is a SKU's stock across every store that carries it.
type Availability struct {
	SKU       string `json:"sku"`
	Available int64  `json:"available"`
	Stores    []Item `json:"stores"`
}

// ItemPage is one page of ListItems.
type ItemPage struct {
	Items []Item `json:"items"`
	// NextCursor is the cursor of the next page; empty on the last one.
	NextCursor string `json:"next_cursor"`
}

// Event is a change of one item, as the ledger and the event feeds carry it.
type Event struct {
	StreamID       string     `json:"stream_id"`
	Store          string     `json:"store"`
	SKU            string     `json:"sku"`
	Version        int64      `json:"version"`
	Type           string     `json:"type"`
	DeltaOnHand    int64      `json:"delta_on_hand"`
	DeltaReserved  int64      `json:"delta_reserved"`
	OnHand         int64      `json:"on_hand"`
	Reserved       int64      `json:"reserved"`
	ReorderPoint   *int64     `json:"reorder_point"`
	MaxPerCustomer *int64     `json:"max_per_customer"`
	ReservationID  string     `json:"reservation_id"`
	Customer       string     `json:"customer"`
	IdempotencyKey string     `json:"idempotency_key"`
	Reason         string     `json:"reason"`
	Principal      string     `json:"principal"`
	Time           time.Time  `json:"time"`
	ExpiresAt      *time.Time `json:"expires_at,omitempty"`
}

// FeedGap says that a resumed feed missed events in these partitions
// (they were trimmed): reload the state you show.
type FeedGap struct {
	Partitions []int  `json:"partitions"`
	Detail     string `json:"detail"`
}

// FeedMessage is one message of the event feed: an Event, or a Gap on the
// first message of a resumed feed. ID is the feed position after it.
type FeedMessage struct {
	ID    string
	Event *Event
	Gap   *FeedGap
}

// Shortage is a line that lacked stock in a 409 insufficient-stock problem.
type Shortage struct {
	SKU       string `json:"sku"`
	Requested int64  `json:"requested"`
	Available int64  `json:"available"`
}
