package httpapi

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeStrict(t *testing.T) {
	t.Parallel()
	var b setBody
	require.NoError(t, decodeStrict([]byte(` {"on_hand":5,"reorder_point":null} `), &b))
	require.Equal(t, Int{V: 5, Set: true}, b.OnHand)
	require.Equal(t, Int{Set: true, Null: true}, b.ReorderPoint)
	require.False(t, b.MaxPerCustomer.Set)
	for _, bad := range []string{
		`{"ON_HAND":5}`, `{"on_hand":5,"on_hand":6}`, `{"on_hand":5}x`, `{"on_hand":-0.0}`, `{"on_hand":"5"}`,
		`{"on_hand":true}`, `{"on_hand":[5]}`, `null`, `5`, `{"on_hand":9223372036854775808}`,
	} {
		var b setBody
		require.Error(t, decodeStrict([]byte(bad), &b), bad)
	}
	var c checkoutBody
	require.Error(t, decodeStrict([]byte(`{"lines":[{"sku":"a","QTY":1}]}`), &c))
	require.Error(t, decodeStrict([]byte(`{"lines":[{"sku":"a","qty":1,"qty":2}]}`), &c))
	require.NoError(t, decodeStrict([]byte(`{"lines":[{"sku":"a","qty":1}],"customer":"c"}`), &c))
}

// FuzzDecode checks that the strict decoder accepts only well-formed JSON
// objects whose members are exactly the contract's, and that every integer
// it accepts is the integer written.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"on_hand":5}`, `{"on_hand":5,"reorder_point":null,"max_per_customer":2}`,
		`{"delta":-3,"reason":"damaged"}`, `{"lines":[{"sku":"a","qty":1}],"customer":"c","ttl_seconds":60}`,
		`{"updates":[{"store":"s1","sku":"a","delta":1,"reason":""}]}`, `{"on_hand":1.5}`, `{"on_hand":"1"}`,
		`{"on_hand":1e3}`, `{"x":1}`, `{`, `{"on_hand":99999999999999999999}`, `{} {}`, `{"lines":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		targets := []any{&setBody{}, &adjustBody{}, &checkoutBody{}, &reserveBody{}, &bulkBody{}, &emptyBody{}}
		for _, dst := range targets {
			if err := decodeStrict(body, dst); err != nil {
				p, ok := err.(*Problem)
				require.True(t, ok, "decode errors are problems")
				require.Equal(t, 400, p.Status)
				continue
			}
			var m map[string]any
			require.NoError(t, json.Unmarshal(body, &m), "accepted input is a JSON object")
			known := map[string]bool{}
			raw, _ := json.Marshal(dst)
			var fields map[string]any
			require.NoError(t, json.Unmarshal(raw, &fields))
			for k := range fields {
				known[k] = true
			}
			for k := range m {
				require.True(t, known[k], "accepted unknown member %q", k)
			}
			checkInts(t, body, dst)
		}
	})
}

// MarshalJSON lets the fuzz test list an Int's member like any other.
func (n Int) MarshalJSON() ([]byte, error) {
	if !n.Set || n.Null {
		return []byte("null"), nil
	}
	return json.Marshal(n.V)
}

func checkInts(t *testing.T, body []byte, dst any) {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var m map[string]any
	require.NoError(t, dec.Decode(&m))
	check := func(name string, n Int) {
		v, ok := m[name]
		if !ok {
			require.False(t, n.Set, name)
			return
		}
		if v == nil {
			require.True(t, n.Null, name)
			return
		}
		num, ok := v.(json.Number)
		require.True(t, ok, name)
		i, err := num.Int64()
		require.NoError(t, err, name)
		require.Equal(t, i, n.V, name)
	}
	switch d := dst.(type) {
	case *setBody:
		check("on_hand", d.OnHand)
		check("reorder_point", d.ReorderPoint)
		check("max_per_customer", d.MaxPerCustomer)
	case *adjustBody:
		check("delta", d.Delta)
	case *reserveBody:
		check("ttl_seconds", d.TTLSeconds)
	}
}
