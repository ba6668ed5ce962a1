package engine

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// reply reads a script's flat array reply in order.
type reply struct {
	a   []any
	i   int
	err error
}

func (r *reply) next() any {
	if r.i >= len(r.a) {
		if r.err == nil {
			r.err = fmt.Errorf("script reply too short: %d elements", len(r.a))
		}
		return nil
	}
	v := r.a[r.i]
	r.i++
	return v
}

func (r *reply) int() int64 {
	switch v := r.next().(type) {
	case int64:
		return v
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil && r.err == nil {
			r.err = fmt.Errorf("script reply: %q is not an integer", v)
		}
		return n
	case nil:
		return 0
	default:
		if r.err == nil {
			r.err = fmt.Errorf("script reply: unexpected %T", v)
		}
		return 0
	}
}

func (r *reply) str() string {
	switch v := r.next().(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case nil:
		return ""
	default:
		if r.err == nil {
			r.err = fmt.Errorf("script reply: unexpected %T", v)
		}
		return ""
	}
}

func (r *reply) more() bool { return r.i < len(r.a) && r.err == nil }

func optional(n int64) *int64 {
	if n < 0 {
		return nil
	}
	return &n
}

// item reads an item: one packed string
// "store,sku,on_hand,reserved,version,reorder_point,max_per_customer,updated_at_ms",
// or (a result stored by an earlier version) eight values.
func (r *reply) item() Item {
	if r.i < len(r.a) {
		if s, ok := r.a[r.i].(string); ok && strings.Count(s, ",") == 7 {
			r.i++
			store, rest, _ := strings.Cut(s, ",")
			sku, rest, _ := strings.Cut(rest, ",")
			nums := strings.Split(rest, ",")
			var n [6]int64
			for j, x := range nums {
				v, err := strconv.ParseInt(x, 10, 64)
				if err != nil && r.err == nil {
					r.err = fmt.Errorf("script reply: malformed item %q", s)
				}
				n[j] = v
			}
			return Item{Store: store, SKU: sku, OnHand: n[0], Reserved: n[1], Available: n[0] - n[1], Version: n[2],
				ReorderPoint: optional(n[3]), MaxPerCustomer: optional(n[4]), UpdatedAt: time.UnixMilli(n[5]).UTC()}
		}
	}
	it := Item{Store: r.str(), SKU: r.str(), OnHand: r.int(), Reserved: r.int(), Version: r.int()}
	it.Available = it.OnHand - it.Reserved
	it.ReorderPoint = optional(r.int())
	it.MaxPerCustomer = optional(r.int())
	it.UpdatedAt = time.UnixMilli(r.int()).UTC()
	return it
}

// reservation reads the 6 values of a reservation.
func (r *reply) reservation() Reservation {
	res := Reservation{ID: r.str(), Store: r.str(), Customer: r.str(), Status: r.str()}
	res.ExpiresAt = time.UnixMilli(r.int()).UTC()
	lines, err := decodeLines(r.str())
	if err != nil && r.err == nil {
		r.err = err
	}
	res.Lines = lines
	return res
}

func (r *reply) items(n int64) []Item {
	if n < 0 || n > 10000 {
		r.err = fmt.Errorf("script reply: bad item count %d", n)
		return nil
	}
	out := make([]Item, 0, n)
	for j := int64(0); j < n; j++ {
		out = append(out, r.item())
	}
	return out
}
