package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// TestHoldPastExpiryReadsExpired: a hold reads as expired from its
// expires_at on, before the sweeper has given its units back.
func TestHoldPastExpiryReadsExpired(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clock := newFakeClock()
		e := b.make(t, engine.Config{Clock: clock.Now})
		ctx := context.Background()
		mustSet(t, e, "s1", "sofa", 10)
		r, err := e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 2}}, TTL: 5 * time.Second}, engine.Op{})
		require.NoError(t, err)
		clock.Advance(4999 * time.Millisecond)
		got, err := e.GetReservation(ctx, r.Reservation.ID)
		require.NoError(t, err)
		require.Equal(t, engine.StatusHeld, got.Status)
		clock.Advance(time.Millisecond)
		got, err = e.GetReservation(ctx, r.Reservation.ID)
		require.NoError(t, err)
		require.Equal(t, engine.StatusExpired, got.Status)
		n, err := e.ExpireDue(ctx, e.Partition("s1"), 100)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		got, err = e.GetReservation(ctx, r.Reservation.ID)
		require.NoError(t, err)
		require.Equal(t, engine.StatusExpired, got.Status)
		require.Equal(t, int64(0), mustGet(t, e, "s1", "sofa").Reserved)
	})
}

// TestReleasePastExpiryExpires: a release of a hold past its expires_at,
// before the sweep, expires it (what a read already says) and gives its
// units back once.
func TestReleasePastExpiryExpires(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clock := newFakeClock()
		e := b.make(t, engine.Config{Clock: clock.Now})
		ctx := context.Background()
		mustSet(t, e, "s1", "sofa", 10)
		r, err := e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 2}}, TTL: 5 * time.Second}, engine.Op{})
		require.NoError(t, err)
		clock.Advance(6 * time.Second)
		rel, err := e.Release(ctx, r.Reservation.ID, engine.Op{})
		require.NoError(t, err)
		require.Equal(t, engine.StatusExpired, rel.Reservation.Status)
		require.Len(t, rel.Items, 1)
		require.Equal(t, int64(0), mustGet(t, e, "s1", "sofa").Reserved)
		evs := itemEvents(t, e, "s1", "sofa")
		require.Equal(t, "EXPIRE", evs[len(evs)-1].Type)
		n, err := e.ExpireDue(ctx, e.Partition("s1"), 100)
		require.NoError(t, err)
		require.Equal(t, 0, n, "nothing left to expire")
		rel, err = e.Release(ctx, r.Reservation.ID, engine.Op{})
		require.NoError(t, err)
		require.Empty(t, rel.Items, "a second release changes nothing")
	})
}
