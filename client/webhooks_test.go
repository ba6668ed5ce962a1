package client_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/client"
	"github.com/shelfline/inventory/httpapi"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/webhook"
)

func TestWebhooks(t *testing.T) {
	_, pool := testsupport.LedgerSchema(t, testsupport.MaxConns(4))
	srv := newServer(t, func(c *httpapi.Config) {
		c.Webhooks = webhook.NewStore(pool, webhook.StoreConfig{AllowPrivate: true})
	})
	c := client.New(srv.url, tokAdmin)
	ctx := context.Background()

	_, err := c.CreateWebhook(ctx, client.NewWebhook{URL: "gopher://x", Events: []string{client.WebhookLowStock}})
	require.True(t, client.IsBadRequest(err), "%v", err)
	w, err := c.CreateWebhook(ctx, client.NewWebhook{URL: "http://127.0.0.1:1/hook", Events: []string{client.WebhookOutOfStock}, Stores: []string{"s1"}})
	require.NoError(t, err)
	require.Len(t, w.Secret, 64)
	require.Equal(t, []string{"s1"}, w.Stores)
	all, err := c.Webhooks(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1)
	require.Empty(t, all[0].Secret)
	got, err := c.GetWebhook(ctx, w.ID)
	require.NoError(t, err)
	require.Equal(t, w.URL, got.URL)
	ds, err := c.WebhookDeliveries(ctx, w.ID, 10)
	require.NoError(t, err)
	require.Empty(t, ds)
	require.NoError(t, c.DeleteWebhook(ctx, w.ID))
	_, err = c.GetWebhook(ctx, w.ID)
	require.True(t, client.IsNotFound(err))
	require.True(t, client.IsNotFound(c.DeleteWebhook(ctx, w.ID)))

	_, err = client.New(srv.url, tokS1).Webhooks(ctx)
	require.Equal(t, 403, client.StatusOf(err), "%v", err)
}
