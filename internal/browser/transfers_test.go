package browser_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestTransfersView: a transfer created through the API shows in the
// transfers view of both its ends (in transit to the destination, from the
// source); receiving it from the destination's page, with units received,
// damaged and missing, changes the destination's stock by exactly those
// counts, in two receipts, and the page follows its status.
func TestTransfersView(t *testing.T) {
	w := newWorld(t)
	w.put("wh", "sofa", 10, -1)
	w.put("wh", "lamp", 5, -1)
	w.put("shop", "sofa", 1, -1)
	st, tr := w.call("POST", "/v1/transfers", map[string]any{"from": "wh", "to": "shop", "reference": "PO-7",
		"lines": []map[string]any{{"sku": "sofa", "qty": 4}, {"sku": "lamp", "qty": 3}}})
	require.Equal(t, 201, st, "%v", tr)
	id := tr["id"].(string)
	t.Cleanup(func() {
		if t.Failed() {
			_, l := w.call("GET", "/v1/transfers?store=shop", nil)
			t.Logf("transfers of shop: %v", l)
			v, _ := chromedp.Run(w.ctx, chromedp.Evaluate[string](`JSON.stringify({loads: document.getElementById("view").dataset.loads, note: document.getElementById("note")?.textContent, status: document.getElementById("status").textContent})`))
			t.Logf("page: %s", v)
		}
	})
	card := `document.querySelector('.transfer[data-transfer="` + id + `"]')`
	line := func(sku, col string) string {
		return card + `?.querySelector('tr[data-sku="` + sku + `"] td[data-col="` + col + `"]')?.textContent`
	}

	// The source sees it outbound, without a receipt form.
	w.open("view=transfers&store=wh")
	w.waitJS(15*time.Second, "the source lists the transfer", card+`?.dataset.direction === "out"`)
	require.False(t, eval[bool](w, card+`.querySelector("form") !== null`), "the source cannot receive")

	// The destination sees it inbound, with every line open.
	require.NoError(t, chromedp.Do(w.ctx, chromedp.Navigate("about:blank")))
	w.open("view=transfers&store=shop")
	w.waitJS(15*time.Second, "the destination lists the transfer", card+`?.dataset.direction === "in"`)
	w.waitJS(10*time.Second, "the feed is live", `document.getElementById("status").dataset.state === "live"`)
	require.Equal(t, "4", eval[string](w, line("sofa", "open")))
	require.Equal(t, "3", eval[string](w, line("lamp", "open")))
	require.Equal(t, "in transit", eval[string](w, card+`.querySelector('[data-col="status"]').textContent`))
	w.screenshot("transfers")

	set := func(sku, kind, v string) {
		t.Helper()
		sel := `.transfer[data-transfer="` + id + `"] input[data-sku="` + sku + `"][data-kind="` + kind + `"]`
		require.NoError(t, chromedp.Do(w.ctx, chromedp.SetValue(chromedp.CSS(sel), v)))
	}
	submit := func() {
		t.Helper()
		require.NoError(t, chromedp.Do(w.ctx, chromedp.Click(chromedp.CSS(`.transfer[data-transfer="`+id+`"] button.receive`))))
	}

	// First receipt: 2 sofas received and 1 damaged; no lamp yet.
	set("sofa", "received", "2")
	set("sofa", "damaged", "1")
	set("lamp", "received", "0")
	submit()
	w.waitJS(10*time.Second, "the first receipt shows", line("sofa", "open")+` === "1" && `+line("sofa", "damaged")+` === "1"`)
	require.Equal(t, "partly received", eval[string](w, card+`.querySelector('[data-col="status"]').textContent`))
	item := func(store, sku string) map[string]any {
		t.Helper()
		st, b := w.call("GET", "/v1/stores/"+store+"/items/"+sku, nil)
		require.Equal(t, 200, st, "%v", b)
		return b
	}
	sofa := item("shop", "sofa")
	require.EqualValues(t, 1+3, sofa["on_hand"], "received and damaged units are on hand")
	require.EqualValues(t, 1, sofa["damaged"])
	require.EqualValues(t, 1, sofa["incoming"])

	// A receipt of more than is open is refused and changes nothing.
	set("sofa", "received", "5")
	submit()
	w.waitJS(5*time.Second, "the refusal shows", card+`?.querySelector(".receive-note")?.textContent.includes("open")`)
	require.EqualValues(t, 4, item("shop", "sofa")["on_hand"])

	// Second receipt: the last sofa missing, 2 lamps received and 1 missing.
	set("sofa", "received", "0")
	set("sofa", "missing", "1")
	set("lamp", "received", "2")
	set("lamp", "missing", "1")
	submit()
	w.waitJS(10*time.Second, "the transfer is received", card+`?.dataset.status === "received"`)
	require.Equal(t, "0", eval[string](w, line("lamp", "open")))
	sofa, lamp := item("shop", "sofa"), item("shop", "lamp")
	require.EqualValues(t, 4, sofa["on_hand"])
	require.EqualValues(t, 1, sofa["damaged"])
	require.EqualValues(t, 0, sofa["incoming"])
	require.EqualValues(t, 2, lamp["on_hand"])
	require.EqualValues(t, 0, lamp["incoming"])
	st, got := w.call("GET", "/v1/transfers/"+id, nil)
	require.Equal(t, 200, st)
	require.Equal(t, "received", got["status"])
	// The source gave up the units at shipping, and keeps none of them.
	require.EqualValues(t, 6, item("wh", "sofa")["on_hand"])
	require.EqualValues(t, 2, item("wh", "lamp")["on_hand"])
}
