package httpapi

import (
	"reflect"
	"testing"
)

// sameAsSlow checks that decodeStrict (fast path first) and the slow path
// accept and refuse body alike, with the same message and the same value.
func sameAsSlow[T any](t testing.TB, body []byte) {
	var fast, slow T
	ef := decodeStrict(body, &fast)
	es := decodeStrictSlow(body, &slow)
	if (ef == nil) != (es == nil) || (ef != nil && ef.Error() != es.Error()) {
		t.Fatalf("%q: fast path says %v, slow path %v", body, ef, es)
	}
	if ef == nil && !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q: fast path decodes %+v, slow path %+v", body, fast, slow)
	}
}

var memberBodies = []string{
	`{"lines":[{"sku":"sofa","qty":1}]}`,
	` {"lines":[{"sku":"a","qty":1},{"sku":"b","qty":2}],"customer":"c","channel":"pos","fulfilment":"later"} `,
	`{"lines":[]}`, `{}`, `{"lines":null}`, `{"lines":[{"sku":"a","qty":1}]}x`, `{"lines":[{"sku":"a","qty":1}]} {}`,
	`{"lines":[{"sku":"a","QTY":1}]}`, `{"lines":[{"sku":"a","qty":1,"qty":2}]}`, `{"Lines":[]}`,
	`{"lines":[{"sku":"a","qty":1.0}]}`, `{"lines":[{"sku":"a","qty":"1"}]}`, `{"lines":[{"sku":"a","qty":1e3}]}`,
	`{"lines":[{"sku":"a","qty":99999999999999999999}]}`, `{"lines":[{"sku":"\u0061","qty":1}]}`,
	`{"\u006cines":[]}`, `{"lines":[{"sku":"a","qty":1}],"extra":{"x":[1,2,{"y":"}"}]}}`, `{"lines":{"sku":"a"}}`,
	`{"lines":[{"sku":"a","qty":tru}]}`, `{"lines":[{"sku":"a","qty":-}]}`, `{"lines":[{"sku":"a\"b","qty":1}]}`,
	`{"lines":[{"sku":"a","qty":1}`, `{"lines":[{"sku":"a","qty":1}],}`, `{,}`, `[]`, `null`, `"x"`, ``, `   `,
	"{\"lines\":[{\"sku\":\"a\",\"qty\":1}]}\f", "\f{}", `{"customer":"c","customer":"d"}`, `{"channel":5}`,
	`{"lines":[{"sku":"a","qty":1}], "customer": null}`, `{"lines":[1,2]}`, `{"lines":["a"]}`,
}

func TestMembersFastPathAgreesWithSlow(t *testing.T) {
	t.Parallel()
	for _, b := range memberBodies {
		sameAsSlow[checkoutBody](t, []byte(b))
		sameAsSlow[setBody](t, []byte(b))
	}
	for _, b := range []string{`{"on_hand":5,"reorder_point":null}`, `{"on_hand":5,"on_hand":5}`, `{"on_hand":-1}`, `{"safety_stock":3,"max_per_customer":-1}`} {
		sameAsSlow[setBody](t, []byte(b))
	}
}

func FuzzMembersFastPath(f *testing.F) {
	for _, b := range memberBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sameAsSlow[checkoutBody](t, body)
		sameAsSlow[setBody](t, body)
		sameAsSlow[adjustBody](t, body)
	})
}

func BenchmarkDecodeCheckoutBody(b *testing.B) {
	body := []byte(`{"lines":[{"sku":"sofa","qty":1}],"customer":"c-42"}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c checkoutBody
			if err := decodeStrict(body, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("slow", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c checkoutBody
			if err := decodeStrictSlow(body, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
