package httpapi

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// s1 and s2 are the stores of the test tokens; with 4 partitions they sit
// in different partitions, so every transfer here crosses partitions.

func TestTransfersHTTP(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	require.NotEqual(t, ts.e.Partition("s1"), ts.e.Partition("s2"))
	ts.put("s1", "sofa", 10)
	ts.put("s2", "sofa", 1)
	x := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)

	// promise before: 1 available at s2
	r := ts.req("GET", "/v1/stores/s2/items/sofa/promise?qty=3", tokS2, "")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	p := r.json(t)
	require.Equal(t, float64(1), p["available"])
	require.Nil(t, p["date"])
	require.Equal(t, []any{}, p["sources"])

	body := `{"from":"s1","to":"s2","lines":[{"sku":"sofa","qty":4}],"expected_at":"` + x + `","reference":"R-1"}`
	requireProblem(t, ts.req("POST", "/v1/transfers", tokS2, body), 403)
	requireProblem(t, ts.req("POST", "/v1/transfers", tokReader, body), 403)
	r = ts.req("POST", "/v1/transfers", tokS1, body, "Idempotency-Key", "t1")
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	tr := r.json(t)
	id := tr["id"].(string)
	require.Equal(t, "/v1/transfers/"+id, r.Header.Get("Location"))
	require.Equal(t, "in_transit", tr["status"])
	require.Equal(t, "s1", tr["from"])
	require.Equal(t, x, tr["expected_at"])
	require.Equal(t, []any{map[string]any{"sku": "sofa", "qty": float64(4), "received": float64(0), "damaged": float64(0), "missing": float64(0)}}, tr["lines"])
	again := ts.req("POST", "/v1/transfers", tokS1, body, "Idempotency-Key", "t1")
	require.Equal(t, http.StatusCreated, again.Status)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.JSONEq(t, string(r.Body), string(again.Body))
	require.Equal(t, int64(6), ts.item("s1", "sofa").OnHand)

	// promise after: 1 available + 4 arriving at x
	r = ts.req("GET", "/v1/stores/s2/items/sofa/promise?qty=3", tokS2, "")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	p = r.json(t)
	require.Equal(t, x, p["date"])
	require.Equal(t, []any{map[string]any{"transfer": id, "expected_at": x, "qty": float64(4)}}, p["sources"])
	r = ts.req("GET", "/v1/items/sofa/promise?qty=3", tokAdmin, "")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	stores := r.json(t)["stores"].([]any)
	require.Len(t, stores, 2)
	require.Equal(t, "s1", stores[0].(map[string]any)["store"], "now first")
	require.Equal(t, "s2", stores[1].(map[string]any)["store"])
	requireProblem(t, ts.req("GET", "/v1/stores/s2/items/sofa/promise?qty=0", tokS2, ""), 400)
	requireProblem(t, ts.req("GET", "/v1/stores/s2/items/sofa/promise", tokS2, ""), 400)
	requireProblem(t, ts.req("GET", "/v1/stores/s1/items/sofa/promise?qty=1", tokS2, ""), 403)

	// reads
	r = ts.req("GET", "/v1/transfers/"+id, tokS2, "")
	require.Equal(t, http.StatusOK, r.Status)
	require.JSONEq(t, string(again.Body), string(r.Body))
	requireProblem(t, ts.req("GET", "/v1/transfers/0-00000000000000000000000000000000", tokAdmin, ""), 404)
	requireProblem(t, ts.req("GET", "/v1/transfers/nope", tokAdmin, ""), 404)
	r = ts.req("GET", "/v1/transfers?store=s2&status=in_transit", tokAdmin, "")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Len(t, r.json(t)["transfers"], 1)
	r = ts.req("GET", "/v1/transfers?store=s1", tokS1, "")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Len(t, r.json(t)["transfers"], 1, "either end")
	requireProblem(t, ts.req("GET", "/v1/transfers?store=s2", tokS1, ""), 403)
	requireProblem(t, ts.req("GET", "/v1/transfers?status=lost", tokAdmin, ""), 400)

	// a partial receipt, by the destination only
	rb := `{"lines":[{"sku":"sofa","received":2,"damaged":1}]}`
	requireProblem(t, ts.req("POST", "/v1/transfers/"+id+"/receive", tokS1, rb), 403)
	r = ts.req("POST", "/v1/transfers/"+id+"/receive", tokS2, rb, "Idempotency-Key", "r1")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "in_transit", r.json(t)["status"])
	it := ts.item("s2", "sofa")
	require.Equal(t, int64(4), it.OnHand)
	p = requireProblem(t, ts.req("POST", "/v1/transfers/"+id+"/receive", tokS2, `{"lines":[{"sku":"sofa","received":2}]}`), 409)
	require.Contains(t, p["type"], "over-receipt")
	p = requireProblem(t, ts.req("POST", "/v1/transfers/"+id+"/cancel", tokS1, ""), 409)
	require.Contains(t, p["type"], "transfer-state")
	requireProblem(t, ts.req("POST", "/v1/transfers/"+id+"/receive", tokS2, `{"lines":[{"sku":"sofa","received":1,"colour":1}]}`), 400)
	requireProblem(t, ts.req("POST", "/v1/transfers/"+id+"/receive", tokS2, `{"lines":[{"sku":"sofa"}]}`), 400)
	r = ts.req("POST", "/v1/transfers/"+id+"/receive", tokS2, `{"lines":[{"sku":"sofa","missing":1}]}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "received", r.json(t)["status"])
	p = requireProblem(t, ts.req("POST", "/v1/transfers/"+id+"/receive", tokS2, `{"lines":[{"sku":"sofa","received":1}]}`), 409)
	require.Equal(t, "received", p["transfer_status"])

	// a cancel, by the source only; units back
	r = ts.req("POST", "/v1/transfers", tokAdmin, `{"from":"s1","to":"s2","lines":[{"sku":"sofa","qty":2}]}`)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	id2 := r.json(t)["id"].(string)
	require.Nil(t, r.json(t)["expected_at"])
	requireProblem(t, ts.req("POST", "/v1/transfers/"+id2+"/cancel", tokS2, ""), 403)
	r = ts.req("POST", "/v1/transfers/"+id2+"/cancel", tokS1, "{}")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "cancelled", r.json(t)["status"])
	require.Equal(t, int64(6), ts.item("s1", "sofa").OnHand)
	requireProblem(t, ts.req("POST", "/v1/transfers/"+id2+"/cancel", tokS1, ""), 409)

	// refusals change nothing
	for name, b := range map[string]string{
		"own source": `{"from":"s1","to":"s1","lines":[{"sku":"sofa","qty":1}]}`,
		"qty 0":      `{"from":"s1","to":"s2","lines":[{"sku":"sofa","qty":0}]}`,
		"sku twice":  `{"from":"s1","to":"s2","lines":[{"sku":"sofa","qty":1},{"sku":"sofa","qty":1}]}`,
		"bad time":   `{"from":"s1","to":"s2","lines":[{"sku":"sofa","qty":1}],"expected_at":"soon"}`,
		"unknown":    `{"from":"s1","to":"s2","lines":[{"sku":"sofa","qty":1}],"colour":"red"}`,
	} {
		requireProblem(t, ts.req("POST", "/v1/transfers", tokAdmin, b), 400)
		_ = name
	}
	p = requireProblem(t, ts.req("POST", "/v1/transfers", tokAdmin, `{"from":"s1","to":"s2","lines":[{"sku":"sofa","qty":7}]}`), 409)
	require.Contains(t, p["type"], "insufficient-stock")
	requireProblem(t, ts.req("POST", "/v1/transfers", tokAdmin, `{"from":"nowhere","to":"s2","lines":[{"sku":"sofa","qty":1}]}`), 409)
	require.Equal(t, int64(6), ts.item("s1", "sofa").OnHand)

	// a supplier's delivery: admin only
	requireProblem(t, ts.req("POST", "/v1/transfers", tokS2, `{"to":"s2","lines":[{"sku":"lamp","qty":5}]}`), 403)
	r = ts.req("POST", "/v1/transfers", tokAdmin, `{"to":"s2","lines":[{"sku":"lamp","qty":5}],"reference":"PO-1"}`)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.Nil(t, r.json(t)["from"])
}
