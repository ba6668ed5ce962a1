package httpapi

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

type bulkResponse struct {
	Results []struct {
		Status int `json:"status"`
		Item   *struct {
			OnHand int64 `json:"on_hand"`
		} `json:"item"`
		Error map[string]any `json:"error"`
	} `json:"results"`
}

// TestBulkLineKeysAreUnreachable: the operation ids of a keyed bulk
// request's lines live where no client key can reach them, in either order.
func TestBulkLineKeysAreUnreachable(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.put("s1", "lamp", 10)
	ts.put("s1", "sofa", 10)
	body := `{"updates":[{"store":"s1","sku":"lamp","delta":1},{"store":"s1","sku":"sofa","delta":2}]}`

	// A bulk request first, then single adjusts with keys shaped like its
	// lines' keys: each is a new request, applied.
	res := ts.req("POST", "/v1/adjustments", tokAdmin, body, "Idempotency-Key", "BK")
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	for _, k := range []string{"BK#0", "BK#1", "BK:0", "BK 0", "BK-0"} {
		res = ts.req("POST", "/v1/stores/s1/items/lamp/adjust", tokAdmin, `{"delta":1}`, "Idempotency-Key", k)
		require.Equal(t, http.StatusOK, res.Status, "key %s: %s", k, res.Body)
		require.Empty(t, res.Header.Get("Idempotent-Replayed"), k)
	}
	require.Equal(t, int64(16), ts.item("s1", "lamp").OnHand)

	// Single adjusts first under keys shaped like a later bulk's line keys:
	// the bulk applies every line and answers each with its own result.
	for _, k := range []string{"BK2#0", "BK2#1"} {
		res = ts.req("POST", "/v1/stores/s1/items/sofa/adjust", tokAdmin, `{"delta":5}`, "Idempotency-Key", k)
		require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	}
	res = ts.req("POST", "/v1/adjustments", tokAdmin, body, "Idempotency-Key", "BK2")
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	require.Empty(t, res.Header.Get("Idempotent-Replayed"))
	var out bulkResponse
	require.NoError(t, json.Unmarshal(res.Body, &out))
	require.Len(t, out.Results, 2)
	require.Equal(t, http.StatusOK, out.Results[0].Status, "%s", res.Body)
	require.Equal(t, int64(17), out.Results[0].Item.OnHand)
	require.Equal(t, http.StatusOK, out.Results[1].Status, "%s", res.Body)
	require.Equal(t, int64(24), out.Results[1].Item.OnHand)

	// the retry replays the whole response and changes nothing
	res2 := ts.req("POST", "/v1/adjustments", tokAdmin, body, "Idempotency-Key", "BK2")
	require.Equal(t, "true", res2.Header.Get("Idempotent-Replayed"))
	require.JSONEq(t, string(res.Body), string(res2.Body))
	require.Equal(t, int64(17), ts.item("s1", "lamp").OnHand)
	require.Equal(t, int64(24), ts.item("s1", "sofa").OnHand)
}
