package browser_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFlashSaleView: the flash-sale view of one SKU follows its stock down
// to zero as sales arrive, counts the units sold and the refusals (of this
// SKU, and of every SKU), and marks the moment it sold out.
func TestFlashSaleView(t *testing.T) {
	w := newWorld(t)
	w.put("web", "tv", 12, -1)
	w.put("web", "radio", 1, -1)
	w.open("view=flash&store=web&sku=tv")
	w.waitJS(10*time.Second, "the item shows", `document.getElementById("flash-available").textContent === "12"`)
	w.waitJS(10*time.Second, "the feed is live", `document.getElementById("status").dataset.state === "live"`)
	w.waitJS(10*time.Second, "the refusal counters start", `document.getElementById("flash-refusals").textContent === "0" && document.getElementById("flash-refusals-all").textContent === "0"`)
	for i := 0; i < 6; i++ {
		st, b := w.call("POST", "/v1/stores/web/checkout", map[string]any{"lines": []map[string]any{{"sku": "tv", "qty": 2}}})
		require.Equal(t, 200, st, "%v", b)
	}
	for i := 0; i < 3; i++ {
		st, _ := w.call("POST", "/v1/stores/web/checkout", map[string]any{"lines": []map[string]any{{"sku": "tv", "qty": 1}}})
		require.Equal(t, 409, st)
	}
	// Refusals of another SKU count for all SKUs, not for this one.
	for i := 0; i < 2; i++ {
		st, _ := w.call("POST", "/v1/stores/web/checkout", map[string]any{"lines": []map[string]any{{"sku": "radio", "qty": 2}}})
		require.Equal(t, 409, st)
	}
	w.waitJS(5*time.Second, "the stock drains to zero", `document.getElementById("flash-available").textContent === "0"`)
	require.Equal(t, "12", eval[string](w, `document.getElementById("flash-sold").textContent`))
	require.NotEqual(t, "not yet", eval[string](w, `document.getElementById("flash-soldout").textContent`))
	require.NotEqual(t, "0.0", eval[string](w, `document.getElementById("flash-rate").textContent`))
	w.waitJS(5*time.Second, "the refusals are counted", `document.getElementById("flash-refusals").textContent === "3" && document.getElementById("flash-refusals-all").textContent === "5"`)
	time.Sleep(1500 * time.Millisecond) // a poll or two later, the counts hold
	require.Equal(t, "3", eval[string](w, `document.getElementById("flash-refusals").textContent`), "refusals of this SKU")
	require.Equal(t, "5", eval[string](w, `document.getElementById("flash-refusals-all").textContent`), "refusals of every SKU")
	w.screenshot("flash-sale")
}
