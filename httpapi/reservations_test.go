package httpapi

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

func TestCheckoutAndReservations(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.put("s1", "sofa", 10)
	ts.put("s1", "rug", 2)

	r := ts.req("POST", "/v1/stores/s1/checkout", tokS1, `{"lines":[{"sku":"sofa","qty":3},{"sku":"rug","qty":1}]}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	lines := r.json(t)["lines"].([]any)
	require.Len(t, lines, 2)
	require.Equal(t, float64(7), lines[0].(map[string]any)["on_hand"])
	require.Equal(t, float64(1), lines[1].(map[string]any)["on_hand"])

	p := requireProblem(t, ts.req("POST", "/v1/stores/s1/checkout", tokS1, `{"lines":[{"sku":"sofa","qty":1},{"sku":"rug","qty":5}]}`), 409)
	require.Equal(t, []any{map[string]any{"sku": "rug", "requested": float64(5), "available": float64(1)}}, p["shortages"])
	require.Equal(t, int64(7), ts.item("s1", "sofa").OnHand, "all or nothing")
	requireProblem(t, ts.req("POST", "/v1/stores/s1/checkout", tokS1, `{"lines":[{"sku":"ghost","qty":1}]}`), 404)

	// Reserve, read, commit (twice), release a committed one.
	r = ts.req("POST", "/v1/stores/s1/reservations", tokS1, `{"lines":[{"sku":"sofa","qty":2}],"ttl_seconds":60,"customer":"c1"}`)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	m := r.json(t)
	id := m["id"].(string)
	require.Equal(t, "/v1/reservations/"+id, r.Header.Get("Location"))
	require.Equal(t, "held", m["status"])
	require.Equal(t, "s1", m["store"])
	require.Equal(t, "c1", m["customer"])
	require.Equal(t, []any{map[string]any{"sku": "sofa", "qty": float64(2)}}, m["lines"])
	exp, err := time.Parse(time.RFC3339Nano, m["expires_at"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(60*time.Second), exp, 5*time.Second)
	require.Equal(t, int64(2), ts.item("s1", "sofa").Reserved)

	r = ts.req("GET", "/v1/reservations/"+id, tokReader, "")
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, id, r.json(t)["id"])

	r = ts.req("POST", "/v1/reservations/"+id+"/commit", tokS1, "")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "committed", r.json(t)["status"])
	it := ts.item("s1", "sofa")
	require.Equal(t, int64(5), it.OnHand)
	require.Equal(t, int64(0), it.Reserved)
	r = ts.req("POST", "/v1/reservations/"+id+"/commit", tokS1, "{}")
	require.Equal(t, http.StatusOK, r.Status, "committing again changes nothing")
	require.Equal(t, it, ts.item("s1", "sofa"))
	p = requireProblem(t, ts.req("POST", "/v1/reservations/"+id+"/release", tokS1, ""), 409)
	require.Contains(t, p["type"], "reservation-not-held")

	// Release, then commit a released one.
	r = ts.req("POST", "/v1/stores/s1/reservations", tokS1, `{"lines":[{"sku":"sofa","qty":5}]}`)
	require.Equal(t, http.StatusCreated, r.Status)
	id2 := r.json(t)["id"].(string)
	requireProblem(t, ts.req("POST", "/v1/stores/s1/reservations", tokS1, `{"lines":[{"sku":"sofa","qty":1}]}`), 409)
	r = ts.req("POST", "/v1/reservations/"+id2+"/release", tokS1, "")
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "released", r.json(t)["status"])
	require.Equal(t, int64(0), ts.item("s1", "sofa").Reserved)
	requireProblem(t, ts.req("POST", "/v1/reservations/"+id2+"/commit", tokS1, ""), 409)

	// Unknown reservations.
	ghost := "0-0123456789abcdef0123456789abcdef"
	requireProblem(t, ts.req("GET", "/v1/reservations/"+ghost, tokAdmin, ""), 404)
	requireProblem(t, ts.req("POST", "/v1/reservations/"+ghost+"/commit", tokAdmin, ""), 404)
	requireProblem(t, ts.req("POST", "/v1/reservations/"+ghost+"/release", tokS1, ""), 404)
}

func TestPurchaseLimits(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	r := ts.req("PUT", "/v1/stores/s1/items/console", tokAdmin, `{"on_hand":100,"max_per_customer":2}`)
	require.Equal(t, http.StatusCreated, r.Status)
	require.Equal(t, float64(2), r.json(t)["max_per_customer"])

	p := requireProblem(t, ts.req("POST", "/v1/stores/s1/checkout", tokAdmin, `{"lines":[{"sku":"console","qty":1}]}`), 400)
	require.Contains(t, p["type"], "customer-required")
	requireProblem(t, ts.req("POST", "/v1/stores/s1/reservations", tokAdmin, `{"lines":[{"sku":"console","qty":1}]}`), 400)

	require.Equal(t, 200, ts.req("POST", "/v1/stores/s1/checkout", tokAdmin, `{"lines":[{"sku":"console","qty":1}],"customer":"ann"}`).Status)
	require.Equal(t, 201, ts.req("POST", "/v1/stores/s1/reservations", tokAdmin, `{"lines":[{"sku":"console","qty":1}],"customer":"ann"}`).Status)
	for _, path := range []string{"/v1/stores/s1/checkout", "/v1/stores/s1/reservations"} {
		r := ts.req("POST", path, tokAdmin, `{"lines":[{"sku":"console","qty":1}],"customer":"ann"}`)
		p := requireProblem(t, r, 409)
		require.Regexp(t, `purchase-limit$`, p["type"])
		require.Equal(t, "console", p["sku"])
		require.Equal(t, float64(2), p["limit"])
		require.Equal(t, float64(2), p["already"])
	}
	require.Equal(t, 200, ts.req("POST", "/v1/stores/s1/checkout", tokAdmin, `{"lines":[{"sku":"console","qty":2}],"customer":"bob"}`).Status)
	it := ts.item("s1", "console")
	require.Equal(t, int64(97), it.OnHand)
	require.Equal(t, int64(1), it.Reserved)
}

// TestReservationExpiry: the sweeper expires a hold, its units come back,
// and committing it then answers 409.
func TestReservationExpiry(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.put("s1", "vase", 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go engine.NewSweeper(ts.e, engine.SweeperConfig{Interval: 100 * time.Millisecond}).Run(ctx) //nolint:errcheck
	r := ts.req("POST", "/v1/stores/s1/reservations", tokS1, `{"lines":[{"sku":"vase","qty":2}],"ttl_seconds":1}`)
	require.Equal(t, 201, r.Status, "%s", r.Body)
	id := r.json(t)["id"].(string)
	require.Equal(t, int64(2), ts.item("s1", "vase").Reserved)
	require.Eventually(t, func() bool {
		return ts.req("GET", "/v1/reservations/"+id, tokS1, "").json(t)["status"] == "expired"
	}, 5*time.Second, 50*time.Millisecond)
	// a hold reads expired from expires_at on; the sweeper gives its units
	// back within seconds
	require.Eventually(t, func() bool { return ts.item("s1", "vase").Reserved == 0 }, 5*time.Second, 50*time.Millisecond)
	it := ts.item("s1", "vase")
	require.Equal(t, int64(0), it.Reserved)
	require.Equal(t, int64(3), it.OnHand)
	requireProblem(t, ts.req("POST", "/v1/reservations/"+id+"/commit", tokS1, ""), 409)
	r = ts.req("POST", "/v1/reservations/"+id+"/release", tokS1, "")
	require.Equal(t, 200, r.Status, "releasing an expired hold changes nothing")
	require.Equal(t, it, ts.item("s1", "vase"))
}
