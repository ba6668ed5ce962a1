package httpapi

import (
	"encoding/json"
	"strconv"
)

// The bulk bodies (PUT /v1/items, POST /v1/adjustments) are an object with
// one array of flat line objects whose members are strings or integers.
// They can hold thousands of lines, and decodeStrict reads them twice
// (encoding/json, then checkMembers for exact, single member names) through
// reflection. decodeLines reads such a body once, byte by byte, and checks
// as it goes what decodeStrict checks: well-formed JSON, one object, the
// list as its only member, each line's members exact and single, strings
// where strings are expected, integers (no fraction, no exponent, within
// int64) where integers are, nothing after the object.
//
// It never decides an error itself: on anything it does not accept it
// reports false, and the caller decodes the body again with decodeStrict,
// which accepts it or answers the error it always answered. So the fast
// path changes no error message, only the cost of a well-formed body; the
// differential fuzz test FuzzDecodeLines holds the two to the same answers.

// lineMember is one member of a line object of type L: its JSON name, and
// where its value goes (str for a JSON string, num for an integer; null
// leaves a string empty and marks an integer Null, as encoding/json does).
type lineMember[L any] struct {
	name string
	str  func(*L) *string
	num  func(*L) *Int
	// intern shares one copy of each value among the lines: for a member
	// with few distinct values (a store).
	intern bool
}

// decodeLines decodes body as {"<list>":[L,...]} in one pass. It answers
// the lines and true, or false when the body is not one it accepts (then
// decodeStrict decides), including more than max lines, which decodeStrict
// then answers with the right error after reading the whole body. A null
// list answers no lines and a null line a zero line, as encoding/json does.
func decodeLines[L any](body []byte, list string, members []lineMember[L], max int) ([]L, bool) {
	if len(members) > 64 {
		return nil, false
	}
	s := scanner{b: body}
	s.ws()
	if !s.eat('{') {
		return nil, false
	}
	var lines []L
	seenList := false
	s.ws()
	if !s.eat('}') {
		for {
			s.ws()
			k, ok := s.strBytes()
			if !ok || string(k) != list || seenList {
				return nil, false
			}
			seenList = true
			s.ws()
			if !s.eat(':') {
				return nil, false
			}
			s.ws()
			if s.lit("null") {
				lines = nil
			} else {
				if lines, ok = decodeList(&s, members, max); !ok {
					return nil, false
				}
			}
			s.ws()
			if s.eat('}') {
				break
			}
			if !s.eat(',') {
				return nil, false
			}
		}
	}
	s.ws()
	if s.i != len(s.b) {
		return nil, false
	}
	return lines, true
}

func decodeList[L any](s *scanner, members []lineMember[L], max int) ([]L, bool) {
	if !s.eat('[') {
		return nil, false
	}
	// A line takes at least ~30 bytes; a guess that saves most regrowth.
	lines := make([]L, 0, min(max, len(s.b)/32+1))
	s.ws()
	if s.eat(']') {
		return lines, true
	}
	for {
		if len(lines) == max {
			return nil, false
		}
		lines = append(lines, *new(L))
		s.ws()
		if !s.lit("null") && !decodeLine(s, &lines[len(lines)-1], members) {
			return nil, false
		}
		s.ws()
		if s.eat(']') {
			return lines, true
		}
		if !s.eat(',') {
			return nil, false
		}
	}
}

