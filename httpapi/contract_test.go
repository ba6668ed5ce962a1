package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestUnknownReservationIsNotFound: a reservation id that does not exist
// answers 404 whatever its shape, on every reservation route and for every
// role that may use them.
func TestUnknownReservationIsNotFound(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, id := range []string{
		"nope",
		"0-0123456789abcdef0123456789abcdef",    // well formed, never made
		"99-0123456789abcdef0123456789abcdef",   // a partition this deployment lacks
		"1-0123456789ABCDEF0123456789ABCDEF",    // upper-case hex
		"0-0123456789abcdef",                    // too short
		strings.Repeat("7", 65),                 // longer than any id
		"a%20b",                                 // escaped space
		"1-0123456789abcdef0123456789abcdef%00", // escaped NUL
	} {
		t.Run(id, func(t *testing.T) {
			ts := ts.in(t)
			for _, c := range []struct{ method, path, tok string }{
				{"GET", "/v1/reservations/" + id, tokAdmin},
				{"GET", "/v1/reservations/" + id, tokS1},
				{"GET", "/v1/reservations/" + id, tokReader},
				{"POST", "/v1/reservations/" + id + "/commit", tokAdmin},
				{"POST", "/v1/reservations/" + id + "/commit", tokS1},
				{"POST", "/v1/reservations/" + id + "/release", tokAdmin},
				{"POST", "/v1/reservations/" + id + "/release", tokS2},
			} {
				p := requireProblem(t, ts.req(c.method, c.path, c.tok, ""), http.StatusNotFound)
				require.Equal(t, ProblemTypeBase+"not-found", p["type"], "%s %s", c.method, c.path)
				require.Contains(t, p["detail"], "does not exist")
				require.NotContains(t, p["detail"], "not found:")
			}
		})
	}
	// A reader still may not change a reservation, whatever the id.
	requireProblem(t, ts.req("POST", "/v1/reservations/nope/commit", tokReader, ""), http.StatusForbidden)
}

