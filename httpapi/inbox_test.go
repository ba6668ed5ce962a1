package httpapi

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// TestInboxRoutes: the conflict inbox over HTTP, admin only: list, read,
// resolve with a correcting adjustment (replayed under its Idempotency-Key),
// dismiss, and the refusals; and the operations overview.
func TestInboxRoutes(t *testing.T) {
	t.Parallel()
	_, pool := testsupport.LedgerSchema(t, testsupport.MaxConns(4))
	ts := newTestServer(t, func(c *Config) {
		c.Inbox = persist.NewInbox(c.Engine, pool)
		c.Operations = persist.NewOperations(c.Engine, pool, persist.OperationsConfig{})
	})
	ts.put("s1", "sofa", 5)
	snap := map[string]any{"version": 3, "on_hand": 1, "reserved": 2, "reorder_point": nil, "max_per_customer": nil}
	over := testsupport.AddFinding(t, pool, persist.KindOversold, "s1", "sofa", 3, snap, snap)
	gap := testsupport.AddFinding(t, pool, persist.KindLedgerGap, "s1", "sofa", 2, nil, snap)
	path := func(id int64, rest string) string { return fmt.Sprintf("/v1/admin/findings/%d%s", id, rest) }

	r := ts.req("GET", "/v1/admin/findings", tokAdmin, "")
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Len(t, r.json(t)["findings"], 2)
	requireProblem(t, ts.req("GET", "/v1/admin/findings", tokReader, ""), 403)
	requireProblem(t, ts.req("GET", "/v1/admin/findings", tokS1, ""), 403)
	requireProblem(t, ts.req("GET", "/v1/admin/findings?status=maybe", tokAdmin, ""), 400)
	requireProblem(t, ts.req("GET", path(999999, ""), tokAdmin, ""), 404)
	requireProblem(t, ts.req("GET", "/v1/admin/findings/abc", tokAdmin, ""), 404)
	r = ts.req("GET", path(over, ""), tokAdmin, "")
	require.Equal(t, 200, r.Status)
	require.Equal(t, "oversold", r.json(t)["kind"])
	require.Equal(t, "open", r.json(t)["status"])

	requireProblem(t, ts.req("POST", path(over, "/resolve"), tokS1, `{"delta":-1,"note":"x"}`), 403)
	p := requireProblem(t, ts.req("POST", path(over, "/resolve"), tokAdmin, `{"note":"x"}`), 400)
	require.Equal(t, "delta", p["field"])
	p = requireProblem(t, ts.req("POST", path(over, "/resolve"), tokAdmin, `{"delta":-1,"note":""}`), 400)
	require.Equal(t, "note", p["field"])
	requireProblem(t, ts.req("POST", path(over, "/resolve"), tokAdmin, `{"delta":-1,"note":"x","extra":1}`), 400)
	requireProblem(t, ts.req("POST", path(over, "/resolve"), tokAdmin, `{"delta":-9,"note":"too many"}`), 409) // on_hand would go below 0

	body := `{"delta":-2,"note":"sold twice after the failover; counted 3"}`
	r = ts.req("POST", path(over, "/resolve"), tokAdmin, body, "Idempotency-Key", "fix-1")
	require.Equal(t, 200, r.Status, "%s", r.Body)
	res := r.json(t)["resolution"].(map[string]any)
	require.Equal(t, "resolved", r.json(t)["status"])
	require.Equal(t, float64(-2), res["delta"])
	require.Equal(t, float64(2), res["event_version"])
	require.Equal(t, int64(3), ts.item("s1", "sofa").OnHand)
	again := ts.req("POST", path(over, "/resolve"), tokAdmin, body, "Idempotency-Key", "fix-1")
	require.Equal(t, 200, again.Status)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.Equal(t, string(r.Body), string(again.Body))
	require.Equal(t, int64(3), ts.item("s1", "sofa").OnHand, "a replay adjusts nothing")
	p = requireProblem(t, ts.req("POST", path(over, "/resolve"), tokAdmin2, body), 409)
	require.Contains(t, p["type"], "finding-closed")

	r = ts.req("POST", path(gap, "/dismiss"), tokAdmin, `{"note":"test traffic"}`)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Equal(t, "dismissed", r.json(t)["status"])
	requireProblem(t, ts.req("POST", path(gap, "/dismiss"), tokAdmin, `{"note":"again"}`), 409)
	require.Empty(t, ts.req("GET", "/v1/admin/findings", tokAdmin, "").json(t)["findings"])
	require.Len(t, ts.req("GET", "/v1/admin/findings?status=closed", tokAdmin, "").json(t)["findings"], 2)

	r = ts.req("GET", "/v1/admin/operations", tokAdmin, "")
	require.Equal(t, 200, r.Status, "%s", r.Body)
	ov := r.json(t)
	require.Len(t, ov["partitions"], 4)
	require.Equal(t, float64(0), ov["open_findings"])
	require.Len(t, ov["runs"], 2)
	requireProblem(t, ts.req("GET", "/v1/admin/operations", tokReader, ""), 403)
}

// TestInboxLedgerOff: without the ledger the inbox routes answer 503.
func TestInboxLedgerOff(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	requireProblem(t, ts.req("GET", "/v1/admin/findings", tokAdmin, ""), 503)
	requireProblem(t, ts.req("POST", "/v1/admin/findings/1/dismiss", tokAdmin, `{"note":"x"}`), 503)
	requireProblem(t, ts.req("GET", "/v1/admin/operations", tokAdmin, ""), 503)
}