func decodeLine[L any](s *scanner, l *L, members []lineMember[L]) bool {
	if !s.eat('{') {
		return false
	}
	s.ws()
	if s.eat('}') {
		return true
	}
	var seen uint64
	for {
		s.ws()
		k, ok := s.strBytes()
		if !ok {
			return false
		}
		m := -1
		for j := range members {
			if members[j].name == string(k) {
				m = j
				break
			}
		}
		if m < 0 || seen&(1<<m) != 0 {
			return false
		}
		seen |= 1 << m
		s.ws()
		if !s.eat(':') {
			return false
		}
		s.ws()
		if members[m].str != nil {
			if !s.lit("null") {
				v, ok := s.strBytes()
				if !ok {
					return false
				}
				*members[m].str(l) = s.keep(v, members[m].intern)
			}
		} else {
			n, ok := s.integer()
			if !ok {
				return false
			}
			*members[m].num(l) = n
		}
		s.ws()
		if s.eat('}') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

// scanner reads JSON tokens from b at i; each method reports false, without
// a reason, on anything it does not accept.
type scanner struct {
	b []byte
	i int
	// interned holds the values kept with intern.
	interned map[string]string
}

// keep copies v, once per distinct value when intern is set.
func (s *scanner) keep(v []byte, intern bool) string {
	if !intern {
		return string(v)
	}
	if k, ok := s.interned[string(v)]; ok {
		return k
	}
	if s.interned == nil {
		s.interned = map[string]string{}
	}
	k := string(v)
	s.interned[k] = k
	return k
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// lit consumes the literal w when it is the next token.
func (s *scanner) lit(w string) bool {
	if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w && !s.identAt(s.i+len(w)) {
		s.i += len(w)
		return true
	}
	return false
}

// identAt tells whether the byte at i would continue a literal or number.
func (s *scanner) identAt(i int) bool {
	if i >= len(s.b) {
		return false
	}
	c := s.b[i]
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '+' || c == '-'
}

// strBytes reads a JSON string and answers its bytes: plain ASCII as it
// stands in the body (no copy: the caller copies what it keeps); a string
// with an escape or a byte above 0x7F is handed to encoding/json, so escapes
// and invalid UTF-8 decode exactly as they always did.
func (s *scanner) strBytes() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start := s.i
	plain := true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if plain {
				return s.b[start : s.i-1], true
			}
			var v string
			if json.Unmarshal(s.b[start-1:s.i], &v) != nil {
				return nil, false
			}
			return []byte(v), true
		case c < 0x20:
			return nil, false
		case c == '\\':
			plain = false
			s.i += 2
		case c >= 0x80:
			plain = false
			s.i++
		default:
			s.i++
		}
	}
	return nil, false
}

// integer reads null (Set and Null) or an integer as Int.UnmarshalJSON
// accepts it: -?(0|[1-9][0-9]*) within int64, no fraction or exponent.
func (s *scanner) integer() (Int, bool) {
	if s.lit("null") {
		return Int{Set: true, Null: true}, true
	}
	start := s.i
	s.eat('-')
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	n := s.i - digits
	if n == 0 || (n > 1 && s.b[digits] == '0') || s.identAt(s.i) {
		return Int{}, false
	}
	v, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	if err != nil {
		return Int{}, false
	}
	return Int{V: v, Set: true}, true
}

var setLineMembers = []lineMember[setLine]{
	{name: "store", str: func(l *setLine) *string { return &l.Store }, intern: true},
	{name: "sku", str: func(l *setLine) *string { return &l.SKU }},
	{name: "on_hand", num: func(l *setLine) *Int { return &l.OnHand }},
	{name: "reorder_point", num: func(l *setLine) *Int { return &l.ReorderPoint }},
	{name: "max_per_customer", num: func(l *setLine) *Int { return &l.MaxPerCustomer }},
	{name: "safety_stock", num: func(l *setLine) *Int { return &l.SafetyStock }},
}

var bulkLineMembers = []lineMember[bulkLine]{
	{name: "store", str: func(l *bulkLine) *string { return &l.Store }, intern: true},
	{name: "sku", str: func(l *bulkLine) *string { return &l.SKU }},
	{name: "delta", num: func(l *bulkLine) *Int { return &l.Delta }},
	{name: "reason", str: func(l *bulkLine) *string { return &l.Reason }},
}

// decodeBulkSet decodes the body of PUT /v1/items: in one pass when it is
// well formed, else through decodeStrict, whose error it answers.
func decodeBulkSet(body []byte, max int) (bulkSetBody, error) {
	if lines, ok := decodeLines(body, "items", setLineMembers, max); ok {
		return bulkSetBody{Items: lines}, nil
	}
	var b bulkSetBody
	err := decodeStrict(body, &b)
	return b, err
}

// decodeBulkAdjust decodes the body of POST /v1/adjustments like
// decodeBulkSet.
func decodeBulkAdjust(body []byte, max int) (bulkBody, error) {
	if lines, ok := decodeLines(body, "updates", bulkLineMembers, max); ok {
		return bulkBody{Updates: lines}, nil
	}
	var b bulkBody
	err := decodeStrict(body, &b)
	return b, err
}
