package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// Int is a JSON integer decoded strictly: a number token without a
// fraction or exponent that fits in an int64. Strings, fractions (even
// 1.0), exponents and out-of-range numbers are errors. Set tells whether the
// member was present; Null whether it was JSON null.
type Int struct {
	V    int64
	Set  bool
	Null bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *Int) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Null = true
		return nil
	}
	if len(b) == 0 || !(b[0] == '-' || (b[0] >= '0' && b[0] <= '9')) {
		return errors.New("must be an integer")
	}
	if bytes.ContainsAny(b, ".eE") {
		return errors.New("must be a whole number without fraction or exponent")
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return errors.New("out of range")
	}
	n.V = v
	return nil
}

// decodeStrict decodes one JSON object from body into dst: unknown members,
// wrong types and trailing data are errors, reported as a 400 problem.
//
// A body that passes a one-pass scan of its member names (exact, single,
// known: membersOK) decodes with one json.Unmarshal; any other body, and any
// that Unmarshal refuses, takes the slow path below, which finds and words
// the error. Both paths accept and refuse the same bodies; the fast one only
// saves a well-formed request the two decoders and the token walk (a third
// of the HTTP handler's CPU on a checkout).
func decodeStrict(body []byte, dst any) error {
	if t := reflect.TypeOf(dst); t.Kind() == reflect.Pointer && membersOK(body, t.Elem()) {
		if json.Unmarshal(body, dst) == nil {
			return nil
		}
		// Unmarshal may have filled part of dst: start again from its zero
		// value, so the slow path sees what a first decode would.
		reflect.ValueOf(dst).Elem().SetZero()
	}
	return decodeStrictSlow(body, dst)
}

// decodeStrictSlow is decodeStrict's path that words the error.
func decodeStrictSlow(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("the request body is empty; a JSON object is expected")
	}
	if bytes.TrimSpace(body)[0] != '{' {
		return badRequest("the request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return badRequest(describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("trailing data after the JSON object")
	}
	// encoding/json matches member names case-insensitively and lets a
	// repeated member win; the contract's members are exact and single.
	kd := json.NewDecoder(bytes.NewReader(body))
	if err := checkMembers(kd, reflect.TypeOf(dst).Elem()); err != nil {
		return badRequest(err.Error())
	}
	return nil
}

var intType = reflect.TypeOf(Int{})

// checkMembers reads one JSON value of Go type t from dec and fails on an
// object member that is not exactly one of t's JSON names, or is repeated.
func checkMembers(dec *json.Decoder, t reflect.Type) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, isDelim := tok.(json.Delim)
	if !isDelim {
		return nil
	}
	switch {
	case d == '{' && t.Kind() == reflect.Struct && t != intType:
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			fields[name] = t.Field(i).Type
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			k, _ := kt.(string)
			ft, ok := fields[k]
			if !ok {
				return fmt.Errorf("unknown member %q", k)
			}
			if seen[k] {
				return fmt.Errorf("member %q appears twice", k)
			}
			seen[k] = true
			if err := checkMembers(dec, ft); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	case d == '[' && t.Kind() == reflect.Slice:
		for dec.More() {
			if err := checkMembers(dec, t.Elem()); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	}
	// Any other composite value: skip it.
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
	return nil
}

func describeJSONError(err error) string {
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("member %q must be %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return fmt.Sprintf("expected %s, got %s", jsonKind(te.Type.Kind().String()), te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "malformed JSON: unexpected end of input"
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown member " + f
	}
	return "invalid JSON: " + strings.TrimPrefix(msg, "json: ")
}

func jsonKind(k string) string {
	switch k {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	}
	return k
}

// Request bodies (docs/design.md §12). Members not listed are refused.

type setBody struct {
	OnHand         Int `json:"on_hand"`
	ReorderPoint   Int `json:"reorder_point"`
	MaxPerCustomer Int `json:"max_per_customer"`
	SafetyStock    Int `json:"safety_stock"`
}

type adjustBody struct {
	Delta  Int    `json:"delta"`
	State  string `json:"state"`
	Reason string `json:"reason"`
}

type moveBody struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Qty    Int    `json:"qty"`
	Reason string `json:"reason"`
}

type fulfilmentBody struct {
	Lines     []lineBody `json:"lines"`
	Reference string     `json:"reference"`
}

// commitBody is the body of commit: nothing, {}, or a fulfilment.
type commitBody struct {
	Fulfilment string `json:"fulfilment"`
}

type lineBody struct {
	SKU string `json:"sku"`
	Qty Int    `json:"qty"`
}

type checkoutBody struct {
	Lines      []lineBody `json:"lines"`
	Customer   string     `json:"customer"`
	Channel    string     `json:"channel"`
	Fulfilment string     `json:"fulfilment"`
}

type reserveBody struct {
	Lines      []lineBody `json:"lines"`
	TTLSeconds Int        `json:"ttl_seconds"`
	Customer   string     `json:"customer"`
}

type bulkLine struct {
	Store  string `json:"store"`
	SKU    string `json:"sku"`
	Delta  Int    `json:"delta"`
	Reason string `json:"reason"`
}

type bulkBody struct {
	Updates []bulkLine `json:"updates"`
}

// setLine is one line of PUT /v1/items: a PUT of one item's body with
// its store and SKU.
type setLine struct {
	Store          string `json:"store"`
	SKU            string `json:"sku"`
	OnHand         Int    `json:"on_hand"`
	ReorderPoint   Int    `json:"reorder_point"`
	MaxPerCustomer Int    `json:"max_per_customer"`
	SafetyStock    Int    `json:"safety_stock"`
}

type bulkSetBody struct {
	Items []setLine `json:"items"`
}

// emptyBody is the body of commit and release: nothing, or {}.
type emptyBody struct{}

// MaxBulk bounds the lines of one POST /v1/adjustments.
const MaxBulk = 1000

func required(name string, n Int) error {
	if !n.Set || n.Null {
		return badRequest(fmt.Sprintf("member %q is required and must be an integer", name)).with("field", name)
	}
	return nil
}
