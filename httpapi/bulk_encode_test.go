package httpapi

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
)

// encodeBulkResults writes what encoding/json writes, for items with every
// member set and unset, strings that need escaping, and problems.
func TestEncodeBulkResults(t *testing.T) {
	t.Parallel()
	n := func(v int64) *int64 { return &v }
	full := engine.Item{Store: "store-01", SKU: "sku.A_9-x", OnHand: 12, Reserved: 3,
		States:    engine.States{Committed: 1, Damaged: 2, QualityControl: 3, Display: 4, Incoming: 5},
		Available: -7, SafetyStock: n(0), Version: 9, ReorderPoint: n(-1), MaxPerCustomer: n(1 << 40),
		UpdatedAt: time.Date(2026, 12, 1, 5, 4, 3, 120000000, time.FixedZone("x", 3600))}
	bare := engine.Item{Store: "s", SKU: "k", Version: 1, UpdatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	odd := bare
	odd.Store, odd.SKU = "a<b>&c", "caf\u00e9\"\\\n"
	far := bare
	far.UpdatedAt = time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC) // MarshalJSON's error
	_, err := encodeBulkResults([]bulkResult{{Status: 200, Item: &far}})
	_, want := json.Marshal(far)
	require.Error(t, want)
	require.Error(t, err)
	cases := [][]bulkResult{
		{},
		{{Status: 201, Item: &full}},
		{{Status: 200, Item: &bare}, {Status: 201, Item: &full}, {Status: 200, Item: &odd},
			{Status: 409, Error: problem(409, "conflict", "on_hand 1 would fall below the 3 units held")},
			{Status: 503, Error: unavailable("the ledger is behind")}},
	}
	for i := 0; i < 50; i++ {
		it := full
		it.SKU, it.OnHand, it.Version = fmt.Sprintf("k%05d", i), int64(i*i-300), int64(i+1)
		it.UpdatedAt = time.Unix(1764565000+int64(i), int64(i)*7919).In(time.FixedZone("z", (i-25)*1800))
		cases[2] = append(cases[2], bulkResult{Status: 201, Item: &it})
	}
	for i, out := range cases {
		want, err := json.Marshal(fiber.Map{"results": out})
		require.NoError(t, err)
		got, err := encodeBulkResults(out)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "case %d", i)
	}
}

// BenchmarkEncodeBulkResults encodes the answer of a 5,000-line PUT
// /v1/items with encoding/json and with encodeBulkResults.
func BenchmarkEncodeBulkResults(b *testing.B) {
	out := make([]bulkResult, 5000)
	rp := int64(5)
	for i := range out {
		out[i] = bulkResult{Status: 201, Item: &engine.Item{Store: fmt.Sprintf("store-%02d", i%30), SKU: fmt.Sprintf("sku-%07d", i),
			OnHand: int64(i % 100), Available: int64(i % 100), Version: 1, ReorderPoint: &rp, UpdatedAt: time.Now().UTC()}}
	}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(fiber.Map{"results": out}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeBulkResults(out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
