package httpapi

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// badLines are line bodies that the bulk routes refuse; each is put between
// two good lines.
var badLines = []struct{ name, set, adjust string }{
	{"unknown member", `{"store":"s1","sku":"b","on_hand":1,"colour":"red"}`, `{"store":"s1","sku":"b","delta":1,"colour":"red"}`},
	{"member in another case", `{"store":"s1","SKU":"b","on_hand":1}`, `{"store":"s1","SKU":"b","delta":1}`},
	{"escaped member in another case", `{"store":"s1","sk\u0055":"b","on_hand":1}`, `{"store":"s1","sk\u0055":"b","delta":1}`},
	{"repeated member", `{"store":"s1","sku":"b","on_hand":1,"on_hand":2}`, `{"store":"s1","sku":"b","delta":1,"delta":2}`},
	{"repeated null member", `{"store":"s1","sku":"b","on_hand":1,"sku":null}`, `{"store":"s1","sku":"b","delta":1,"reason":null,"reason":"x"}`},
	{"string for an integer", `{"store":"s1","sku":"b","on_hand":"1"}`, `{"store":"s1","sku":"b","delta":"1"}`},
	{"fraction", `{"store":"s1","sku":"b","on_hand":1.0}`, `{"store":"s1","sku":"b","delta":1.5}`},
	{"exponent", `{"store":"s1","sku":"b","on_hand":1e3}`, `{"store":"s1","sku":"b","delta":1E0}`},
	{"beyond int64", `{"store":"s1","sku":"b","on_hand":9223372036854775808}`, `{"store":"s1","sku":"b","delta":-9223372036854775809}`},
	{"leading zero", `{"store":"s1","sku":"b","on_hand":01}`, `{"store":"s1","sku":"b","delta":-01}`},
	{"bare minus", `{"store":"s1","sku":"b","on_hand":-}`, `{"store":"s1","sku":"b","delta":-}`},
	{"boolean for an integer", `{"store":"s1","sku":"b","on_hand":true}`, `{"store":"s1","sku":"b","delta":false}`},
	{"array for an integer", `{"store":"s1","sku":"b","on_hand":[1]}`, `{"store":"s1","sku":"b","delta":[1]}`},
	{"number for a string", `{"store":"s1","sku":7,"on_hand":1}`, `{"store":"s1","sku":"b","delta":1,"reason":7}`},
	{"object for a string", `{"store":{},"sku":"b","on_hand":1}`, `{"store":"s1","sku":{"a":1},"delta":1}`},
	{"line is a string", `"b"`, `"b"`},
	{"line is an array", `["s1","b",1]`, `["s1","b",1]`},
	{"line is a number", `5`, `5`},
	{"control character in a string", "{\"store\":\"s1\",\"sku\":\"b\tc\",\"on_hand\":1}", "{\"store\":\"s1\",\"sku\":\"b\nc\",\"delta\":1}"},
	{"bad escape", `{"store":"s1","sku":"b\x","on_hand":1}`, `{"store":"s1","sku":"b\x","delta":1}`},
	{"unterminated line", `{"store":"s1","sku":"b","on_hand":1`, `{"store":"s1","sku":"b","delta":1`},
	{"missing colon", `{"store" "s1","sku":"b","on_hand":1}`, `{"store" "s1","sku":"b","delta":1}`},
	{"trailing comma", `{"store":"s1","sku":"b","on_hand":1,}`, `{"store":"s1","sku":"b","delta":1,}`},
	{"misspelt null", `{"store":"s1","sku":"b","on_hand":nul}`, `{"store":"s1","sku":"b","delta":nulll}`},
	// Decoded well, refused by PUT /v1/items' validation of every line
	// (POST /v1/adjustments answers such a line alone, in its results).
	{"integer missing", `{"store":"s1","sku":"b"}`, ``},
	{"integer null", `{"store":"s1","sku":"b","on_hand":null}`, ``},
	{"null line", `null`, ``},
	{"empty line", `{}`, ``},
	{"bad sku", `{"store":"s1","sku":"b c","on_hand":1}`, ``},
	{"store missing", `{"sku":"b","on_hand":1}`, ``},
}

