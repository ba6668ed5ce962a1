package httpapi

import (
	"encoding/json"

	"github.com/shelfline/inventory/engine"
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
				var err error
				if out, err = appendItem(out, &b.Lines[i]); err != nil {
					return nil, err
				}
			}
			out = append(out, ']')
		}
		return append(out, '}'), nil
	case engine.Item:
		return appendItem(make([]byte, 0, 320), &b)
	}
	return json.Marshal(v)
}
