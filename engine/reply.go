package engine

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// result is a script's reply decoded by name. A reply is a flat array of
// name/value pairs, every value a string but the reads' lists (skus,
// stores), which are arrays of strings; luascripts/prelude.lua ("Replies")
// defines the names on the Lua side, decodeResult on this side. A name
// decodeResult does not know is an error, so no value goes unread.
type result struct {
	// Replayed: the stored result of an earlier request with the same
	// operation id; nothing changed now.
	Replayed bool
	// Created: set created the item.
	Created bool
	// Items holds the items, in the order the script named them.
	Items []Item
	// Reservation holds the reservation fields, when the reply has them.
	Reservation *Reservation
	// SKUs and Stores are the lists of the reads "skus" and "stores".
	SKUs, Stores []string
	// Expired and Corrupt are the reservation ids expire expired and the
	// ones it dropped as corrupt, in due order.
	Expired, Corrupt []string
	// Restored: a restore script wrote what it was given.
	Restored bool
}

// decodeResult decodes one script result. A batch's refused request
// ({error, "CODE detail"}) is returned as its domain error.
func decodeResult(v any) (*result, error) {
	a, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("script reply: unexpected %T", v)
	}
	if len(a)%2 != 0 {
		return nil, fmt.Errorf("script reply: %d elements, not name/value pairs", len(a))
	}
	r := &result{}
	for i := 0; i < len(a); i += 2 {
		name, ok := a[i].(string)
		if !ok {
			return nil, fmt.Errorf("script reply: element %d is a %T, not a name", i, a[i])
		}
		if name == "skus" || name == "stores" {
			list, err := stringList(name, a[i+1])
			if err != nil {
				return nil, err
			}
			if name == "skus" {
				r.SKUs = list
			} else {
				r.Stores = list
			}
			continue
		}
		val, ok := a[i+1].(string)
		if !ok {
			return nil, fmt.Errorf("script reply: %s is a %T, not a string", name, a[i+1])
		}
		var err error
		switch name {
		case "item":
			var it Item
			if it, err = parseReplyItem(val); err == nil {
				r.Items = append(r.Items, it)
			}
		case "replayed":
			r.Replayed, err = flag(name, val)
		case "created":
			r.Created, err = flag(name, val)
		case "restored":
			r.Restored, err = flag(name, val)
		case "reservation_id":
			r.reservation().ID = val
		case "store":
			r.reservation().Store = val
		case "customer":
			r.reservation().Customer = val
		case "status":
			r.reservation().Status = val
		case "expires_at_ms":
			var ms int64
			if ms, err = strconv.ParseInt(val, 10, 64); err == nil {
				r.reservation().ExpiresAt = time.UnixMilli(ms).UTC()
			}
		case "lines":
			r.reservation().Lines, err = decodeLines(val)
		case "expired":
			r.Expired = append(r.Expired, val)
		case "corrupt":
			r.Corrupt = append(r.Corrupt, val)
		case "error":
			code, detail, _ := strings.Cut(val, " ")
			return nil, interpretCode(code, detail, fmt.Errorf("%s", val))
		default:
			return nil, fmt.Errorf("script reply: unknown field %q", name)
		}
		if err != nil {
			return nil, fmt.Errorf("script reply: %s %q: %w", name, val, err)
		}
	}
	return r, nil
}

func (r *result) reservation() *Reservation {
	if r.Reservation == nil {
		r.Reservation = &Reservation{}
	}
	return r.Reservation
}

// item returns the result's one item: set, adjust and the read "item" name
// exactly one.
func (r *result) item() (Item, error) {
	if len(r.Items) != 1 {
		return Item{}, fmt.Errorf("script reply: %d items, want 1", len(r.Items))
	}
	return r.Items[0], nil
}

func flag(name, v string) (bool, error) {
	if v != "1" {
		return false, fmt.Errorf("script reply: %s is %q, not 1", name, v)
	}
	return true, nil
}

func stringList(name string, v any) ([]string, error) {
	a, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("script reply: %s is a %T, not a list", name, v)
	}
	out := make([]string, len(a))
	for i, x := range a {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("script reply: %s holds a %T", name, x)
		}
		out[i] = s
	}
	return out, nil
}

func optional(n int64) *int64 {
	if n < 0 {
		return nil
	}
	return &n
}

// parseReplyItem decodes an item as the scripts reply it (prelude.lua
// push_item): "store,sku,on_hand,reserved,version,reorder_point,
// max_per_customer,updated_at_ms[,committed,damaged,quality_control,display,
// incoming,safety_stock]", -1 meaning unset. The packing is kept
// because results are stored as idempotency records for a day: it is a
// stored format, like the item in its store's hash (ParsePackedItem).
func parseReplyItem(s string) (Item, error) {
	f := strings.Split(s, ",")
	if len(f) != 8 && len(f) != 14 {
		return Item{}, fmt.Errorf("malformed item")
	}
	var n [12]int64
	n[11] = -1
	for j := 2; j < len(f); j++ {
		v, err := strconv.ParseInt(f[j], 10, 64)
		if err != nil {
			return Item{}, fmt.Errorf("malformed item")
		}
		n[j-2] = v
	}
	it := Item{Store: f[0], SKU: f[1], OnHand: n[0], Reserved: n[1], Version: n[2],
		ReorderPoint: optional(n[3]), MaxPerCustomer: optional(n[4]), UpdatedAt: time.UnixMilli(n[5]).UTC(),
		States:      States{Committed: n[6], Damaged: n[7], QualityControl: n[8], Display: n[9], Incoming: n[10]},
		SafetyStock: optional(n[11])}
	it.Available = Available(it)
	return it, nil
}
