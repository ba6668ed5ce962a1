package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBadInput sends every kind of malformed request and checks its status,
// and that nothing changed.
func TestBadInput(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.put("s1", "lamp", 10)
	res := ts.req("POST", "/v1/stores/s1/reservations", tokAdmin, `{"lines":[{"sku":"lamp","qty":1}]}`)
	require.Equal(t, http.StatusCreated, res.Status)
	rid := res.json(t)["id"].(string)
	before := ts.item("s1", "lamp")

	long := strings.Repeat("k", 256)
	cases := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
	}{
		{"malformed json", "PUT", "/v1/stores/s1/items/lamp", `{"on_hand":`, nil, 400},
		{"not an object", "PUT", "/v1/stores/s1/items/lamp", `[1]`, nil, 400},
		{"empty body", "PUT", "/v1/stores/s1/items/lamp", ` `, nil, 400},
		{"trailing data", "PUT", "/v1/stores/s1/items/lamp", `{"on_hand":1} {}`, nil, 400},
		{"unknown member", "PUT", "/v1/stores/s1/items/lamp", `{"on_hand":1,"colour":"red"}`, nil, 400},
		{"missing on_hand", "PUT", "/v1/stores/s1/items/lamp", `{}`, nil, 400},
		{"null on_hand", "PUT", "/v1/stores/s1/items/lamp", `{"on_hand":null}`, nil, 400},
		{"negative on_hand", "PUT", "/v1/stores/s1/items/lamp", `{"on_hand":-1}`, nil, 400},
		{"fractional on_hand", "PUT", "/v1/stores/s1/items/lamp", `{"on_hand":1.5}`, nil, 400},
		{"whole fraction", "PUT", "/v1/stores/s1/items/lamp", `{"on_hand":1.0}`, nil, 400},
		{"exponent", "PUT", "/v1/stores/s1/items/lamp", `{"on_hand":1e3}`, nil, 400},
		{"string on_hand", "PUT", "/v1/stores/s1/items/lamp", `{"on_hand":"5"}`, nil, 400},
		{"huge on_hand", "PUT", "/v1/stores/s1/items/lamp", `{"on_hand":1000000000001}`, nil, 400},
		{"overflow on_hand", "PUT", "/v1/stores/s1/items/lamp", `{"on_hand":99999999999999999999999}`, nil, 400},
		{"negative limit", "PUT", "/v1/stores/s1/items/lamp", `{"on_hand":1,"max_per_customer":-1}`, nil, 400},
		{"bad sku", "PUT", "/v1/stores/s1/items/-lamp", `{"on_hand":1}`, nil, 400},
		{"bad store", "PUT", "/v1/stores/s%201/items/lamp", `{"on_hand":1}`, nil, 400},
		{"long sku", "PUT", "/v1/stores/s1/items/" + strings.Repeat("a", 65), `{"on_hand":1}`, nil, 400},
		{"zero delta", "POST", "/v1/stores/s1/items/lamp/adjust", `{"delta":0}`, nil, 400},
		{"missing delta", "POST", "/v1/stores/s1/items/lamp/adjust", `{"reason":"x"}`, nil, 400},
		{"fractional delta", "POST", "/v1/stores/s1/items/lamp/adjust", `{"delta":-0.5}`, nil, 400},
		{"string delta", "POST", "/v1/stores/s1/items/lamp/adjust", `{"delta":"1"}`, nil, 400},
		{"huge delta", "POST", "/v1/stores/s1/items/lamp/adjust", `{"delta":1000000000001}`, nil, 400},
		{"long reason", "POST", "/v1/stores/s1/items/lamp/adjust", `{"delta":1,"reason":"` + strings.Repeat("r", 257) + `"}`, nil, 400},
		{"reason not a string", "POST", "/v1/stores/s1/items/lamp/adjust", `{"delta":1,"reason":5}`, nil, 400},
		{"empty lines", "POST", "/v1/stores/s1/checkout", `{"lines":[]}`, nil, 400},
		{"no lines", "POST", "/v1/stores/s1/checkout", `{}`, nil, 400},
		{"qty 0", "POST", "/v1/stores/s1/checkout", `{"lines":[{"sku":"lamp","qty":0}]}`, nil, 400},
		{"negative qty", "POST", "/v1/stores/s1/checkout", `{"lines":[{"sku":"lamp","qty":-1}]}`, nil, 400},
		{"huge qty", "POST", "/v1/stores/s1/checkout", `{"lines":[{"sku":"lamp","qty":1000000001}]}`, nil, 400},
		{"line without qty", "POST", "/v1/stores/s1/checkout", `{"lines":[{"sku":"lamp"}]}`, nil, 400},
		{"line bad sku", "POST", "/v1/stores/s1/checkout", `{"lines":[{"sku":"la mp","qty":1}]}`, nil, 400},
		{"duplicate sku", "POST", "/v1/stores/s1/checkout", `{"lines":[{"sku":"lamp","qty":1},{"sku":"lamp","qty":1}]}`, nil, 400},
		{"line unknown member", "POST", "/v1/stores/s1/checkout", `{"lines":[{"sku":"lamp","qty":1,"price":3}]}`, nil, 400},
		{"bad customer", "POST", "/v1/stores/s1/checkout", `{"lines":[{"sku":"lamp","qty":1}],"customer":"a b"}`, nil, 400},
		{"negative ttl", "POST", "/v1/stores/s1/reservations", `{"lines":[{"sku":"lamp","qty":1}],"ttl_seconds":-5}`, nil, 400},
		{"zero ttl", "POST", "/v1/stores/s1/reservations", `{"lines":[{"sku":"lamp","qty":1}],"ttl_seconds":0}`, nil, 400},
		{"long ttl", "POST", "/v1/stores/s1/reservations", `{"lines":[{"sku":"lamp","qty":1}],"ttl_seconds":86401}`, nil, 400},
		{"unknown reservation id of any shape", "POST", "/v1/reservations/nope/commit", ``, nil, 404},
		{"commit with body", "POST", "/v1/reservations/" + rid + "/commit", `{"x":1}`, nil, 400},
		{"key too long", "POST", "/v1/stores/s1/items/lamp/adjust", `{"delta":1}`, []string{"Idempotency-Key", long}, 400},
		{"key not printable", "POST", "/v1/stores/s1/items/lamp/adjust", `{"delta":1}`, []string{"Idempotency-Key", "a\tb"}, 400},
		{"text body", "POST", "/v1/stores/s1/items/lamp/adjust", `{"delta":1}`, []string{"Content-Type", "text/plain"}, 415},
		{"no content type", "PUT", "/v1/stores/s1/items/lamp", `{"on_hand":1}`, []string{"Content-Type", ""}, 415},
		{"form body", "POST", "/v1/stores/s1/checkout", `lines=1`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415},
		{"bulk empty", "POST", "/v1/adjustments", `{"updates":[]}`, nil, 400},
		{"bulk too many", "POST", "/v1/adjustments", `{"updates":[` + strings.Repeat(`{"store":"s1","sku":"lamp","delta":1},`, 1000) + `{"store":"s1","sku":"lamp","delta":1}]}`, nil, 400},
		{"bulk fractional", "POST", "/v1/adjustments", `{"updates":[{"store":"s1","sku":"lamp","delta":1.5}]}`, nil, 400},
		{"bulk unknown member", "POST", "/v1/adjustments", `{"updates":[{"store":"s1","sku":"lamp","delta":1,"x":1}]}`, nil, 400},
		{"bad reconcile mode", "POST", "/v1/admin/reconcile?mode=fix", ``, nil, 400},
		{"bad events store", "GET", "/v1/events?store=a%20b", ``, nil, 400},
		{"bad Last-Event-ID", "GET", "/v1/events", ``, []string{"Last-Event-ID", "zzz"}, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ts.in(t).req(c.method, c.path, tokAdmin, c.body, c.hdr...)
			requireProblem(t, r, c.status)
		})
	}
	t.Run("oversized body", func(t *testing.T) {
		requireProblem(t, ts.oversized(t, "/v1/stores/s1/items/lamp/adjust", 1<<20+1), 413)
		requireProblem(t, ts.oversized(t, "/v1/adjustments", 10<<20), 413)
	})
	t.Run("body of exactly 1 MiB is read", func(t *testing.T) {
		r := ts.in(t).req("POST", "/v1/stores/s1/items/lamp/adjust", tokAdmin, bigBody(1<<20))
		requireProblem(t, r, 400) // read, then refused: the reason is too long
	})
	require.Equal(t, before, ts.item("s1", "lamp"), "no refused request changed the item")
	rs, err := ts.e.GetReservation(t.Context(), rid)
	require.NoError(t, err)
	require.Equal(t, "held", rs.Status)
	n, err := ts.rdb.XLen(t.Context(), ts.e.StreamKey(ts.e.Partition("s1"))).Result()
	require.NoError(t, err)
	require.Equal(t, int64(2), n, "only the set and the reservation made events")
}
