package engine

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Event types (docs/design.md §5.1).
const (
	EventSet       = "SET"
	EventAdjust    = "ADJUST"
	EventSale      = "SALE"
	EventReserve   = "RESERVE"
	EventCommit    = "COMMIT"
	EventRelease   = "RELEASE"
	EventExpire    = "EXPIRE"
	EventReconcile = "RECONCILE"
	// EventMove moves units between states, on_hand unchanged (From, To,
	// Qty).
	EventMove = "MOVE"
	// EventFulfil hands committed units over: on_hand and committed drop.
	EventFulfil = "FULFIL"
)

var eventTypes = map[string]bool{
	EventSet: true, EventAdjust: true, EventSale: true, EventReserve: true,
	EventCommit: true, EventRelease: true, EventExpire: true, EventReconcile: true,
	EventMove: true, EventFulfil: true,
	EventTransferOut: true, EventTransferExpected: true, EventTransferIn: true, EventTransferLoss: true,
	EventTransferCancel: true,
}

// StateDeltas are an event's changes of the states (docs/design.md §2.1);
// each state's deltas over an item's history sum to that state.
type StateDeltas struct {
	DeltaCommitted      int64 `json:"delta_committed"`
	DeltaDamaged        int64 `json:"delta_damaged"`
	DeltaQualityControl int64 `json:"delta_quality_control"`
	DeltaDisplay        int64 `json:"delta_display"`
	DeltaIncoming       int64 `json:"delta_incoming"`
}

// Event is one change of one item, as appended to its partition's stream.
type Event struct {
	// StreamID is the entry's id in the partition's stream.
	StreamID      string `json:"stream_id"`
	Store         string `json:"store"`
	SKU           string `json:"sku"`
	Version       int64  `json:"version"`
	Type          string `json:"type"`
	DeltaOnHand   int64  `json:"delta_on_hand"`
	DeltaReserved int64  `json:"delta_reserved"`
	// StateDeltas are the changes of the states.
	StateDeltas
	// OnHand and Reserved are the item's counts after the change.
	OnHand   int64 `json:"on_hand"`
	Reserved int64 `json:"reserved"`
	// States are the item's states after the change.
	States
	// ReorderPoint, MaxPerCustomer and SafetyStock after the change; nil
	// when unset.
	ReorderPoint   *int64 `json:"reorder_point"`
	MaxPerCustomer *int64 `json:"max_per_customer"`
	SafetyStock    *int64 `json:"safety_stock"`
	// From, To and Qty describe a MOVE; empty and 0 on other events.
	From          string `json:"from,omitempty"`
	To            string `json:"to,omitempty"`
	Qty           int64  `json:"qty,omitempty"`
	ReservationID string `json:"reservation_id"`
	Customer      string `json:"customer"`
	// IdempotencyKey is the operation id: the client's key, or one the
	// engine generated.
	IdempotencyKey string    `json:"idempotency_key"`
	Reason         string    `json:"reason"`
	Principal      string    `json:"principal"`
	Time           time.Time `json:"time"`
	// ExpiresAt is a RESERVE event's hold expiry; nil on other events.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// TransferID is the transfer of a TRANSFER_* event; empty on others.
	TransferID string `json:"transfer_id,omitempty"`
	// TransferRecord is, on the first event of a transfer's step, the
	// record of the side that ran it after the step (ParseTransferRecord),
	// which the ledger keeps in its transfers table; empty otherwise.
	TransferRecord string `json:"-"`
}

