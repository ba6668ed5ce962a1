package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/client"
)

func TestTransferMethods(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	c := client.New(srv.url, tokAdmin)
	ctx := context.Background()
	_, err := c.PutItem(ctx, "wh", "sofa", client.SetItem{OnHand: 10})
	require.NoError(t, err)
	x := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	tr, err := c.CreateTransfer(ctx, client.TransferRequest{From: "wh", To: "s1", Lines: []client.Line{{SKU: "sofa", Qty: 4}},
		ExpectedAt: &x, Reference: "R-1"})
	require.NoError(t, err)
	require.Equal(t, client.TransferInTransit, tr.Status)
	require.Equal(t, "wh", *tr.From)
	p, err := c.PromiseAt(ctx, "s1", "sofa", 3)
	require.NoError(t, err)
	require.Equal(t, x, *p.Date)
	require.Equal(t, []client.PromiseSource{{Transfer: tr.ID, ExpectedAt: x, Qty: 4}}, p.Sources)
	cp, err := c.PromiseChain(ctx, "sofa", 3)
	require.NoError(t, err)
	require.Len(t, cp.Stores, 2)
	r, err := c.ReceiveTransfer(ctx, tr.ID, []client.ReceiveLine{{SKU: "sofa", Received: 2, Missing: 1}})
	require.NoError(t, err)
	require.Equal(t, client.TransferInTransit, r.Status)
	_, err = c.ReceiveTransfer(ctx, tr.ID, []client.ReceiveLine{{SKU: "sofa", Received: 2}})
	require.True(t, client.IsConflict(err), "%v", err)
	_, err = c.CancelTransfer(ctx, tr.ID)
	require.True(t, client.IsConflict(err), "%v", err)
	got, err := c.GetTransfer(ctx, tr.ID)
	require.NoError(t, err)
	require.Equal(t, []client.TransferLine{{SKU: "sofa", Qty: 4, Received: 2, Missing: 1}}, got.Lines)
	page, err := c.ListTransfers(ctx, client.TransferFilter{Store: "s1", Status: client.TransferInTransit})
	require.NoError(t, err)
	require.Len(t, page.Transfers, 1)
	require.Empty(t, page.NextCursor)
	_, err = c.GetTransfer(ctx, "0-00000000000000000000000000000000")
	require.True(t, client.IsNotFound(err))
	_, err = c.CreateTransfer(ctx, client.TransferRequest{From: "wh", To: "s1", Lines: []client.Line{{SKU: "sofa", Qty: 99}}})
	require.True(t, client.IsInsufficientStock(err))
}
