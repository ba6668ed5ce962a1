package httpapi

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseKeys(t *testing.T) {
	t.Parallel()
	keys, err := ParseKeys(" a:admin , b:store:s1,c:reader,")
	require.NoError(t, err)
	require.Equal(t, []Key{{Token: "a", Role: "admin"}, {Token: "b", Role: "store", Store: "s1"}, {Token: "c", Role: "reader"}}, keys)
	keys, err = ParseKeys("")
	require.NoError(t, err)
	require.Empty(t, keys)
	for _, bad := range []string{"a", "a:root", "a:store", "a:store:", "a:store:bad id", "a:admin:x", ":admin", "a:admin,a:reader"} {
		_, err := ParseKeys(bad)
		require.Error(t, err, bad)
	}
	require.NotContains(t, Key{Token: "secret-token", Role: "admin"}.Principal(), "secret")
}

func TestAuthMatrix(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.put("s1", "desk", 10)
	ts.put("s2", "desk", 10)
	res := ts.req("POST", "/v1/stores/s2/reservations", tokAdmin, `{"lines":[{"sku":"desk","qty":1}]}`)
	require.Equal(t, http.StatusCreated, res.Status)
	rid2 := res.json(t)["id"].(string)

	type call struct{ method, path, body string }
	var (
		readS1   = call{"GET", "/v1/stores/s1/items/desk", ""}
		readS2   = call{"GET", "/v1/stores/s2/items/desk", ""}
		listS2   = call{"GET", "/v1/stores/s2/items", ""}
		histS2   = call{"GET", "/v1/stores/s2/items/desk/history", ""}
		writeS1  = call{"POST", "/v1/stores/s1/items/desk/adjust", `{"delta":1}`}
		writeS2  = call{"POST", "/v1/stores/s2/items/desk/adjust", `{"delta":1}`}
		putS2    = call{"PUT", "/v1/stores/s2/items/desk", `{"on_hand":3}`}
		checkS2  = call{"POST", "/v1/stores/s2/checkout", `{"lines":[{"sku":"desk","qty":1}]}`}
		resvS2   = call{"POST", "/v1/stores/s2/reservations", `{"lines":[{"sku":"desk","qty":1}]}`}
		getRes2  = call{"GET", "/v1/reservations/" + rid2, ""}
		commit2  = call{"POST", "/v1/reservations/" + rid2 + "/commit", ""}
		release2 = call{"POST", "/v1/reservations/" + rid2 + "/release", ""}
		bulkS2   = call{"POST", "/v1/adjustments", `{"updates":[{"store":"s1","sku":"desk","delta":1},{"store":"s2","sku":"desk","delta":1}]}`}
		admin    = call{"POST", "/v1/admin/reconcile?mode=check", ""}
		eventsS2 = call{"GET", "/v1/events?store=s2", ""}
	)
	all := []call{readS1, readS2, listS2, histS2, writeS1, writeS2, putS2, checkS2, resvS2, getRes2, commit2, release2, bulkS2, admin, eventsS2}
	before := map[string]int64{"s1": ts.item("s1", "desk").Version, "s2": ts.item("s2", "desk").Version}

	for _, c := range all {
		r := ts.req(c.method, c.path, "", c.body)
		requireProblem(t, r, 401)
		require.Contains(t, r.Header.Get("WWW-Authenticate"), "Bearer")
		requireProblem(t, ts.req(c.method, c.path, "wrong-token", c.body), 401)
		requireProblem(t, ts.req(c.method, c.path, "", c.body, "Authorization", "Basic "+tokAdmin), 401)
	}
	for _, c := range []call{writeS1, writeS2, putS2, checkS2, resvS2, commit2, release2, bulkS2, admin} {
		requireProblem(t, ts.req(c.method, c.path, tokReader, c.body), 403)
	}
	for _, c := range []call{readS2, listS2, histS2, writeS2, putS2, checkS2, resvS2, getRes2, commit2, release2, bulkS2, admin, eventsS2} {
		requireProblem(t, ts.req(c.method, c.path, tokS1, c.body), 403)
	}
	require.Equal(t, before["s1"], ts.item("s1", "desk").Version)
	require.Equal(t, before["s2"], ts.item("s2", "desk").Version)
	rs, err := ts.e.GetReservation(t.Context(), rid2)
	require.NoError(t, err)
	require.Equal(t, "held", rs.Status)

	// What each role may do.
	require.Equal(t, 200, ts.req(readS2.method, readS2.path, tokReader, "").Status)
	require.Equal(t, 200, ts.req(readS1.method, readS1.path, tokS1, "").Status)
	require.Equal(t, 200, ts.req(writeS1.method, writeS1.path, tokS1, writeS1.body).Status)
	require.Equal(t, 200, ts.req(getRes2.method, getRes2.path, tokS2, "").Status)
	require.Equal(t, 200, ts.req(commit2.method, commit2.path, tokS2, "").Status)
	require.Equal(t, 200, ts.req("POST", "/v1/adjustments", tokS1, `{"updates":[{"store":"s1","sku":"desk","delta":1}]}`).Status)
	require.Equal(t, 200, ts.req(writeS2.method, writeS2.path, tokAdmin, writeS2.body).Status)
}
