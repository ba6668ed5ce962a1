package httpapi

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestItems(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)

	r := ts.req("PUT", "/v1/stores/s1/items/sofa", tokAdmin, `{"on_hand":10,"reorder_point":2}`)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.Equal(t, `"1"`, r.Header.Get("ETag"))
	require.Equal(t, "/v1/stores/s1/items/sofa", r.Header.Get("Location"))
	m := r.json(t)
	for _, k := range []string{"store", "sku", "on_hand", "reserved", "available", "version", "reorder_point", "max_per_customer", "updated_at"} {
		require.Contains(t, m, k)
	}
	require.Equal(t, float64(10), m["on_hand"])
	require.Equal(t, float64(2), m["reorder_point"])
	require.Nil(t, m["max_per_customer"])

	r = ts.req("PUT", "/v1/stores/s1/items/sofa", tokAdmin, `{"on_hand":12}`)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, `"2"`, r.Header.Get("ETag"))
	require.Equal(t, float64(2), r.json(t)["reorder_point"], "an absent member keeps the setting")
	r = ts.req("PUT", "/v1/stores/s1/items/sofa", tokAdmin, `{"on_hand":12,"reorder_point":null}`)
	require.Equal(t, http.StatusOK, r.Status)
	require.Nil(t, r.json(t)["reorder_point"], "null clears the setting")

	r = ts.req("GET", "/v1/stores/s1/items/sofa", tokReader, "")
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, `"3"`, r.Header.Get("ETag"))
	require.Equal(t, float64(3), r.json(t)["version"])
	r = ts.req("GET", "/v1/stores/s1/items/sofa", tokReader, "", "If-None-Match", `"3"`)
	require.Equal(t, http.StatusNotModified, r.Status)
	require.Empty(t, r.Body)
	r = ts.req("GET", "/v1/stores/s1/items/sofa", tokReader, "", "If-None-Match", `"2"`)
	require.Equal(t, http.StatusOK, r.Status)
	requireProblem(t, ts.req("GET", "/v1/stores/s1/items/nope", tokReader, ""), 404)

	r = ts.req("POST", "/v1/stores/s1/items/sofa/adjust", tokS1, `{"delta":-2,"reason":"damaged"}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, `"4"`, r.Header.Get("ETag"))
	require.Equal(t, float64(10), r.json(t)["on_hand"])
	requireProblem(t, ts.req("POST", "/v1/stores/s1/items/nope/adjust", tokS1, `{"delta":1}`), 404)
	p := requireProblem(t, ts.req("POST", "/v1/stores/s1/items/sofa/adjust", tokS1, `{"delta":-11}`), 409)
	require.Contains(t, p, "shortages")

	// Listing, with pagination.
	for i := 0; i < 5; i++ {
		ts.put("s1", fmt.Sprintf("chair-%d", i), int64(i))
	}
	var skus []any
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		r = ts.req("GET", "/v1/stores/s1/items?limit=2&cursor="+cursor, tokS1, "")
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		m := r.json(t)
		for _, it := range m["items"].([]any) {
			skus = append(skus, it.(map[string]any)["sku"])
		}
		require.Contains(t, m, "next_cursor")
		if m["next_cursor"] == nil {
			break
		}
		cursor = m["next_cursor"].(string)
	}
	require.Equal(t, []any{"chair-0", "chair-1", "chair-2", "chair-3", "chair-4", "sofa"}, skus)
	r = ts.req("GET", "/v1/stores/empty/items", tokAdmin, "")
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, []any{}, r.json(t)["items"])
	requireProblem(t, ts.req("GET", "/v1/stores/s1/items?limit=0", tokS1, ""), 400)
	requireProblem(t, ts.req("GET", "/v1/stores/s1/items?limit=abc", tokS1, ""), 400)
	requireProblem(t, ts.req("GET", "/v1/stores/s1/items?limit=1001", tokS1, ""), 400)

	// Availability across stores.
	ts.put("s2", "sofa", 5)
	r = ts.req("GET", "/v1/items/sofa", tokReader, "")
	require.Equal(t, http.StatusOK, r.Status)
	m = r.json(t)
	require.Equal(t, "sofa", m["sku"])
	require.Equal(t, float64(15), m["available"])
	stores := m["stores"].([]any)
	require.Len(t, stores, 2)
	s0 := stores[0].(map[string]any)
	require.Equal(t, "s1", s0["store"])
	require.Equal(t, float64(10), s0["on_hand"])
	require.Equal(t, float64(0), s0["reserved"])
	require.Equal(t, float64(10), s0["available"])
	r = ts.req("GET", "/v1/items/sofa", tokS2, "")
	require.Equal(t, float64(5), r.json(t)["available"], "a store token sees its own store only")
	r = ts.req("GET", "/v1/items/unknown", tokReader, "")
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, float64(0), r.json(t)["available"])

	r = ts.req("GET", "/v1/stores", tokReader, "")
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, []any{"s1", "s2"}, r.json(t)["stores"])
}

func TestConditionalRequests(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	r := ts.req("PUT", "/v1/stores/s1/items/bed", tokAdmin, `{"on_hand":3}`, "If-None-Match", "*")
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	p := requireProblem(t, ts.req("PUT", "/v1/stores/s1/items/bed", tokAdmin, `{"on_hand":4}`, "If-None-Match", "*"), 412)
	require.Equal(t, float64(1), p["current_version"])

	p = requireProblem(t, ts.req("PUT", "/v1/stores/s1/items/bed", tokAdmin, `{"on_hand":4}`, "If-Match", `"7"`), 412)
	require.Equal(t, float64(1), p["current_version"])
	p = requireProblem(t, ts.req("POST", "/v1/stores/s1/items/bed/adjust", tokAdmin, `{"delta":1}`, "If-Match", `"7"`), 412)
	require.Equal(t, float64(1), p["current_version"])
	requireProblem(t, ts.req("POST", "/v1/stores/s1/items/bed/adjust", tokAdmin, `{"delta":1}`, "If-Match", `garbage`), 412)
	requireProblem(t, ts.req("PUT", "/v1/stores/s1/items/none", tokAdmin, `{"on_hand":1}`, "If-Match", `"1"`), 412)
	requireProblem(t, ts.req("PUT", "/v1/stores/s1/items/none", tokAdmin, `{"on_hand":1}`, "If-Match", `*`), 412)
	requireProblem(t, ts.req("POST", "/v1/stores/s1/items/none/adjust", tokAdmin, `{"delta":1}`, "If-Match", `"1"`), 412)
	it := ts.item("s1", "bed")
	require.Equal(t, int64(1), it.Version)
	require.Equal(t, int64(3), it.OnHand)

	r = ts.req("POST", "/v1/stores/s1/items/bed/adjust", tokAdmin, `{"delta":1}`, "If-Match", `"1"`)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, `"2"`, r.Header.Get("ETag"))
	r = ts.req("PUT", "/v1/stores/s1/items/bed", tokAdmin, `{"on_hand":9}`, "If-Match", `"2"`)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, `"3"`, r.Header.Get("ETag"))
	r = ts.req("PUT", "/v1/stores/s1/items/bed", tokAdmin, `{"on_hand":8}`, "If-Match", `*`)
	require.Equal(t, http.StatusOK, r.Status)
}
