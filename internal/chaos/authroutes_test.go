package chaos

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// Every route of the API, enumerated from the server's own route table (so
// a new route fails this test until it is listed here), called with a
// store token against another store: 403, and nothing changes. httpapi's
// TestAuthMatrix covers a hand-picked list; this one cannot miss a route.
func TestEveryRouteForbidsOtherStores(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOpts{})
	ctx := context.Background()
	api := w.startAPI(nil)
	for _, s := range []string{"s1", "s2"} {
		_, err := w.e.Set(ctx, engine.SetRequest{Store: s, SKU: "desk", OnHand: 10}, engine.Op{})
		require.NoError(t, err)
	}
	res, err := w.e.Reserve(ctx, engine.ReserveRequest{Store: "s2", Lines: []engine.Line{{SKU: "desk", Qty: 1}}}, engine.Op{})
	require.NoError(t, err)
	rid2 := res.Reservation.ID
	tr, err := w.e.CreateTransfer(ctx, engine.TransferRequest{From: "s2", To: "s3", Lines: []engine.Line{{SKU: "desk", Qty: 1}}}, engine.Op{})
	require.NoError(t, err)
	tid := tr.Transfer.ID
	before, err := w.e.GetItem(ctx, "s2", "desk")
	require.NoError(t, err)

	type call struct{ query, body string }
	// What to send on each route, by method and pattern; public routes
	// have no entry in forbidden.
	public := map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true, "GET /openapi.json": true, "GET /": true, "GET /ui/:file": true}
	forbidden := map[string]call{
		"PUT /v1/stores/:store/items/:sku":          {"", `{"on_hand":3}`},
		"GET /v1/stores/:store/items/:sku":          {"", ""},
		"GET /v1/stores/:store/items":               {"", ""},
		"POST /v1/stores/:store/items/:sku/adjust":  {"", `{"delta":1}`},
		"GET /v1/stores/:store/items/:sku/history":  {"", ""},
		"GET /v1/stores/:store/items/:sku/refusals": {"", ""},
		"GET /v1/stores/:store/low-stock":           {"", ""},
		"POST /v1/stores/:store/checkout":           {"", `{"lines":[{"sku":"desk","qty":1}]}`},
		"POST /v1/stores/:store/reservations":       {"", `{"lines":[{"sku":"desk","qty":1}]}`},
		"GET /v1/reservations/:id":                  {"", ""},
		"POST /v1/reservations/:id/commit":          {"", ""},
		"POST /v1/reservations/:id/release":         {"", ""},
		"POST /v1/adjustments":                      {"", `{"updates":[{"store":"s2","sku":"desk","delta":1}]}`},
		"PUT /v1/items":                             {"", `{"items":[{"store":"s2","sku":"desk","on_hand":3}]}`},
		"POST /v1/stores/:store/items/:sku/moves":   {"", `{"from":"available","to":"damaged","qty":1}`},
		"POST /v1/stores/:store/fulfilments":        {"", `{"lines":[{"sku":"desk","qty":1}]}`},
		"POST /v1/admin/reconcile":                  {"?mode=repair", ""},
		"POST /v1/admin/reconcile/:run/cancel":      {"", ""},
		"POST /v1/webhooks":                         {"", `{"url":"https://example.com/hook","events":["low_stock"]}`},
		"GET /v1/webhooks":                          {"", ""},
		"GET /v1/webhooks/:id":                      {"", ""},
		"DELETE /v1/webhooks/:id":                   {"", ""},
		"GET /v1/webhooks/:id/deliveries":           {"", ""},
		"POST /v1/transfers":                        {"", `{"from":"s2","to":"s3","lines":[{"sku":"desk","qty":1}]}`},
		"GET /v1/transfers":                         {"?store=s2", ""},
		"GET /v1/transfers/:id":                     {"", ""},
		"POST /v1/transfers/:id/receive":            {"", `{"lines":[{"sku":"desk","received":1}]}`},
		"POST /v1/transfers/:id/cancel":             {"", ""},
		"GET /v1/stores/:store/items/:sku/promise":  {"?qty=1", ""},
		"GET /v1/admin/operations":                  {"", ""},
		"GET /v1/admin/findings":                    {"", ""},
		"GET /v1/admin/findings/:id":                {"", ""},
		"POST /v1/admin/findings/:id/resolve":       {"", `{"delta":1,"note":"n"}`},
		"POST /v1/admin/findings/:id/dismiss":       {"", `{"note":"n"}`},
		"GET /v1/events":                            {"?store=s2", ""},
		"GET /v1/ws":                                {"?store=s2", ""},
	}
	// Routes that serve every store: a store token sees only its own.
	// (the query each needs)
	scoped := map[string]string{"GET /v1/stores": "", "GET /v1/items/:sku": "", "GET /v1/items/:sku/promise": "?qty=1"}

	seen := 0
	for _, r := range api.s.App().GetRoutes(true) {
		if r.Method == http.MethodHead || r.Method == http.MethodOptions {
			continue
		}
		name := r.Method + " " + r.Path
		id := rid2
		switch {
		case strings.HasPrefix(r.Path, "/v1/transfers/"):
			id = tid
		case strings.HasPrefix(r.Path, "/v1/admin/findings/"):
			id = "1"
		}
		path := strings.NewReplacer(":store", "s2", ":sku", "desk", ":id", id, ":run", "1").Replace(r.Path)
		q, isScoped := scoped[name]
		switch c, ok := forbidden[name]; {
		case public[name]:
			continue
		case ok:
			seen++
			var hdr []string
			if r.Path == "/v1/ws" {
				hdr = []string{"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}
			}
			resp := api.must(t, r.Method, path+c.query, tokS1, c.body, hdr...)
			require.Equal(t, http.StatusForbidden, resp.status, "%s with the s1 token: %s", name, resp.body)
		case isScoped:
			seen++
			resp := api.must(t, r.Method, path+q, tokS1, "")
			if resp.status == http.StatusOK {
				require.NotContains(t, resp.body, `"s2"`, "%s with the s1 token shows store s2", name)
			} else {
				require.Equal(t, http.StatusForbidden, resp.status, "%s with the s1 token: %s", name, resp.body)
			}
		default:
			t.Errorf("route %s is not in this test's table: decide what a store token may do on it", name)
		}
	}
	require.Equal(t, len(forbidden)+len(scoped), seen, "every listed route exists")
	after, err := w.e.GetItem(ctx, "s2", "desk")
	require.NoError(t, err)
	require.Equal(t, before.Version, after.Version, "nothing changed at s2")
	rs, err := w.e.GetReservation(ctx, rid2)
	require.NoError(t, err)
	require.Equal(t, engine.StatusHeld, rs.Status)
}
