package engine

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
)

// Every member of a script request, filled or left empty at random, encodes
// as encoding/json encodes it; a member added to request without a line in
// appendJSON fails here.
func TestRequestAppendJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	texts := []string{"", "s1", "sofa", "·g0123abcd", `q"uote`, "<&>", "tab\tnl\n", "\u2028", "\xff", "日本"}
	for i := 0; i < 2000; i++ {
		var req request
		v := reflect.ValueOf(&req).Elem()
		for f := 0; f < v.NumField(); f++ {
			if r.IntN(3) == 0 {
				continue // left empty
			}
			fv := v.Field(f)
			switch fv.Kind() {
			case reflect.String:
				fv.SetString(texts[r.IntN(len(texts))])
			case reflect.Int64:
				fv.SetInt(r.Int64N(2e12) - 1e12)
			case reflect.Bool:
				fv.SetBool(r.IntN(2) == 0)
			case reflect.Pointer:
				n := r.Int64N(100) - 1
				fv.Set(reflect.ValueOf(&n))
			case reflect.Slice:
				var ls []wireLine
				for k := r.IntN(4); k > 0; k-- {
					ls = append(ls, wireLine{SKU: texts[r.IntN(len(texts))], Qty: r.Int64N(1000)})
				}
				fv.Set(reflect.ValueOf(ls))
			default:
				t.Fatalf("request.%s: kind %s has no case here", v.Type().Field(f).Name, fv.Kind())
			}
		}
		want, err := json.Marshal(&req)
		if err != nil {
			t.Fatal(err)
		}
		if got := req.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("appendJSON:\n%s\nencoding/json:\n%s", got, want)
		}
	}
}
