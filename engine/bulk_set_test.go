package engine_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// streamLen sums the events of every partition's stream.
func streamLen(t *testing.T, e *engine.Engine) int64 {
	t.Helper()
	var n int64
	for p := 0; p < e.Partitions(); p++ {
		l, err := e.Client().XLen(context.Background(), e.StreamKey(p)).Result()
		require.NoError(t, err)
		n += l
	}
	return n
}

func TestSetMany(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			e := b.make(t, engine.Config{})
			_, err := e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 10}, engine.Op{})
			require.NoError(t, err)
			_, err = e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Lines: []engine.Line{{SKU: "sofa", Qty: 4}}}, engine.Op{})
			require.NoError(t, err)
			rp := int64(3)
			var lines []engine.SetRequest
			for i := 0; i < 600; i++ { // several chunks of one partition, many partitions
				lines = append(lines, engine.SetRequest{Store: fmt.Sprintf("st%d", i%7), SKU: fmt.Sprintf("k%d", i), OnHand: int64(i)})
			}
			lines = append(lines,
				engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 12, ReorderPoint: &rp}, // an update
				engine.SetRequest{Store: "s1", SKU: "sofa", OnHand: 2},                     // below reserved: refused alone
				engine.SetRequest{Store: "s1", SKU: "lamp", OnHand: 1},                     // the same item twice, in order
				engine.SetRequest{Store: "s1", SKU: "lamp", OnHand: 5},
			)
			before := streamLen(t, e)
			res, err := e.SetMany(ctx, lines, engine.Op{})
			require.NoError(t, err)
			require.Len(t, res.Lines, len(lines))
			for i := 0; i < 600; i++ {
				r := res.Lines[i]
				require.NoError(t, r.Err)
				require.True(t, r.Created)
				require.Equal(t, int64(1), r.Item.Version)
				require.Equal(t, int64(i), r.Item.OnHand)
				it, err := e.GetItem(ctx, lines[i].Store, lines[i].SKU)
				require.NoError(t, err)
				require.Equal(t, r.Item, it)
			}
			up := res.Lines[600]
			require.NoError(t, up.Err)
			require.False(t, up.Created)
			require.Equal(t, int64(3), up.Item.Version)
			require.Equal(t, int64(12), up.Item.OnHand)
			require.Equal(t, &rp, up.Item.ReorderPoint)
			require.ErrorIs(t, res.Lines[601].Err, engine.ErrConflict)
			require.Equal(t, int64(1), res.Lines[602].Item.Version)
			require.True(t, res.Lines[602].Created)
			require.Equal(t, int64(2), res.Lines[603].Item.Version)
			require.Equal(t, int64(5), res.Lines[603].Item.OnHand)
			require.Equal(t, before+600+1+2, streamLen(t, e), "one event per applied line")
		})
	}
}

// One invalid line refuses the whole request: nothing is applied.
func TestSetManyValidatesEveryLineFirst(t *testing.T) {
	ctx := context.Background()
	e := realBackend().make(t, engine.Config{})
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'x'
	}
	neg := int64(-1)
	for _, c := range []struct {
		name, field string
		bad         engine.SetRequest
	}{
		{"on_hand", "items[2].on_hand", engine.SetRequest{Store: "s1", SKU: "c", OnHand: -1}},
		{"sku", "items[2].sku", engine.SetRequest{Store: "s1", SKU: "c d", OnHand: 1}},
		{"store", "items[2].store", engine.SetRequest{Store: "", SKU: "c", OnHand: 1}},
		{"reorder_point", "items[2].reorder_point", engine.SetRequest{Store: "s1", SKU: "c", OnHand: 1, ReorderPoint: &neg}},
		{"reason", "items[2].reason", engine.SetRequest{Store: "s1", SKU: "c", OnHand: 1, Reason: string(long)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			lines := []engine.SetRequest{{Store: "s1", SKU: "a", OnHand: 1}, {Store: "s2", SKU: "b", OnHand: 1}, c.bad, {Store: "s3", SKU: "d", OnHand: 1}}
			_, err := e.SetMany(ctx, lines, engine.Op{IdempotencyKey: "k-" + c.name, Principal: "p"})
			var ve *engine.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, c.field, ve.Field)
			require.Zero(t, streamLen(t, e), "nothing applied")
			_, err = e.GetItem(ctx, "s1", "a")
			require.ErrorIs(t, err, engine.ErrNotFound)
		})
	}
	_, err := e.SetMany(ctx, nil, engine.Op{})
	var ve *engine.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "items", ve.Field)
	_, err = e.SetMany(ctx, make([]engine.SetRequest, engine.MaxBulkSetLines+1), engine.Op{})
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "items", ve.Field)
}

// A retry with the same key replays every line and changes nothing; the
// same key with other lines is refused.
func TestSetManyIdempotent(t *testing.T) {
	ctx := context.Background()
	e := realBackend().make(t, engine.Config{})
	lines := []engine.SetRequest{{Store: "s1", SKU: "a", OnHand: 3}, {Store: "s2", SKU: "b", OnHand: 4}}
	op := engine.Op{IdempotencyKey: "import-1", Principal: "admin"}
	first, err := e.SetMany(ctx, lines, op)
	require.NoError(t, err)
	require.False(t, first.Replayed)
	again, err := e.SetMany(ctx, lines, op)
	require.NoError(t, err)
	require.True(t, again.Replayed)
	for i := range lines {
		require.True(t, again.Lines[i].Replayed)
		require.True(t, again.Lines[i].Created, "the first answer again")
		require.Equal(t, first.Lines[i].Item, again.Lines[i].Item)
	}
	require.Equal(t, int64(2), streamLen(t, e))
	_, err = e.SetMany(ctx, []engine.SetRequest{{Store: "s1", SKU: "a", OnHand: 9}}, op)
	require.ErrorIs(t, err, engine.ErrIdempotencyMismatch)
}
