package client_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/client"
)

// The states of docs/design.md §2.1 over HTTP: safety stock and the till,
// a later sale and its fulfilment, a reservation committed for later,
// moves and adjusts in a state, and the refusals (400/409, nothing
// changes).
func TestStates(t *testing.T) {
	srv := newServer(t)
	c := client.New(srv.url, tokAdmin)
	ctx := context.Background()
	problem := func(err error) *client.Problem {
		t.Helper()
		var p *client.Problem
		require.True(t, errors.As(err, &p), "%v", err)
		return p
	}

	put, err := c.PutItem(ctx, "s1", "sofa", client.SetItem{OnHand: 6, SafetyStock: ptr(2)})
	require.NoError(t, err)
	require.Equal(t, int64(4), put.Available)
	require.Equal(t, int64(2), *put.SafetyStock)

	_, err = c.Checkout(ctx, "s1", client.CheckoutRequest{Lines: []client.Line{{SKU: "sofa", Qty: 5}}})
	require.Equal(t, http.StatusConflict, problem(err).Status)
	till, err := c.Checkout(ctx, "s1", client.CheckoutRequest{Channel: client.ChannelPOS, Lines: []client.Line{{SKU: "sofa", Qty: 5}}})
	require.NoError(t, err)
	require.Equal(t, int64(1), till.Lines[0].OnHand)
	require.Equal(t, int64(0), till.Lines[0].Available)

	_, err = c.PutItem(ctx, "s1", "sofa", client.SetItem{OnHand: 10})
	require.NoError(t, err)
	later, err := c.Checkout(ctx, "s1", client.CheckoutRequest{Fulfilment: client.FulfilmentLater, Lines: []client.Line{{SKU: "sofa", Qty: 3}}})
	require.NoError(t, err)
	require.Equal(t, int64(10), later.Lines[0].OnHand)
	require.Equal(t, int64(3), later.Lines[0].Committed)
	require.Equal(t, int64(5), later.Lines[0].Available)

	res, err := c.Reserve(ctx, "s1", client.ReserveRequest{Lines: []client.Line{{SKU: "sofa", Qty: 1}}})
	require.NoError(t, err)
	cm, err := c.CommitLater(ctx, res.ID)
	require.NoError(t, err)
	require.Equal(t, client.StatusCommitted, cm.Status)

	// PUT refuses an on_hand below the held states (4 committed)
	_, err = c.PutItem(ctx, "s1", "sofa", client.SetItem{OnHand: 3})
	require.Equal(t, http.StatusConflict, problem(err).Status)

	_, err = c.Fulfil(ctx, "s1", client.FulfilRequest{Lines: []client.Line{{SKU: "sofa", Qty: 5}}})
	p := problem(err)
	require.Equal(t, http.StatusConflict, p.Status)
	f, err := c.Fulfil(ctx, "s1", client.FulfilRequest{Reference: "order 7", Lines: []client.Line{{SKU: "sofa", Qty: 4}}})
	require.NoError(t, err)
	require.Equal(t, int64(6), f.Lines[0].OnHand)
	require.Equal(t, int64(0), f.Lines[0].Committed)

	mv, err := c.Move(ctx, "s1", "sofa", client.Move{From: client.StateAvailable, To: client.StateDisplay, Qty: 1, Reason: "showroom"})
	require.NoError(t, err)
	require.Equal(t, int64(1), mv.Display)
	require.Equal(t, `"`+strconv.FormatInt(mv.Version, 10)+`"`, mv.ETag)
	for _, bad := range []client.Move{
		{From: "available", To: "stolen", Qty: 1},
		{From: "display", To: "display", Qty: 1},
		{From: "display", To: "committed", Qty: 1},
		{From: "available", To: "damaged", Qty: 0},
	} {
		_, err := c.Move(ctx, "s1", "sofa", bad)
		require.Equal(t, http.StatusBadRequest, problem(err).Status, "%+v", bad)
	}
	_, err = c.Move(ctx, "s1", "sofa", client.Move{From: "display", To: "damaged", Qty: 2})
	require.Equal(t, http.StatusConflict, problem(err).Status)
	_, err = c.Move(ctx, "s1", "sofa", client.Move{From: "display", To: "damaged", Qty: 1})
	require.NoError(t, err)
	adj, err := c.Adjust(ctx, "s1", "sofa", client.Adjustment{Delta: -1, State: client.StateDamaged, Reason: "thrown away"})
	require.NoError(t, err)
	require.Equal(t, int64(5), adj.OnHand)
	require.Equal(t, client.States{}, adj.States)
	_, err = c.Adjust(ctx, "s1", "sofa", client.Adjustment{Delta: -1, State: "lost"})
	require.Equal(t, http.StatusBadRequest, problem(err).Status)
	got, err := c.GetItem(ctx, "s1", "sofa")
	require.NoError(t, err)
	require.Equal(t, adj.Version, got.Version, "refusals change nothing")

}
