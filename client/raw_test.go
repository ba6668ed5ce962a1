package client_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/client"
)

// Send answers every status as it came, without a key when asked, and a
// client of its own connection pool reuses its connections.
func TestSendAndPool(t *testing.T) {
	srv := newServer(t)
	p := newProxy(t, srv.url)
	c := client.New(p.URL, tokAdmin, client.WithMaxConns(4), client.WithTimeout(10*time.Second), client.WithMaxAttempts(1))
	ctx := context.Background()

	a, err := c.Send(ctx, http.MethodPut, "/v1/stores/s1/items/lamp", map[string]int64{"on_hand": 3}, client.WithoutIdempotencyKey())
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, a.Status, "%s", a.Body)
	require.Empty(t, p.sent()[0].Header.Get(client.HeaderIdempotencyKey), "no key")
	require.Equal(t, "Bearer "+tokAdmin, p.sent()[0].Header.Get("Authorization"))

	a, err = c.Send(ctx, http.MethodPost, "/v1/stores/s1/checkout", map[string]any{"lines": []client.Line{{SKU: "lamp", Qty: 5}}},
		client.WithIdempotencyKey("k-1"))
	require.NoError(t, err)
	require.Equal(t, http.StatusConflict, a.Status, "a refusal is an answer, not an error")
	require.Contains(t, string(a.Body), "insufficient-stock")
	require.Equal(t, "k-1", p.sent()[1].Header.Get(client.HeaderIdempotencyKey))

	_, err = c.Checkout(ctx, "s1", client.CheckoutRequest{Lines: []client.Line{{SKU: "lamp", Qty: 1}}}, client.WithoutIdempotencyKey())
	require.NoError(t, err)
	require.Empty(t, p.sent()[2].Header.Get(client.HeaderIdempotencyKey))

	// The last attempt's 503 is an answer too.
	p.set(func(n int, w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	a, err = c.Send(ctx, http.MethodGet, "/v1/stores/s1/items/lamp", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, a.Status)
	require.Len(t, p.sent(), 4, "one attempt")
	p.set(nil)

	// Sequential calls go over one kept connection.
	for i := 0; i < 20; i++ {
		_, err := c.GetItem(ctx, "s1", "lamp")
		require.NoError(t, err)
	}
	addrs := map[string]bool{}
	for _, r := range p.sent()[4:] {
		addrs[r.RemoteAddr] = true
	}
	require.Len(t, addrs, 1, "one keep-alive connection for sequential calls")
	c.CloseIdleConnections()
}
