package httpapi

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// TestLowStockRoute: GET /v1/stores/{store}/low-stock lists the items at or
// below their reorder point from the ledger, to the store's readers only.
func TestLowStockRoute(t *testing.T) {
	t.Parallel()
	_, pool := testsupport.LedgerSchema(t, testsupport.MaxConns(4))
	ts := newTestServer(t, func(c *Config) {
		l := persist.NewLedger(pool)
		c.Ledger, c.LowStock = l, l
	})
	testsupport.StartPersister(t, ts.e, pool, persist.PersisterConfig{Linger: -1})
	for _, b := range []struct{ sku, body string }{
		{"at", `{"on_hand":3,"reorder_point":3}`},
		{"below", `{"on_hand":1,"reorder_point":2}`},
		{"above", `{"on_hand":9,"reorder_point":2}`},
		{"unset", `{"on_hand":0}`},
	} {
		require.Equal(t, 201, ts.req("PUT", "/v1/stores/s1/items/"+b.sku, tokAdmin, b.body).Status)
	}
	require.Equal(t, 201, ts.req("PUT", "/v1/stores/s2/items/other", tokAdmin, `{"on_hand":0,"reorder_point":1}`).Status)
	skus := func(r *resp) []string {
		var out []string
		for _, it := range r.json(t)["items"].([]any) {
			out = append(out, it.(map[string]any)["sku"].(string))
		}
		return out
	}
	require.Eventually(t, func() bool {
		r := ts.req("GET", "/v1/stores/s1/low-stock", tokS1, "")
		return r.Status == 200 && len(skus(r)) == 2
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, []string{"at", "below"}, skus(ts.req("GET", "/v1/stores/s1/low-stock", tokReader, "")))
	require.Equal(t, []string{"at"}, skus(ts.req("GET", "/v1/stores/s1/low-stock?limit=1", tokAdmin, "")))
	requireProblem(t, ts.req("GET", "/v1/stores/s2/low-stock", tokS1, ""), 403)
	requireProblem(t, ts.req("GET", "/v1/stores/s1/low-stock?limit=0", tokAdmin, ""), 400)
	requireProblem(t, ts.req("GET", "/v1/stores/s1/low-stock", "", ""), 401)
}

// TestLowStockLedgerOff: without the ledger the route answers 503.
func TestLowStockLedgerOff(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	p := requireProblem(t, ts.req("GET", "/v1/stores/s1/low-stock", tokAdmin, ""), 503)
	require.Contains(t, p["detail"], "off")
}
