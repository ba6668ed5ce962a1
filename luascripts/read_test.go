package luascripts_test

import (
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRead: reads answer from what Redis holds and never write (every row
// checks that every key is as seeded).
func TestRead(t *testing.T) {
	t.Parallel()
	chain := ready(keys{
		"st:s1":  shelf,
		"st:s2":  hash{"sofa": "3,0,1," + UA},
		"st:s0":  hash{"lamp": "1,0,1," + UA},
		"stores": set{"s2", "s0", "s1"},
		"r:0-r1": hash{"st": "s1", "c": "ann", "s": "held", "l": `[["sofa",2],["lamp",1]]`, "x": X, "ca": UA, "u": "[0,1]"},
	})
	runRows(t, scripts.Read, []row{
		{name: "item", seed: chain, args: []any{req{"op": "item", "store": "s1", "sku": "lamp"}}, want: []any{"item", "s1,lamp,6,0,9,-1,3," + UA}},
		{
			name: "skus of a store", seed: chain, args: []any{req{"op": "skus", "store": "s1"}},
			check: func(t *testing.T, got any) {
				a := got.([]any)
				require.Len(t, a, 2)
				require.Equal(t, "skus", a[0])
				var skus []string
				for _, s := range a[1].([]any) {
					skus = append(skus, s.(string))
				}
				sort.Strings(skus)
				require.Equal(t, []string{"desk", "lamp", "sofa"}, skus)
			},
		},
		{name: "skus of an empty store", seed: chain, args: []any{req{"op": "skus", "store": "s9"}}, want: []any{"skus", []any{}}},
		{
			name: "items of a store, in order, the missing left out", seed: chain,
			args: []any{req{"op": "items", "store": "s1", "skus": []string{"sofa", "bed", "desk"}}},
			want: []any{"item", "s1,sofa,10,2,3,-1,-1," + UA, "item", "s1,desk,5,4,2,-1,-1," + UA},
		},
		{
			name: "a SKU at every store of the partition, by store", seed: chain, args: []any{req{"op": "sku", "sku": "sofa"}},
			want: []any{"item", "s1,sofa,10,2,3,-1,-1," + UA, "item", "s2,sofa,3,0,1,-1,-1," + UA},
		},
		{
			name: "reservation", seed: chain, args: []any{req{"op": "reservation", "reservation_id": "0-r1"}},
			want: []any{"reservation_id", "0-r1", "store", "s1", "customer", "ann", "status", "held", "expires_at_ms", X,
				"lines", `[["sofa",2],["lamp",1]]`},
		},
		{name: "stores, sorted", seed: chain, args: []any{req{"op": "stores"}}, want: []any{"stores", []any{"s0", "s1", "s2"}}},
		{name: "no stores", seed: ready(nil), args: []any{req{"op": "stores"}}, want: []any{"stores", []any{}}},
		{name: "NOT_FOUND item", seed: chain, args: []any{req{"op": "item", "store": "s2", "sku": "lamp"}}, err: "NOT_FOUND lamp"},
		{name: "NOT_FOUND reservation", seed: chain, args: []any{req{"op": "reservation", "reservation_id": "0-r2"}}, err: "NOT_FOUND 0-r2"},
		{name: "NOT_READY", seed: keys{"st:s1": shelf}, args: []any{req{"op": "item", "store": "s1", "sku": "sofa"}}, err: "NOT_READY"},
		{name: "INVALID read", seed: chain, args: []any{req{"op": "scan"}}, err: "INVALID read"},
		{name: "INVALID id", seed: chain, args: []any{req{"op": "item", "store": "s1"}}, err: "INVALID id"},
		{name: "INVALID store", seed: chain, args: []any{req{"op": "skus"}}, err: "INVALID store"},
		{name: "INVALID items", seed: chain, args: []any{req{"op": "items", "store": "s1"}}, err: "INVALID items"},
		{name: "INVALID skus", seed: chain, args: []any{req{"op": "items", "store": "s1", "skus": []any{"sofa", 5}}}, err: "INVALID skus"},
		{name: "INVALID sku", seed: chain, args: []any{req{"op": "sku", "sku": ""}}, err: "INVALID sku"},
		{name: "INVALID reservation id", seed: chain, args: []any{req{"op": "reservation"}}, err: "INVALID reservation id"},
		{name: "CORRUPT", seed: ready(keys{"st:s1": hash{"sofa": "1,0"}}), args: []any{req{"op": "item", "store": "s1", "sku": "sofa"}}, err: "CORRUPT item s1/sofa is malformed"},
	})
}