// TestIfMatchList: If-Match with several entity tags passes when any of them
// is the item's (strong comparison: a weak tag never matches), on PUT and on
// adjust; "*" matches any existing item.
func TestIfMatchList(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.put("s1", "bed", 1)
	ts.put("s1", "bed", 2)
	ts.put("s1", "bed", 3) // version 3
	put := func(im ...string) *resp {
		return ts.req("PUT", "/v1/stores/s1/items/bed", tokAdmin, `{"on_hand":5}`, append([]string{"If-Match"}, im...)...)
	}
	adjust := func(im string) *resp {
		return ts.req("POST", "/v1/stores/s1/items/bed/adjust", tokAdmin, `{"delta":1}`, "If-Match", im)
	}

	r := put(`"1", "3"`)
	require.Equal(t, 200, r.Status, "body %s", r.Body)
	require.Equal(t, `"4"`, r.Header.Get("ETag"))
	r = adjust(`"2","4" ,"9"`)
	require.Equal(t, 200, r.Status, "body %s", r.Body)
	require.Equal(t, `"5"`, r.Header.Get("ETag"))

	for _, im := range []string{`W/"5"`, `"1", W/"5"`, `"4", "6"`, `"5`, `5`, `"", "x"`} {
		p := requireProblem(t, put(im), http.StatusPreconditionFailed)
		require.Equal(t, float64(5), p["current_version"], im)
		p = requireProblem(t, adjust(im), http.StatusPreconditionFailed)
		require.Equal(t, float64(5), p["current_version"], im)
	}
	require.Equal(t, int64(5), ts.item("s1", "bed").Version, "no refused request changed the item")

	r = adjust(`W/"1", "5"`)
	require.Equal(t, 200, r.Status, "a strong tag among weak ones: body %s", r.Body)
	r = put(`*`)
	require.Equal(t, 200, r.Status, "body %s", r.Body)
	require.Equal(t, `"7"`, r.Header.Get("ETag"))

	// Tags split over several If-Match fields form one list.
	rq, err := http.NewRequest("PUT", ts.url+"/v1/stores/s1/items/bed", strings.NewReader(`{"on_hand":6}`))
	require.NoError(t, err)
	rq.Header.Set("Authorization", "Bearer "+tokAdmin)
	rq.Header.Set("Content-Type", "application/json")
	rq.Header["If-Match"] = []string{`"1"`, `"2", "7"`}
	res, err := http.DefaultClient.Do(rq)
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	checkHTTP(t, rq, []byte(`{"on_hand":6}`), res, b, false)
	require.Equal(t, 200, res.StatusCode, "body %s", b)

	// A keyed request under a list: its retry replays instead of failing
	// on the version it changed itself; another key still fails on the
	// version.
	v := ts.item("s1", "bed").Version
	list := fmt.Sprintf(`"1", "%d"`, v)
	hdr := []string{"If-Match", list, "Idempotency-Key", "k-list"}
	first := ts.req("POST", "/v1/stores/s1/items/bed/adjust", tokAdmin, `{"delta":1}`, hdr...)
	require.Equal(t, 200, first.Status, "body %s", first.Body)
	again := ts.req("POST", "/v1/stores/s1/items/bed/adjust", tokAdmin, `{"delta":1}`, hdr...)
	require.Equal(t, 200, again.Status, "the retry replays: body %s", again.Body)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.Equal(t, first.Body, again.Body)
	p := requireProblem(t, ts.req("POST", "/v1/stores/s1/items/bed/adjust", tokAdmin, `{"delta":1}`, "If-Match", list, "Idempotency-Key", "k-other"), http.StatusPreconditionFailed)
	require.Equal(t, float64(v+1), p["current_version"])
	require.Equal(t, v+1, ts.item("s1", "bed").Version)

	// An item that does not exist matches no tag, not even "*".
	for _, im := range []string{`"1", "2"`, `*`} {
		p := requireProblem(t, ts.req("PUT", "/v1/stores/s1/items/none", tokAdmin, `{"on_hand":1}`, "If-Match", im), http.StatusPreconditionFailed)
		require.Equal(t, float64(0), p["current_version"])
		requireProblem(t, ts.req("POST", "/v1/stores/s1/items/none/adjust", tokAdmin, `{"delta":1}`, "If-Match", im), http.StatusPreconditionFailed)
	}
}

// internalWording is text of Go error chains and engine sentinels that a
// problem's detail must never carry.
var internalWording = []string{
	"not found:", "get reservation", "commit reservation", "release reservation", "reserve at ", "checkout at ",
	"get s1/", "set s1/", "adjust s1/", "version mismatch", "insufficient stock:", "purchase limit:",
	"customer required:", "reservation not held", "conflict:", "idempotency key reused",
}

func requireClientDetail(t *testing.T, p map[string]any, want string) {
	t.Helper()
	d, _ := p["detail"].(string)
	for _, w := range internalWording {
		require.NotContains(t, d, w, "detail %q", d)
	}
	require.False(t, strings.HasPrefix(d, "invalid "), "detail %q", d)
	require.Equal(t, want, d)
}

