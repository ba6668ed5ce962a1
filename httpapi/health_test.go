package httpapi

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Once a shutdown begins, /readyz answers 503 "shutting down" at once,
// while the API still serves requests until the drain: a load balancer
// stops sending before the server stops accepting.
func TestReadyzTurns503WhenShutdownBegins(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.put("s1", "x", 5)
	require.Equal(t, 200, ts.req("GET", "/readyz", "", "").Status)

	ts.s.BeginShutdown()
	r := ts.req("GET", "/readyz", "", "")
	require.Equal(t, 503, r.Status, "%s", r.Body)
	require.Equal(t, "shutting down", r.json(t)["status"])
	require.Equal(t, "1", r.Header.Get("Retry-After"))

	require.Equal(t, 200, ts.req("GET", "/healthz", "", "").Status, "the process still lives")
	require.Equal(t, 200, ts.req("GET", "/v1/stores/s1/items/x", tokAdmin, "").Status, "requests are served until the drain")
	ts.s.BeginShutdown() // harmless twice
	require.Equal(t, 503, ts.req("GET", "/readyz", "", "").Status)
}
