package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIdempotency(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.put("s1", "shelf", 10)
	ts.put("s2", "shelf", 10)

	t.Run("replay", func(t *testing.T) {
		ts := ts.in(t)
		first := ts.req("POST", "/v1/stores/s1/items/shelf/adjust", tokAdmin, `{"delta":5}`, "Idempotency-Key", "k-replay")
		require.Equal(t, 200, first.Status)
		require.Empty(t, first.Header.Get("Idempotent-Replayed"))
		again := ts.req("POST", "/v1/stores/s1/items/shelf/adjust", tokAdmin, `{"delta":5}`, "Idempotency-Key", "k-replay")
		require.Equal(t, 200, again.Status)
		require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
		require.Equal(t, first.Body, again.Body)
		require.Equal(t, first.Header.Get("ETag"), again.Header.Get("ETag"))
		require.Equal(t, int64(15), ts.item("s1", "shelf").OnHand, "changed once")

		put := ts.req("PUT", "/v1/stores/s1/items/new", tokAdmin, `{"on_hand":1}`, "Idempotency-Key", "k-put")
		require.Equal(t, 201, put.Status)
		put2 := ts.req("PUT", "/v1/stores/s1/items/new", tokAdmin, `{"on_hand":1}`, "Idempotency-Key", "k-put")
		require.Equal(t, 201, put2.Status, "same status")
		require.Equal(t, put.Body, put2.Body)
		require.Equal(t, "/v1/stores/s1/items/new", put2.Header.Get("Location"))

		res := ts.req("POST", "/v1/stores/s1/reservations", tokAdmin, `{"lines":[{"sku":"shelf","qty":1}]}`, "Idempotency-Key", "k-res")
		require.Equal(t, 201, res.Status)
		res2 := ts.req("POST", "/v1/stores/s1/reservations", tokAdmin, `{"lines":[{"sku":"shelf","qty":1}]}`, "Idempotency-Key", "k-res")
		require.Equal(t, 201, res2.Status)
		require.Equal(t, res.Body, res2.Body, "the same reservation, not a second one")
		require.Equal(t, int64(1), ts.item("s1", "shelf").Reserved)
	})

	t.Run("different request is 422", func(t *testing.T) {
		ts := ts.in(t)
		require.Equal(t, 200, ts.req("POST", "/v1/stores/s1/items/shelf/adjust", tokAdmin, `{"delta":1}`, "Idempotency-Key", "k-422").Status)
		v := ts.item("s1", "shelf").Version
		requireProblem(t, ts.req("POST", "/v1/stores/s1/items/shelf/adjust", tokAdmin, `{"delta":2}`, "Idempotency-Key", "k-422"), 422)
		requireProblem(t, ts.req("POST", "/v1/stores/s2/items/shelf/adjust", tokAdmin, `{"delta":1}`, "Idempotency-Key", "k-422"), 422)
		requireProblem(t, ts.req("PUT", "/v1/stores/s1/items/shelf", tokAdmin, `{"on_hand":1}`, "Idempotency-Key", "k-422"), 422)
		require.Equal(t, v, ts.item("s1", "shelf").Version)
		require.Equal(t, int64(10), ts.item("s2", "shelf").OnHand)
	})

	t.Run("scoped by principal", func(t *testing.T) {
		ts := ts.in(t)
		a := ts.req("POST", "/v1/stores/s2/items/shelf/adjust", tokAdmin, `{"delta":1}`, "Idempotency-Key", "k-scope")
		require.Equal(t, 200, a.Status)
		b := ts.req("POST", "/v1/stores/s2/items/shelf/adjust", tokAdmin2, `{"delta":1}`, "Idempotency-Key", "k-scope")
		require.Equal(t, 200, b.Status)
		require.Empty(t, b.Header.Get("Idempotent-Replayed"), "another principal's key is its own")
		require.Equal(t, int64(12), ts.item("s2", "shelf").OnHand)
		c := ts.req("POST", "/v1/stores/s2/items/shelf/adjust", tokS2, `{"delta":3}`, "Idempotency-Key", "k-scope")
		require.Equal(t, 200, c.Status, "a different body under another principal's key is no conflict")
	})

	t.Run("key before If-Match", func(t *testing.T) {
		ts := ts.in(t)
		v := ts.item("s1", "shelf").Version
		hdr := []string{"Idempotency-Key", "k-match", "If-Match", fmt.Sprintf(`"%d"`, v)}
		first := ts.req("POST", "/v1/stores/s1/items/shelf/adjust", tokAdmin, `{"delta":1}`, hdr...)
		require.Equal(t, 200, first.Status)
		again := ts.req("POST", "/v1/stores/s1/items/shelf/adjust", tokAdmin, `{"delta":1}`, hdr...)
		require.Equal(t, 200, again.Status, "the retry replays instead of failing on its own change")
		require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
		require.Equal(t, v+1, ts.item("s1", "shelf").Version)
	})

	t.Run("refused request stores nothing", func(t *testing.T) {
		ts := ts.in(t)
		ts.put("s1", "scarce", 1)
		body := `{"lines":[{"sku":"scarce","qty":3}]}`
		requireProblem(t, ts.req("POST", "/v1/stores/s1/checkout", tokAdmin, body, "Idempotency-Key", "k-refused"), 409)
		requireProblem(t, ts.req("POST", "/v1/stores/s1/checkout", tokAdmin, `{"lines":[{"sku":"scarce","qty":0}]}`, "Idempotency-Key", "k-bad"), 400)
		ts.put("s1", "scarce", 5)
		r := ts.req("POST", "/v1/stores/s1/checkout", tokAdmin, body, "Idempotency-Key", "k-refused")
		require.Equal(t, 200, r.Status, "the key was free again: %s", r.Body)
		require.Empty(t, r.Header.Get("Idempotent-Replayed"))
		require.Equal(t, int64(2), ts.item("s1", "scarce").OnHand)
		r = ts.req("POST", "/v1/stores/s1/checkout", tokAdmin, `{"lines":[{"sku":"scarce","qty":1}]}`, "Idempotency-Key", "k-bad")
		require.Equal(t, 200, r.Status, "a request refused for bad input left no claim")
	})

	t.Run("bulk replays the whole batch", func(t *testing.T) {
		ts := ts.in(t)
		ts.put("s1", "bulk", 1)
		body := `{"updates":[{"store":"s1","sku":"bulk","delta":2},{"store":"s1","sku":"ghost","delta":1},{"store":"s1","sku":"bulk","delta":-100}]}`
		first := ts.req("POST", "/v1/adjustments", tokAdmin, body, "Idempotency-Key", "k-bulk")
		require.Equal(t, 200, first.Status)
		ts.put("s1", "ghost", 1)
		again := ts.req("POST", "/v1/adjustments", tokAdmin, body, "Idempotency-Key", "k-bulk")
		require.Equal(t, 200, again.Status)
		require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
		require.Equal(t, first.Body, again.Body, "exactly the first response")
		require.Equal(t, int64(3), ts.item("s1", "bulk").OnHand)
		require.Equal(t, int64(1), ts.item("s1", "ghost").OnHand)
		long := strings.Repeat("x", 255)
		r := ts.req("POST", "/v1/adjustments", tokAdmin, `{"updates":[{"store":"s1","sku":"bulk","delta":1}]}`, "Idempotency-Key", long)
		require.Equal(t, 200, r.Status)
		require.Equal(t, float64(200), r.json(t)["results"].([]any)[0].(map[string]any)["status"], "a 255-character key still fits each line")
	})
}

func TestBulkAdjustments(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.put("s1", "a", 5)
	ts.put("s2", "b", 5)
	r := ts.req("POST", "/v1/adjustments", tokAdmin, `{"updates":[
		{"store":"s1","sku":"a","delta":3,"reason":"delivery"},
		{"store":"s2","sku":"b","delta":-10},
		{"store":"s1","sku":"missing","delta":1},
		{"store":"s1","sku":"a","delta":0},
		{"store":"bad store","sku":"a","delta":1},
		{"store":"s2","sku":"b","delta":-1}]}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	res := r.json(t)["results"].([]any)
	require.Len(t, res, 6)
	status := func(i int) float64 { return res[i].(map[string]any)["status"].(float64) }
	require.Equal(t, []float64{200, 409, 404, 400, 400, 200}, []float64{status(0), status(1), status(2), status(3), status(4), status(5)})
	require.Equal(t, float64(8), res[0].(map[string]any)["item"].(map[string]any)["on_hand"])
	require.Contains(t, res[1].(map[string]any)["error"].(map[string]any), "shortages")
	require.Equal(t, int64(8), ts.item("s1", "a").OnHand)
	require.Equal(t, int64(4), ts.item("s2", "b").OnHand)
}
