package httpapi

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// The hand-written encoder writes what encoding/json writes, byte for byte.
func TestEncodeBodyMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	opt := func() *int64 {
		if r.IntN(2) == 0 {
			return nil
		}
		v := r.Int64N(1e12) - 5
		return &v
	}
	names := []string{"s1", "sofa", "a.b-c_d", `q"uote`, `back\slash`, "<tag>&", "é", "tab\there", ""}
	times := []time.Time{
		time.UnixMilli(1764567890123).UTC(), time.Unix(0, 0).UTC(), time.Time{},
		time.Date(2026, 12, 1, 5, 0, 0, 120000000, time.UTC), time.Date(2026, 12, 1, 5, 0, 0, 0, time.FixedZone("x", 3600)),
	}
	var items []engine.Item
	for i := 0; i < 300; i++ {
		items = append(items, engine.Item{
			Store: names[r.IntN(len(names))], SKU: names[r.IntN(len(names))],
			OnHand: r.Int64N(1e12), Reserved: r.Int64N(1e6) - 1,
			States:    engine.States{Committed: r.Int64N(9), Damaged: r.Int64N(9), QualityControl: r.Int64N(9), Display: r.Int64N(9), Incoming: r.Int64N(9)},
			Available: r.Int64N(1e9), SafetyStock: opt(), Version: r.Int64N(1e9) + 1,
			ReorderPoint: opt(), MaxPerCustomer: opt(), UpdatedAt: times[r.IntN(len(times))],
		})
	}
	for i := range items {
		want, err := json.Marshal(items[i])
		require.NoError(t, err)
		got, err := encodeBody(items[i])
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
	}
	for _, lines := range [][]engine.Item{nil, {}, items[:1], items[:7]} {
		want, err := json.Marshal(map[string]any{"lines": lines})
		require.NoError(t, err)
		got, err := encodeBody(linesResult{Lines: lines})
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
	}
	other := map[string]any{"x": 1}
	got, err := encodeBody(other)
	require.NoError(t, err)
	require.JSONEq(t, `{"x":1}`, string(got))
}

func BenchmarkEncodeCheckoutResult(b *testing.B) {
	rp := int64(3)
	lines := []engine.Item{{Store: "s1", SKU: "sofa", OnHand: 99, Available: 99, Version: 7, ReorderPoint: &rp, UpdatedAt: time.UnixMilli(1764567890123).UTC()}}
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeBody(linesResult{Lines: lines}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json-map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(map[string]any{"lines": lines}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
