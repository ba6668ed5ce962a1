package httpapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBulkKeepsEachItemsOrder: the lines of one item apply in the order
// given, while different items apply concurrently.
func TestBulkKeepsEachItemsOrder(t *testing.T) {
	ts := newTestServer(t)
	ts.put("s1", "sofa", 3)
	var lines []string
	lines = append(lines, `{"store":"s1","sku":"sofa","delta":-5}`, `{"store":"s1","sku":"sofa","delta":10}`, `{"store":"s1","sku":"sofa","delta":-12}`)
	for i := 0; i < 100; i++ {
		ts.put("s1", fmt.Sprintf("k%03d", i), 1)
		lines = append(lines, fmt.Sprintf(`{"store":"s1","sku":"k%03d","delta":2}`, i))
	}
	res := ts.req("POST", "/v1/adjustments", tokAdmin, `{"updates":[`+strings.Join(lines, ",")+`]}`)
	require.Equal(t, 200, res.Status, string(res.Body))
	var body struct {
		Results []struct {
			Status int `json:"status"`
			Item   *struct {
				SKU    string `json:"sku"`
				OnHand int64  `json:"on_hand"`
			} `json:"item"`
		} `json:"results"`
	}
	require.NoError(t, json.Unmarshal(res.Body, &body))
	require.Len(t, body.Results, 103)
	require.Equal(t, 409, body.Results[0].Status, "3 - 5 is refused")
	require.Equal(t, int64(13), body.Results[1].Item.OnHand)
	require.Equal(t, int64(1), body.Results[2].Item.OnHand)
	for i := 0; i < 100; i++ {
		r := body.Results[3+i]
		require.Equal(t, 200, r.Status)
		require.Equal(t, fmt.Sprintf("k%03d", i), r.Item.SKU, "results in request order")
		require.Equal(t, int64(3), r.Item.OnHand)
	}
	require.Equal(t, int64(1), ts.item("s1", "sofa").OnHand)
}
