package httpapi

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRepeatedHeaders: two Authorization or two Idempotency-Key fields are a
// malformed request (400), never decided by the first one.
func TestRepeatedHeaders(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.put("s1", "lamp", 5)
	send := func(method, path, body string, hdr http.Header) *resp {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		rq, err := http.NewRequest(method, ts.url+path, rd)
		require.NoError(t, err)
		rq.Header = hdr
		if body != "" {
			rq.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(rq)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		checkHTTP(t, rq, []byte(body), res, b, false)
		return &resp{Status: res.StatusCode, Header: res.Header, Body: b}
	}
	auth := func(toks ...string) http.Header {
		h := http.Header{}
		for _, tk := range toks {
			h.Add("Authorization", "Bearer "+tk)
		}
		return h
	}
	for _, toks := range [][]string{{tokAdmin, tokReader}, {tokReader, tokAdmin}, {tokAdmin, tokAdmin}, {tokAdmin, "wrong"}} {
		p := requireProblem(t, send("GET", "/v1/stores/s1/items/lamp", "", auth(toks...)), http.StatusBadRequest)
		require.Contains(t, p["detail"], "Authorization")
		p = requireProblem(t, send("POST", "/v1/stores/s1/items/lamp/adjust", `{"delta":1}`, auth(toks...)), http.StatusBadRequest)
		require.Contains(t, p["detail"], "Authorization")
	}
	r := send("GET", "/v1/events", "", auth(tokAdmin, tokReader))
	requireProblem(t, r, http.StatusBadRequest)

	for _, keys := range [][]string{{"k1", "k2"}, {"k1", "k1"}} {
		h := auth(tokAdmin)
		for _, k := range keys {
			h.Add("Idempotency-Key", k)
		}
		p := requireProblem(t, send("POST", "/v1/stores/s1/items/lamp/adjust", `{"delta":1}`, h), http.StatusBadRequest)
		require.Contains(t, p["detail"], "Idempotency-Key")
		p = requireProblem(t, send("POST", "/v1/adjustments", `{"updates":[{"store":"s1","sku":"lamp","delta":1}]}`, h), http.StatusBadRequest)
		require.Contains(t, p["detail"], "Idempotency-Key")
		p = requireProblem(t, send("PUT", "/v1/stores/s1/items/lamp", `{"on_hand":9}`, h), http.StatusBadRequest)
		require.Contains(t, p["detail"], "Idempotency-Key")
	}
	require.Equal(t, int64(1), ts.item("s1", "lamp").Version, "nothing changed")

	// One of each still works.
	h := auth(tokAdmin)
	h.Set("Idempotency-Key", "once")
	require.Equal(t, 200, send("POST", "/v1/stores/s1/items/lamp/adjust", `{"delta":1}`, h).Status)
	r = send("POST", "/v1/stores/s1/items/lamp/adjust", `{"delta":1}`, h)
	require.Equal(t, 200, r.Status)
	require.Equal(t, "true", r.Header.Get("Idempotent-Replayed"))
}