// badBodies are whole bodies that both bulk routes refuse; %s is the list's
// name and %s a good line of the route.
var badBodies = []struct{ name, body string }{
	{"list repeated", `{"%[1]s":[%[2]s],"%[1]s":[%[2]s]}`},
	{"list in another case", `{"ITEMS":[%[2]s],"UPDATES":[%[2]s]}`},
	{"another member beside the list", `{"%[1]s":[%[2]s],"dry_run":true}`},
	{"list is an object", `{"%[1]s":%[2]s}`},
	{"list is null", `{"%[1]s":null}`},
	{"list is empty", `{"%[1]s":[]}`},
	{"no list", `{}`},
	{"trailing data", `{"%[1]s":[%[2]s]}x`},
	{"a second object", `{"%[1]s":[%[2]s]} {}`},
	{"unterminated list", `{"%[1]s":[%[2]s`},
	{"trailing comma in the list", `{"%[1]s":[%[2]s,]}`},
	{"body is an array", `[%[2]s]`},
	{"body is null", `null`},
	{"body is empty", ` `},
}

// The bulk routes refuse every bad body whole, with the same answer as the
// strict decoder gives (the single-pass decoder decides no error of its
// own), and nothing of the request is applied: not the good lines before
// the bad one, nor those after it.
func TestBulkBodiesRefusedWhole(t *testing.T) {
	ts := newTestServer(t)
	ts.put("s1", "a", 5)
	goodSet := `{"store":"s1","sku":"a","on_hand":9}`
	goodAdjust := `{"store":"s1","sku":"a","delta":3}`
	routes := []struct {
		method, path, list, good string
		line                     func(i int) string
		strict                   func(body []byte) error
	}{
		{"PUT", "/v1/items", "items", goodSet, func(i int) string { return badLines[i].set },
			func(b []byte) error { var v bulkSetBody; return decodeStrict(b, &v) }},
		{"POST", "/v1/adjustments", "updates", goodAdjust, func(i int) string { return badLines[i].adjust },
			func(b []byte) error { var v bulkBody; return decodeStrict(b, &v) }},
	}
	check := func(t *testing.T, method, path, body string, strict func([]byte) error) {
		t.Helper()
		m := requireProblem(t, ts.req(method, path, tokAdmin, body), 400)
		if err := strict([]byte(body)); err != nil {
			require.Equal(t, err.(*Problem).Detail, m["detail"], "the strict decoder's answer")
		}
		it := ts.item("s1", "a")
		require.Equal(t, int64(5), it.OnHand, "nothing applied")
		require.Equal(t, int64(1), it.Version, "nothing applied")
		_, err := ts.e.GetItem(context.Background(), "s1", "b")
		require.ErrorIs(t, err, engine.ErrNotFound, "nothing applied")
	}
	for _, r := range routes {
		for i, c := range badLines {
			if r.line(i) == "" {
				continue
			}
			t.Run(r.list+"/"+c.name, func(t *testing.T) {
				body := fmt.Sprintf(`{"%s":[%s,%s,%s]}`, r.list, r.good, r.line(i), r.good)
				check(t, r.method, r.path, body, r.strict)
			})
		}
		for _, c := range badBodies {
			t.Run(r.list+"/"+c.name, func(t *testing.T) {
				check(t, r.method, r.path, fmt.Sprintf(c.body, r.list, r.good), r.strict)
			})
		}
		t.Run(r.list+"/too many lines", func(t *testing.T) {
			n := MaxBulk + 1
			if r.list == "items" {
				n = engine.MaxBulkSetLines + 1
			}
			body := fmt.Sprintf(`{"%s":[%s]}`, r.list, strings.Repeat(r.good+",", n-1)+r.good)
			m := requireProblem(t, ts.req(r.method, r.path, tokAdmin, body), 400)
			require.Equal(t, r.list, m["field"])
			require.Equal(t, int64(5), ts.item("s1", "a").OnHand, "nothing applied")
		})
	}
	// And what the single-pass decoder accepts applies: escapes, non-ASCII,
	// whitespace, nulls, -0.
	res := ts.req("PUT", "/v1/items", tokAdmin, " {\n\"items\" : [ {\"store\":\"s1\",\"sku\":\"caf\\u0065\",\"on_hand\":-0,\"reorder_point\":null} ,\r\n"+
		`{"sku":"t\u0065a","store":"s\u0031","on_hand":2,"safety_stock":1} ] }`+"\t")
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, int64(0), ts.item("s1", "cafe").OnHand)
	require.Equal(t, int64(2), ts.item("s1", "tea").OnHand)
	res = ts.req("POST", "/v1/adjustments", tokAdmin, `{"updates":[{"store":"s1","sku":"a","delta":-2,"reason":"d\"amaged, th\u00e9 é\\"}]}`)
	require.Equal(t, 200, res.Status, string(res.Body))
	require.Equal(t, int64(3), ts.item("s1", "a").OnHand)
}

