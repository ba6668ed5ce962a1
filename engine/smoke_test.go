package engine_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

func TestSmoke(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			e := b.make(t, engine.Config{})
			r, err := e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 10}, engine.Op{})
			require.NoError(t, err)
			require.True(t, r.Created)
			require.Equal(t, int64(1), r.Item.Version)
			c, err := e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 3}}}, engine.Op{})
			require.NoError(t, err)
			require.Equal(t, int64(7), c.Items[0].OnHand)
			res, err := e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 2}}, Customer: "c1"}, engine.Op{})
			require.NoError(t, err)
			require.Equal(t, int64(2), res.Items[0].Reserved)
			cm, err := e.Commit(ctx, res.Reservation.ID, engine.Op{})
			require.NoError(t, err)
			require.Equal(t, "committed", cm.Reservation.Status)
			it, err := e.GetItem(ctx, "s1", "sofa")
			require.NoError(t, err)
			require.Equal(t, int64(5), it.OnHand)
			require.Equal(t, int64(0), it.Reserved)
			require.Equal(t, int64(4), it.Version)
			a, err := e.Availability(ctx, "sofa")
			require.NoError(t, err)
			require.Equal(t, int64(5), a.Available)
			_, err = e.Checkout(ctx, engine.CheckoutRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 6}}}, engine.Op{})
			var ise *engine.InsufficientStockError
			require.ErrorAs(t, err, &ise)
			require.Equal(t, []engine.Shortage{{SKU: "sofa", Requested: 6, Available: 5}}, ise.Shortages)
			n, err := e.Client().XLen(ctx, e.StreamKey(e.Partition("s1"))).Result()
			require.NoError(t, err)
			require.Equal(t, int64(4), n)
		})
	}
}
