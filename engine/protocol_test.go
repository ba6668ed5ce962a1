package engine

import (
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/luascripts"
)

// luaReads matches a Lua read of a request member: req.<name>.
var luaReads = regexp.MustCompile(`\breq\.([A-Za-z_][A-Za-z0-9_]*)`)

// TestRequestMembersAreRead checks each script request both ways: every
// member the Go side can send (a json tag of its struct) is read by the Lua
// side (req.<name> in the script's own sources), and every member the Lua
// reads is one the Go side can send.
func TestRequestMembersAreRead(t *testing.T) {
	prelude, err := luascripts.Prelude()
	require.NoError(t, err)
	// own returns a composed script without the prelude: a script that is
	// not a write reads no write member of the prelude's.
	own := func(name string) string {
		src, err := luascripts.Source(name)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(src, prelude))
		return strings.TrimPrefix(src, prelude)
	}
	batch, err := luascripts.Source("batch") // the prelude and every write operation
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		req    any
		source string
	}{
		{"write", request{}, batch},
		{"read", readRequest{}, own("read")},
		{"expire", expireRequest{}, own("expire")},
		{"restore", restoreRequest{}, own("restore")},
		{"restore_reservation", restoreReservationRequest{}, own("restore_reservation")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent := jsonMembers(t, reflect.TypeOf(tc.req))
			read := map[string]bool{}
			for _, m := range luaReads.FindAllStringSubmatch(tc.source, -1) {
				read[m[1]] = true
			}
			require.NotEmpty(t, read)
			require.Equal(t, sorted(sent), sorted(read), "members Go sends (want) vs members Lua reads (got)")
		})
	}
}

func jsonMembers(t *testing.T, typ reflect.Type) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for i := 0; i < typ.NumField(); i++ {
		tag := typ.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		require.NotEmpty(t, name, "%s.%s has no json name", typ.Name(), typ.Field(i).Name)
		require.False(t, out[name], "%s: member %s twice", typ.Name(), name)
		out[name] = true
	}
	return out
}

func sorted(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestDecodeResult decodes replies by name: every field, repeated items in
// order, a batch's refusal as its domain error, and refuses what it cannot
// place.
func TestDecodeResult(t *testing.T) {
	item := "s1,sofa,10,2,7,-1,3,1764000000000"
	r, err := decodeResult([]any{"replayed", "1", "created", "1", "item", item, "item", "s1,lamp,1,0,1,5,-1,1764000000001"})
	require.NoError(t, err)
	require.True(t, r.Replayed)
	require.True(t, r.Created)
	require.Len(t, r.Items, 2)
	three := int64(3)
	require.Equal(t, Item{Store: "s1", SKU: "sofa", OnHand: 10, Reserved: 2, Available: 8, Version: 7,
		MaxPerCustomer: &three, UpdatedAt: r.Items[0].UpdatedAt}, r.Items[0])
	require.Equal(t, int64(1764000000000), r.Items[0].UpdatedAt.UnixMilli())
	require.Equal(t, "lamp", r.Items[1].SKU)

	r, err = decodeResult([]any{"reservation_id", "3-ab", "store", "s1", "customer", "ann", "status", "held",
		"expires_at_ms", "1764000060000", "lines", `[["sofa",2]]`, "item", item})
	require.NoError(t, err)
	require.Equal(t, "3-ab", r.Reservation.ID)
	require.Equal(t, "ann", r.Reservation.Customer)
	require.Equal(t, []Line{{SKU: "sofa", Qty: 2}}, r.Reservation.Lines)
	require.Equal(t, int64(1764000060000), r.Reservation.ExpiresAt.UnixMilli())
	require.Len(t, r.Items, 1)

	r, err = decodeResult([]any{"skus", []any{"a", "b"}})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, r.SKUs)
	r, err = decodeResult([]any{"expired", "0-a", "corrupt", "0-b", "expired", "0-c"})
	require.NoError(t, err)
	require.Equal(t, []string{"0-a", "0-c"}, r.Expired)
	require.Equal(t, []string{"0-b"}, r.Corrupt)

	_, err = decodeResult([]any{"error", `INSUFFICIENT [{"sku":"sofa","requested":3,"available":1}]`})
	var ise *InsufficientStockError
	require.ErrorAs(t, err, &ise)
	require.Equal(t, []Shortage{{SKU: "sofa", Requested: 3, Available: 1}}, ise.Shortages)

	for name, bad := range map[string]any{
		"not an array":    "item",
		"odd":             []any{"item"},
		"unknown name":    []any{"colour", "red"},
		"integer value":   []any{"replayed", int64(1)},
		"flag not 1":      []any{"replayed", "0"},
		"short item":      []any{"item", "s1,sofa,1,0,1,-1,-1"},
		"long item":       []any{"item", item + ",9"},
		"letters in item": []any{"item", "s1,sofa,x,0,1,-1,-1,1"},
		"list not array":  []any{"stores", "s1"},
		"bad lines":       []any{"lines", "[1"},
		"bad expiry":      []any{"expires_at_ms", "soon"},
	} {
		_, err := decodeResult(bad)
		require.Error(t, err, name)
	}
}

// BenchmarkDecodeCheckoutResult is the engine's cost of reading one sale's
// result.
func BenchmarkDecodeCheckoutResult(b *testing.B) {
	res := []any{"item", "s1,sofa,999999999999,0,12345,-1,-1,1764000000000"}
	for i := 0; i < b.N; i++ {
		r, err := decodeResult(res)
		if err != nil || len(r.Items) != 1 {
			b.Fatal(err)
		}
	}
}
