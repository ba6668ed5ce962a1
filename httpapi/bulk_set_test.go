package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

type bulkSetAnswer struct {
	Results []struct {
		Status int          `json:"status"`
		Item   *engine.Item `json:"item"`
		Error  *struct {
			Type string `json:"type"`
		} `json:"error"`
	} `json:"results"`
}

// PUT /v1/items creates and sets items, each line answering its own
// status, in order.
func TestBulkSet(t *testing.T) {
	ts := newTestServer(t)
	ts.put("s1", "sofa", 10)
	_, err := ts.e.Reserve(context.Background(), engine.ReserveRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 4}}}, engine.Op{})
	require.NoError(t, err)
	lines := []string{
		`{"store":"s1","sku":"sofa","on_hand":12,"reorder_point":3}`,
		`{"store":"s1","sku":"sofa","on_hand":2}`,
		`{"store":"s2","sku":"lamp","on_hand":5,"max_per_customer":2}`,
		`{"store":"s2","sku":"lamp","on_hand":6,"max_per_customer":null,"safety_stock":2}`,
	}
	for i := 0; i < 300; i++ {
		lines = append(lines, fmt.Sprintf(`{"store":"s%d","sku":"k%03d","on_hand":%d}`, i%5, i, i))
	}
	res := ts.req("PUT", "/v1/items", tokAdmin, `{"items":[`+strings.Join(lines, ",")+`]}`)
	require.Equal(t, 200, res.Status, string(res.Body))
	var body bulkSetAnswer
	require.NoError(t, json.Unmarshal(res.Body, &body))
	require.Len(t, body.Results, len(lines))
	require.Equal(t, 200, body.Results[0].Status)
	require.Equal(t, int64(12), body.Results[0].Item.OnHand)
	require.Equal(t, int64(3), *body.Results[0].Item.ReorderPoint)
	require.Equal(t, 409, body.Results[1].Status, "below reserved: refused alone")
	require.NotNil(t, body.Results[1].Error)
	require.Equal(t, 201, body.Results[2].Status)
	require.Equal(t, int64(2), *body.Results[2].Item.MaxPerCustomer)
	require.Equal(t, 200, body.Results[3].Status)
	require.Nil(t, body.Results[3].Item.MaxPerCustomer, "null clears")
	require.Equal(t, int64(2), *body.Results[3].Item.SafetyStock)
	require.Equal(t, int64(2), body.Results[3].Item.Version)
	for i := 0; i < 300; i++ {
		r := body.Results[4+i]
		require.Equal(t, 201, r.Status)
		require.Equal(t, fmt.Sprintf("k%03d", i), r.Item.SKU, "results in request order")
		require.Equal(t, int64(i), ts.item(fmt.Sprintf("s%d", i%5), fmt.Sprintf("k%03d", i)).OnHand)
	}
	require.Equal(t, int64(12), ts.item("s1", "sofa").OnHand)

	// A retry with the same key answers the same and changes nothing.
	small := `{"items":[{"store":"s3","sku":"x","on_hand":1},{"store":"s3","sku":"x","on_hand":-0}]}`
	first := ts.req("PUT", "/v1/items", tokAdmin, small, "Idempotency-Key", "imp-1")
	require.Equal(t, 200, first.Status, string(first.Body))
	again := ts.req("PUT", "/v1/items", tokAdmin, small, "Idempotency-Key", "imp-1")
	require.Equal(t, 200, again.Status)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.JSONEq(t, string(first.Body), string(again.Body))
	require.Equal(t, int64(2), ts.item("s3", "x").Version)
}

// One invalid line refuses the whole request, naming the line; nothing is
// applied.
func TestBulkSetValidatesEveryLineFirst(t *testing.T) {
	ts := newTestServer(t)
	good := `{"store":"s1","sku":"a","on_hand":1}`
	for _, c := range []struct{ name, bad, field string }{
		{"on_hand missing", `{"store":"s1","sku":"b"}`, "items[1].on_hand"},
		{"on_hand null", `{"store":"s1","sku":"b","on_hand":null}`, "items[1].on_hand"},
		{"on_hand negative", `{"store":"s1","sku":"b","on_hand":-1}`, "items[1].on_hand"},
		{"bad sku", `{"store":"s1","sku":"b c","on_hand":1}`, "items[1].sku"},
		{"bad store", `{"store":"","sku":"b","on_hand":1}`, "items[1].store"},
		{"limit too big", `{"store":"s1","sku":"b","on_hand":1,"max_per_customer":2000000000}`, "items[1].max_per_customer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := requireProblem(t, ts.req("PUT", "/v1/items", tokAdmin, `{"items":[`+good+`,`+c.bad+`,`+good+`]}`), 400)
			require.Equal(t, c.field, m["field"])
		})
	}
	requireProblem(t, ts.req("PUT", "/v1/items", tokAdmin, `{"items":[`+good+`,{"store":"s1","sku":"b","on_hand":1,"delta":2}]}`), 400)
	m := requireProblem(t, ts.req("PUT", "/v1/items", tokAdmin, `{"items":[]}`), 400)
	require.Equal(t, "items", m["field"])
	requireProblem(t, ts.req("PUT", "/v1/items", tokReader, `{"items":[`+good+`]}`), 403)
	requireProblem(t, ts.req("PUT", "/v1/items", tokS1, `{"items":[`+good+`,{"store":"s2","sku":"b","on_hand":1}]}`), 403)
	_, err := ts.e.GetItem(context.Background(), "s1", "a")
	require.ErrorIs(t, err, engine.ErrNotFound, "nothing applied")
	res := ts.req("PUT", "/v1/items", tokS1, `{"items":[`+good+`]}`)
	require.Equal(t, 200, res.Status, string(res.Body))
}
