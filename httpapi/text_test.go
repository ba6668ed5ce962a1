package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFreeTextRefusedOverHTTP sends reasons the ledger cannot hold or that
// would mislead a reader, on every route that takes one: each is 400 naming
// the field, with nothing changed and nothing stored under its key.
func TestFreeTextRefusedOverHTTP(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.put("s1", "lamp", 10)
	before := ts.item("s1", "lamp")
	bad := []string{"a\u0000b", "a\u0007b", "line\nforged", "x\u202ey", "x\u2028y", strings.Repeat("é", 257)}
	for i, r := range bad {
		rj, _ := json.Marshal(r)
		key := "text-" + string(rune('a'+i))
		res := ts.req("POST", "/v1/stores/s1/items/lamp/adjust", tokS1, `{"delta":1,"reason":`+string(rj)+`}`, "Idempotency-Key", key)
		p := requireProblem(t, res, http.StatusBadRequest)
		require.Equal(t, "reason", p["field"], "reason %q", r)
		require.NotContains(t, p["detail"], "\x00")

		res = ts.req("POST", "/v1/adjustments", tokS1, `{"updates":[{"store":"s1","sku":"lamp","delta":1,"reason":`+string(rj)+`}]}`)
		require.Equal(t, http.StatusOK, res.Status, "body %s", res.Body)
		var out struct {
			Results []struct {
				Status int            `json:"status"`
				Error  map[string]any `json:"error"`
			} `json:"results"`
		}
		require.NoError(t, json.Unmarshal(res.Body, &out))
		require.Equal(t, http.StatusBadRequest, out.Results[0].Status, "bulk line with reason %q", r)
		require.Equal(t, "reason", out.Results[0].Error["field"])
	}
	require.Equal(t, before, ts.item("s1", "lamp"))
	// the refused requests stored nothing under their keys: each key now
	// serves a new request
	for i := range bad {
		key := "text-" + string(rune('a'+i))
		res := ts.req("POST", "/v1/stores/s1/items/lamp/adjust", tokS1, `{"delta":1}`, "Idempotency-Key", key)
		require.Equal(t, http.StatusOK, res.Status, "key %s: %s", key, res.Body)
		require.Empty(t, res.Header.Get("Idempotent-Replayed"))
	}
	require.Equal(t, before.OnHand+int64(len(bad)), ts.item("s1", "lamp").OnHand)

	// 256 characters of two bytes each is within the limit
	ok := strings.Repeat("é", 256)
	res := ts.req("POST", "/v1/stores/s1/items/lamp/adjust", tokS1, `{"delta":1,"reason":"`+ok+`"}`)
	require.Equal(t, http.StatusOK, res.Status, "body %s", res.Body)
}
