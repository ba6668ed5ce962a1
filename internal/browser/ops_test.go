package browser_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// TestInboxResolveWritesEvent: an admin resolves an oversold finding in the
// operations view with a correcting adjustment and a note: the item's
// ledger gets the ADJUST event (its reason names the finding), the
// resolution is recorded, and the finding moves to the decided list.
func TestInboxResolveWritesEvent(t *testing.T) {
	w := newWorld(t)
	w.put("s1", "sofa", 5, 1)
	w.put("s2", "lamp", 9, -1)
	snap := func(v, onHand, reserved int64) map[string]any {
		return map[string]any{"version": v, "on_hand": onHand, "reserved": reserved, "reorder_point": 1, "max_per_customer": nil}
	}
	id := testsupport.AddFinding(t, w.pool, persist.KindOversold, "s1", "sofa", 1, snap(1, 5, 7), snap(1, 5, 5))
	gap := testsupport.AddFinding(t, w.pool, persist.KindLedgerGap, "s2", "lamp", 1, nil, snap(1, 9, 0))
	w.caughtUp()
	w.open("view=ops")
	card := fmt.Sprintf(`#inbox .finding[data-finding="%d"]`, id)
	w.waitJS(10*time.Second, "the inbox lists the findings", `document.querySelectorAll("#inbox .finding").length === 2`)
	w.waitJS(10*time.Second, "the partitions show", `document.querySelectorAll("#ops-partitions tbody tr").length === 4`)
	require.Contains(t, eval[string](w, `document.querySelector('`+card+` dd[data-side="before"]').textContent`), "reserved 7")
	w.screenshot("operations")

	require.NoError(t, chromedp.Do(w.ctx,
		chromedp.SendKeys(chromedp.CSS(card+` input[name="delta"]`), "-2"),
		chromedp.SendKeys(chromedp.CSS(card+` input[name="note"]`), "two sofas sold twice after the failover; counted 3"),
		chromedp.Click(chromedp.CSS(card+` button.resolve`))))
	w.waitJS(10*time.Second, "the finding is decided", fmt.Sprintf(`document.querySelector('#inbox-closed .finding[data-finding="%d"]')?.dataset.status === "resolved"`, id))
	require.Equal(t, "1", eval[string](w, `document.getElementById("view").dataset.findings`))

	// The event is in the ledger, and the decision in PostgreSQL.
	w.caughtUp()
	evs, err := persist.NewLedger(w.pool).History(context.Background(), "s1", "sofa", 10)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	require.Equal(t, "ADJUST", evs[0].Type)
	require.Equal(t, int64(-2), evs[0].DeltaOnHand)
	require.Equal(t, int64(3), evs[0].OnHand)
	require.True(t, strings.HasPrefix(evs[0].Reason, fmt.Sprintf("finding %d (oversold) resolved by admin", id)), evs[0].Reason)
	require.Equal(t, int64(1), testsupport.Count(t, w.pool,
		`SELECT count(*) FROM finding_resolutions WHERE finding_id = $1 AND outcome = 'resolved' AND delta = -2 AND event_version = 2 AND note LIKE 'two sofas%'`, id))

	// Dismissing the other one writes no event.
	gcard := fmt.Sprintf(`#inbox .finding[data-finding="%d"]`, gap)
	require.NoError(t, chromedp.Do(w.ctx,
		chromedp.SendKeys(chromedp.CSS(gcard+` input[name="note"]`), "test traffic"),
		chromedp.Click(chromedp.CSS(gcard+` button.dismiss`))))
	w.waitJS(10*time.Second, "the inbox is empty", `document.getElementById("inbox-empty") !== null`)
	require.Equal(t, int64(1), testsupport.Count(t, w.pool, `SELECT count(*) FROM inventory_events WHERE store_id = 's2'`))
	w.screenshot("operations-decided")
}