// TestProblemDetailsSpeakToTheClient: each problem's detail is a sentence
// written for the client, never an error chain.
func TestProblemDetailsSpeakToTheClient(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.put("s1", "lamp", 2)
	ts.put("s1", "console", 10, 1)

	p := requireProblem(t, ts.req("GET", "/v1/stores/s1/items/none", tokAdmin, ""), 404)
	requireClientDetail(t, p, "item none does not exist")
	p = requireProblem(t, ts.req("POST", "/v1/stores/s1/items/none/adjust", tokAdmin, `{"delta":1}`), 404)
	requireClientDetail(t, p, "item none does not exist")
	p = requireProblem(t, ts.req("POST", "/v1/stores/s1/checkout", tokAdmin, `{"lines":[{"sku":"lamp","qty":1},{"sku":"ghost","qty":1}]}`), 404)
	requireClientDetail(t, p, "item ghost does not exist")

	ghost := "0-0123456789abcdef0123456789abcdef"
	p = requireProblem(t, ts.req("GET", "/v1/reservations/"+ghost, tokAdmin, ""), 404)
	requireClientDetail(t, p, "reservation "+ghost+" does not exist")
	p = requireProblem(t, ts.req("POST", "/v1/reservations/"+ghost+"/commit", tokAdmin, ""), 404)
	requireClientDetail(t, p, "reservation "+ghost+" does not exist")
	p = requireProblem(t, ts.req("GET", "/v1/reservations/"+strings.Repeat("z", 300), tokAdmin, ""), 404)
	requireClientDetail(t, p, "this reservation does not exist")

	p = requireProblem(t, ts.req("POST", "/v1/stores/s1/items/lamp/adjust", tokAdmin, `{"delta":1}`, "If-Match", `"9"`), 412)
	requireClientDetail(t, p, "the item is at version 1, which fails the request's precondition")
	p = requireProblem(t, ts.req("PUT", "/v1/stores/s1/items/lamp", tokAdmin, `{"on_hand":1}`, "If-None-Match", `*`), 412)
	requireClientDetail(t, p, "the item is at version 1, which fails the request's precondition")

	p = requireProblem(t, ts.req("POST", "/v1/stores/s1/checkout", tokAdmin, `{"lines":[{"sku":"lamp","qty":3}]}`), 409)
	requireClientDetail(t, p, "not enough stock: lamp 3 requested, 2 available")
	p = requireProblem(t, ts.req("POST", "/v1/stores/s1/items/lamp/adjust", tokAdmin, `{"delta":-5}`), 409)
	requireClientDetail(t, p, "not enough stock: lamp 5 requested, 2 available")

	p = requireProblem(t, ts.req("POST", "/v1/stores/s1/checkout", tokAdmin, `{"lines":[{"sku":"console","qty":1}]}`), 400)
	requireClientDetail(t, p, "item console has a purchase limit, so the request must name its customer")
	require.Equal(t, 200, ts.req("POST", "/v1/stores/s1/checkout", tokAdmin, `{"lines":[{"sku":"console","qty":1}],"customer":"ann"}`).Status)
	p = requireProblem(t, ts.req("POST", "/v1/stores/s1/checkout", tokAdmin, `{"lines":[{"sku":"console","qty":1}],"customer":"ann"}`), 409)
	requireClientDetail(t, p, "item console allows 1 per customer and this customer already has 1")

	r := ts.req("POST", "/v1/stores/s1/reservations", tokAdmin, `{"lines":[{"sku":"lamp","qty":2}]}`)
	require.Equal(t, 201, r.Status)
	rid := r.json(t)["id"].(string)
	p = requireProblem(t, ts.req("PUT", "/v1/stores/s1/items/lamp", tokAdmin, `{"on_hand":1}`), 409)
	requireClientDetail(t, p, "on_hand 1 would be below the 2 units of lamp held by reservations and the states committed, damaged, quality_control and display")
	require.Equal(t, 200, ts.req("POST", "/v1/reservations/"+rid+"/release", tokAdmin, "").Status)
	p = requireProblem(t, ts.req("POST", "/v1/reservations/"+rid+"/commit", tokAdmin, ""), 409)
	requireClientDetail(t, p, "reservation "+rid+" is released, not held")

	require.Equal(t, 200, ts.req("POST", "/v1/stores/s1/items/lamp/adjust", tokAdmin, `{"delta":1}`, "Idempotency-Key", "k1").Status)
	p = requireProblem(t, ts.req("POST", "/v1/stores/s1/items/lamp/adjust", tokAdmin, `{"delta":2}`, "Idempotency-Key", "k1"), 422)
	requireClientDetail(t, p, "this Idempotency-Key was used before for a different request")

	p = requireProblem(t, ts.req("POST", "/v1/stores/s1/items/lamp/adjust", tokAdmin, `{"delta":999999999999}`), 400)
	requireClientDetail(t, p, "delta is invalid: on_hand would pass 1000000000000")
	require.Equal(t, "delta", p["field"])
}