var decodeLinesSeeds = []string{
	`{"items":[{"store":"s1","sku":"a","on_hand":1,"reorder_point":null,"max_per_customer":2,"safety_stock":-0}]}`,
	`{"updates":[{"store":"s1","sku":"a","delta":-3,"reason":"d\u00e9g\u00e2t"},null,{}]}`,
	`{"items":null}`, `{"items":[]}`, `{}`, ` {"items" : [ ] } `, `{"items":[{"sku":"\ud83d\ude00"}]}`,
	`{"items":[{"sku":"\ud83d"}]}`, "{\"items\":[{\"sku\":\"\xff\xfe\"}]}", `{"items":[{"on_hand":1.0}]}`,
	`{"items":[{"on_hand":01}]}`, `{"items":[{"on_hand":-9223372036854775808}]}`, `{"items":[{"on_hand":9223372036854775808}]}`,
	`{"items":[{"on_hand":"1"}]}`, `{"items":[{"sku":1}]}`, `{"items":[{"sku":null,"sku":null}]}`, `{"Items":[]}`,
	`{"items":[],"items":[]}`, `{"items":[{"on_hand":1}]} x`, `{"items":[{"on_hand":nullx}]}`, `{"items":[{"on_hand":1,}]}`,
	`{"updates":[{"delta":1e2}]}`, `{"updates":[{"reason":"\"\\\/\b\f\n\r\t"}]}`, `{"items":[[]]}`, `{"items":{}}`,
	`{"items":[{"store":"a"}],"updates":[]}`, `{"items":[{"on_hand":-}]}`, `{"items":[{"on_hand":1}true]}`,
}

// FuzzDecodeLines holds the single-pass decoder to decodeStrict: whatever
// it accepts, decodeStrict accepts with the same lines, and whatever it
// refuses, decodeStrict refuses (so the fallback answers the same error and
// a well-formed body never pays for two decodings).
func FuzzDecodeLines(f *testing.F) {
	for _, s := range decodeLinesSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		set, ok := decodeLines(body, "items", setLineMembers, 1<<20)
		var strictSet bulkSetBody
		err := decodeStrict(body, &strictSet)
		require.Equal(t, err == nil, ok, "decodeStrict answered %v", err)
		if ok {
			require.Equal(t, strictSet.Items, set)
		}
		adj, ok := decodeLines(body, "updates", bulkLineMembers, 1<<20)
		var strictAdj bulkBody
		err = decodeStrict(body, &strictAdj)
		require.Equal(t, err == nil, ok, "decodeStrict answered %v", err)
		if ok {
			require.Equal(t, strictAdj.Updates, adj)
		}
	})
}

// A body of more lines than the bound is left to decodeStrict, which reads
// it whole; the route then refuses it naming the list.
func TestDecodeLinesBound(t *testing.T) {
	t.Parallel()
	body := []byte(`{"items":[{"on_hand":1},{"on_hand":2},{"on_hand":3}]}`)
	_, ok := decodeLines(body, "items", setLineMembers, 2)
	require.False(t, ok)
	lines, ok := decodeLines(body, "items", setLineMembers, 3)
	require.True(t, ok)
	require.Len(t, lines, 3)
	b, err := decodeBulkSet(body, 2)
	require.NoError(t, err)
	require.Len(t, b.Items, 3)
}

// BenchmarkDecodeBulkSet decodes a PUT /v1/items body of 5,000 lines (what
// inventory import and the recovery bench send): two-pass is
// encoding/json and the walk of the member names (decodeStrictSlow), strict
// is decodeStrict (a scan of the names, then one encoding/json), single-pass
// is decodeBulkSet.
func BenchmarkDecodeBulkSet(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"items":[`)
	for i := 0; i < 5000; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"store":"store-%02d","sku":"sku-%07d","on_hand":%d,"reorder_point":5}`, i%30, i, i%100)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	b.Run("two-pass", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var v bulkSetBody
			if err := decodeStrictSlow(body, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("strict", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var v bulkSetBody
			if err := decodeStrict(body, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("single-pass", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeBulkSet(body, engine.MaxBulkSetLines); err != nil {
				b.Fatal(err)
			}
		}
	})
}