// ParseEvent decodes a stream entry. It fails on an entry that lacks a field
// or carries a malformed one (a poison entry). It reads the engine's format
// (every field packed in e, docs/design.md §5.2), the one-field-per-text
// format (numbers packed in field n) that transfer steps, texts holding a
// tab and earlier versions write, and the earlier one-field-per-number
// format.
func ParseEvent(id string, values map[string]any) (Event, error) {
	ev := Event{StreamID: id}
	var errs []string
	str := func(k string, required bool) string {
		v, ok := values[k]
		if !ok {
			if required {
				errs = append(errs, "missing "+k)
			}
			return ""
		}
		s, ok := v.(string)
		if !ok {
			errs = append(errs, k+" is not a string")
		}
		return s
	}
	num := func(k string) int64 {
		s := str(k, true)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s=%q is not an integer", k, s))
		}
		return n
	}
	var packedNumbers string
	hasPacked := false
	var mv string
	if e, ok := values["e"]; ok {
		// the engine's format: every field packed in e, tab-separated
		s, _ := e.(string)
		var f [10]string
		k := strings.Count(s, "\t") + 1
		if k != 9 && k != 10 {
			errs = append(errs, fmt.Sprintf("e holds %d fields, not 9 or 10", k))
		} else {
			for i := 0; i < k-1; i++ {
				f[i], s, _ = strings.Cut(s, "\t")
			}
			f[k-1] = s
		}
		ev.Store, ev.SKU, ev.Type, packedNumbers = f[0], f[1], f[2], f[3]
		ev.ReservationID, ev.Customer, ev.IdempotencyKey, ev.Reason, ev.Principal = f[4], f[5], f[6], f[7], f[8]
		mv, hasPacked = f[9], true
	} else {
		ev.Store = str("s", true)
		ev.SKU = str("k", true)
		ev.Type = str("t", true)
		ev.ReservationID = str("rid", false)
		ev.Customer = str("c", false)
		ev.IdempotencyKey = str("op", false)
		ev.Reason = str("rsn", false)
		ev.Principal = str("pr", false)
		ev.TransferID = str("tid", false)
		ev.TransferRecord = str("tr", false)
		mv = str("mv", false)
		if packed, ok := values["n"]; ok {
			packedNumbers, _ = packed.(string)
			hasPacked = true
		}
	}
	if hasPacked {
		// the numbers packed in one field
		s := packedNumbers
		f := strings.Split(s, ",")
		if len(f) != 9 && len(f) != 20 {
			errs = append(errs, fmt.Sprintf("n=%q does not hold 9 or 20 numbers", s))
			f = make([]string, 9)
		}
		n := make([]int64, 20)
		n[14] = -1
		for i, x := range f {
			v, err := strconv.ParseInt(x, 10, 64)
			if err != nil && len(errs) == 0 {
				errs = append(errs, fmt.Sprintf("n=%q: %q is not an integer", s, x))
			}
			n[i] = v
		}
		ev.Version, ev.DeltaOnHand, ev.DeltaReserved, ev.OnHand, ev.Reserved = n[0], n[1], n[2], n[3], n[4]
		ev.ReorderPoint, ev.MaxPerCustomer = optional(n[5]), optional(n[6])
		ev.Time = time.UnixMilli(n[7]).UTC()
		if n[8] > 0 {
			t := time.UnixMilli(n[8]).UTC()
			ev.ExpiresAt = &t
		}
		ev.States = States{Committed: n[9], Damaged: n[10], QualityControl: n[11], Display: n[12], Incoming: n[13]}
		ev.SafetyStock = optional(n[14])
		ev.StateDeltas = StateDeltas{DeltaCommitted: n[15], DeltaDamaged: n[16], DeltaQualityControl: n[17],
			DeltaDisplay: n[18], DeltaIncoming: n[19]}
	} else {
		// one field per number, as earlier versions wrote them
		ev.Version = num("v")
		ev.DeltaOnHand = num("dh")
		ev.DeltaReserved = num("dr")
		ev.OnHand = num("oh")
		ev.Reserved = num("rs")
		ev.ReorderPoint = optional(num("rp"))
		ev.MaxPerCustomer = optional(num("mpc"))
		ev.Time = time.UnixMilli(num("ts")).UTC()
		if _, ok := values["x"]; ok {
			if x := num("x"); x > 0 {
				t := time.UnixMilli(x).UTC()
				ev.ExpiresAt = &t
			}
		}
	}
	if mv != "" {
		// a MOVE's "from,to,qty"
		f := strings.Split(mv, ",")
		var err error
		if len(f) == 3 {
			ev.From, ev.To = f[0], f[1]
			ev.Qty, err = strconv.ParseInt(f[2], 10, 64)
		}
		if len(f) != 3 || err != nil || !ValidState(ev.From) || !ValidState(ev.To) || ev.Qty < 1 {
			errs = append(errs, fmt.Sprintf("mv=%q is not from,to,qty", mv))
		}
	}
	if len(errs) == 0 {
		switch {
		case !ValidID(ev.Store) || !ValidID(ev.SKU):
			errs = append(errs, "bad store or sku")
		case ev.Version < 1:
			errs = append(errs, "version below 1")
		case !eventTypes[ev.Type]:
			errs = append(errs, "unknown type "+ev.Type)
		case ev.OnHand < 0 || ev.Reserved < 0 || ev.Reserved > ev.OnHand:
			errs = append(errs, "counts break 0 <= reserved <= on_hand")
		case ev.Committed < 0 || ev.Damaged < 0 || ev.QualityControl < 0 || ev.Display < 0 || ev.Incoming < 0 ||
			ev.Reserved+ev.Held() > ev.OnHand:
			errs = append(errs, "states break 0 <= reserved + committed + damaged + quality_control + display <= on_hand")
		}
	}
	if len(errs) > 0 {
		return Event{}, fmt.Errorf("event %s: %s", id, strings.Join(errs, "; "))
	}
	return ev, nil
}

// AvailableAfter is the item's Available after the event (docs/design.md
// §2.1), from the counts, states and safety stock it carries.
func (ev *Event) AvailableAfter() int64 {
	return Available(Item{OnHand: ev.OnHand, Reserved: ev.Reserved, States: ev.States, SafetyStock: ev.SafetyStock})
}

// AvailableBefore is the item's Available before the event: the counts and
// states after it less its deltas. The event does not carry the safety
// stock before it, so the one after serves both sides.
func (ev *Event) AvailableBefore() int64 {
	st := States{Committed: ev.Committed - ev.DeltaCommitted, Damaged: ev.Damaged - ev.DeltaDamaged,
		QualityControl: ev.QualityControl - ev.DeltaQualityControl, Display: ev.Display - ev.DeltaDisplay,
		Incoming: ev.Incoming - ev.DeltaIncoming}
	return Available(Item{OnHand: ev.OnHand - ev.DeltaOnHand, Reserved: ev.Reserved - ev.DeltaReserved, States: st, SafetyStock: ev.SafetyStock})
}
