package httpapi

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/jsonenc"
)

// encodeBulkResults encodes the answer of a bulk route, {"results":[…]},
// byte for byte as encoding/json does (TestEncodeBulkResults holds it to
// that), without reflection: an answer of 10,000 items was a tenth of the
// API's CPU during an import. A line with a problem, or an item with a
// string that needs escaping, goes through encoding/json.
func encodeBulkResults(out []bulkResult) ([]byte, error) {
	b := make([]byte, 0, 16+len(out)*340)
	b = append(b, `{"results":[`...)
	for i := range out {
		if i > 0 {
			b = append(b, ',')
		}
		r := &out[i]
		if r.Error != nil || r.Item == nil || !plainJSON(r.Item.Store) || !plainJSON(r.Item.SKU) {
			line, err := json.Marshal(r)
			if err != nil {
				return nil, err
			}
			b = append(b, line...)
			continue
		}
		b = append(b, `{"status":`...)
		b = strconv.AppendInt(b, int64(r.Status), 10)
		b = append(b, `,"item":`...)
		var err error
		if b, err = appendItem(b, r.Item); err != nil {
			return nil, err
		}
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

// appendItem appends it as encoding/json encodes an engine.Item.
func appendItem(b []byte, it *engine.Item) ([]byte, error) {
	b = append(b, `{"store":`...)
	b = jsonenc.String(b, it.Store)
	b = append(b, `,"sku":`...)
	b = jsonenc.String(b, it.SKU)
	b = appendMember(b, `,"on_hand":`, it.OnHand)
	b = appendMember(b, `,"reserved":`, it.Reserved)
	b = appendMember(b, `,"committed":`, it.Committed)
	b = appendMember(b, `,"damaged":`, it.Damaged)
	b = appendMember(b, `,"quality_control":`, it.QualityControl)
	b = appendMember(b, `,"display":`, it.Display)
	b = appendMember(b, `,"incoming":`, it.Incoming)
	b = appendMember(b, `,"available":`, it.Available)
	b = appendOptional(b, `,"safety_stock":`, it.SafetyStock)
	b = appendMember(b, `,"version":`, it.Version)
	b = appendOptional(b, `,"reorder_point":`, it.ReorderPoint)
	b = appendOptional(b, `,"max_per_customer":`, it.MaxPerCustomer)
	b = append(b, `,"updated_at":`...)
	b, err := appendTime(b, it.UpdatedAt)
	if err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// appendTime appends t as time.Time.MarshalJSON does, without its
// allocation for the common case: a year of four digits and a zone offset
// within a day (MarshalJSON refuses other years and offsets).
func appendTime(b []byte, t time.Time) ([]byte, error) {
	_, off := t.Zone()
	if y := t.Year(); y < 0 || y > 9999 || off <= -24*3600 || off >= 24*3600 {
		j, err := t.MarshalJSON()
		return append(b, j...), err
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

func appendMember(b []byte, name string, v int64) []byte {
	return strconv.AppendInt(append(b, name...), v, 10)
}

func appendOptional(b []byte, name string, v *int64) []byte {
	b = append(b, name...)
	if v == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, *v, 10)
}

// plainJSON tells whether encoding/json writes s as it stands between
// quotes: printable ASCII without a quote, a backslash or an HTML character
// (which it escapes).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
