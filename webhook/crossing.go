package webhook

import (
	"strconv"
	"strings"

	"github.com/shelfline/inventory/engine"
)

// The crossing rules of DESIGN §13 read an item's available count before
// and after each event. An event carries the item's counts after the change
// and the delta of each (on_hand, reserved and every state of DESIGN §10),
// so the counts before are after minus delta, and available on each side is
// engine.Available, the engine's one rule: the crossings need no state of
// their own, run off the hot path, and give the same answer each time an
// event is read again.

// itemAfter is the item as ev left it.
func itemAfter(ev *engine.Event) engine.Item {
	it := engine.Item{
		Store: ev.Store, SKU: ev.SKU, OnHand: ev.OnHand, Reserved: ev.Reserved, States: ev.States,
		SafetyStock: ev.SafetyStock, Version: ev.Version, ReorderPoint: ev.ReorderPoint,
		MaxPerCustomer: ev.MaxPerCustomer, UpdatedAt: ev.Time.UTC(),
	}
	it.Available = engine.Available(it)
	return it
}

// itemBefore is the item as ev found it: each count after the change less
// its delta. The settings (safety stock, reorder point) are the ones after
// the change: the event does not carry the ones before.
func itemBefore(ev *engine.Event) engine.Item {
	it := itemAfter(ev)
	it.OnHand -= ev.DeltaOnHand
	it.Reserved -= ev.DeltaReserved
	it.Committed -= ev.DeltaCommitted
	it.Damaged -= ev.DeltaDamaged
	it.QualityControl -= ev.DeltaQualityControl
	it.Display -= ev.DeltaDisplay
	it.Incoming -= ev.DeltaIncoming
	it.Available = engine.Available(it)
	return it
}

// Names returns the event names ev fires, stock_changed first:
//   - stock_changed: every stock event;
//   - low_stock: available went from above the reorder point to at or
//     below it (the reorder point after the event serves both sides, as
//     the event does not carry the one before);
//   - out_of_stock: available went from above 0 to 0;
//   - back_in_stock: available went from 0 to above 0, on an item that
//     existed before (its version is above 1);
//   - transfer: a transfer's status changed (TRANSFER_* events), last.
//
// A transfer's events are stock events too (DESIGN §13: stock_changed is
// every event, and the crossings fire from every path that changes stock,
// transfers included), so they fire stock_changed and their crossings as
// well as transfer.
func Names(ev *engine.Event) []string {
	names := []string{NameStockChanged}
	before, after := itemBefore(ev).Available, itemAfter(ev).Available
	if rp := ev.ReorderPoint; rp != nil && before > *rp && after <= *rp {
		names = append(names, NameLowStock)
	}
	if before > 0 && after == 0 {
		names = append(names, NameOutOfStock)
	}
	if before == 0 && after > 0 && ev.Version > 1 {
		names = append(names, NameBackInStock)
	}
	if strings.HasPrefix(ev.Type, "TRANSFER_") {
		names = append(names, NameTransfer)
	}
	return names
}

// EventID is the id of the delivery of name for ev, the same whoever reads
// the event and however often: "<store>/<sku>/<version>/<name>" (store and
// sku never hold a slash).
func EventID(ev *engine.Event, name string) string {
	return ev.Store + "/" + ev.SKU + "/" + strconv.FormatInt(ev.Version, 10) + "/" + name
}

// Payload is the body of a delivery: {"id","type","time","item","event"}.
type Payload struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	// Time is when the event happened.
	Time  string       `json:"time"`
	Item  engine.Item  `json:"item"`
	Event engine.Event `json:"event"`
}

// payload makes the body of the delivery of name for ev.
func payload(ev *engine.Event, name string) Payload {
	return Payload{
		ID:    EventID(ev, name),
		Type:  name,
		Time:  ev.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Item:  itemAfter(ev),
		Event: *ev,
	}
}
