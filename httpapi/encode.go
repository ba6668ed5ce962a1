package httpapi

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/jsonenc"
)

// linesResult is the body of a checkout or fulfilment: {"lines":[item…]}.
type linesResult struct {
	Lines []engine.Item `json:"lines"`
}

// encodeBody encodes a write's answer. The bodies every sale and every
// stock change send (an item, the lines of a checkout) are appended by
// hand, byte for byte what encoding/json makes of them (a test compares
// the two), at a sixth of its cost; any other body goes through
// encoding/json.
func encodeBody(v any) ([]byte, error) {
	switch b := v.(type) {
	case linesResult:
		out := make([]byte, 0, 64+300*len(b.Lines))
		out = append(out, `{"lines":`...)
		if b.Lines == nil {
			out = append(out, "null"...)
		} else {
			out = append(out, '[')
			for i := range b.Lines {
				if i > 0 {
					out = append(out, ',')
				}
				out = appendItem(out, &b.Lines[i])
			}
			out = append(out, ']')
		}
		return append(out, '}'), nil
	case engine.Item:
		return appendItem(make([]byte, 0, 320), &b), nil
	}
	return json.Marshal(v)
}

// appendItem appends the JSON of it, as encoding/json writes engine.Item.
func appendItem(b []byte, it *engine.Item) []byte {
	b = append(b, `{"store":`...)
	b = appendString(b, it.Store)
	b = append(b, `,"sku":`...)
	b = appendString(b, it.SKU)
	b = appendInt(b, `,"on_hand":`, it.OnHand)
	b = appendInt(b, `,"reserved":`, it.Reserved)
	b = appendInt(b, `,"committed":`, it.Committed)
	b = appendInt(b, `,"damaged":`, it.Damaged)
	b = appendInt(b, `,"quality_control":`, it.QualityControl)
	b = appendInt(b, `,"display":`, it.Display)
	b = appendInt(b, `,"incoming":`, it.Incoming)
	b = appendInt(b, `,"available":`, it.Available)
	b = appendOptional(b, `,"safety_stock":`, it.SafetyStock)
	b = appendInt(b, `,"version":`, it.Version)
	b = appendOptional(b, `,"reorder_point":`, it.ReorderPoint)
	b = appendOptional(b, `,"max_per_customer":`, it.MaxPerCustomer)
	b = append(b, `,"updated_at":`...)
	if y := it.UpdatedAt.Year(); y < 0 || y > 9999 {
		// encoding/json refuses such a time; keep its answer
		t, _ := json.Marshal(it.UpdatedAt)
		b = append(b, t...)
	} else {
		b = append(b, '"')
		b = it.UpdatedAt.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	return append(b, '}')
}

func appendInt(b []byte, name string, n int64) []byte {
	return strconv.AppendInt(append(b, name...), n, 10)
}

func appendOptional(b []byte, name string, n *int64) []byte {
	b = append(b, name...)
	if n == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, *n, 10)
}

// appendString appends s as a JSON string, as encoding/json writes it.
func appendString(b []byte, s string) []byte { return jsonenc.String(b, s) }
