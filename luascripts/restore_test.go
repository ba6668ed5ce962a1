package luascripts_test

import (
	"testing"
)

func TestRestore(t *testing.T) {
	t.Parallel()
	state := func(m req) req {
		return merge(req{"store": "s1", "sku": "sofa", "on_hand": 7, "reserved": 1, "version": 9, "reorder_point": 2,
			"max_per_customer": 5, "updated_at_ms": 1762000000000, "expect_version": 4}, m)
	}
	seed := keys{"st:s1": hash{"sofa": "10,4,4," + UA}, "cu:s1:sofa": hash{"bob": "3"}}
	runRows(t, scripts.Restore, []row{
		{
			name: "overwrites an item and its customer units, without an event, ready or not",
			seed: seed,
			args: []any{state(req{"customer_units": map[string]int64{"ann": 2, "cy": 0}})},
			want: []any{"restored", "1"},
			after: keys{
				"st:s1":      hash{"sofa": "7,1,9,1762000000000,2,5"},
				"stores":     set{"s1"},
				"cu:s1:sofa": hash{"ann": "2"},
			},
		},
		{
			name: "no customer units deletes them",
			seed: seed,
			args: []any{state(req{"reorder_point": -1, "max_per_customer": -1})},
			want: []any{"restored", "1"},
			after: keys{
				"st:s1":      hash{"sofa": "7,1,9,1762000000000"},
				"stores":     set{"s1"},
				"cu:s1:sofa": gone{},
			},
		},
		{
			name:  "keep_customer_units leaves them",
			seed:  seed,
			args:  []any{state(req{"keep_customer_units": true, "customer_units": map[string]int64{"ann": 2}})},
			want:  []any{"restored", "1"},
			after: keys{"st:s1": hash{"sofa": "7,1,9,1762000000000,2,5"}, "stores": set{"s1"}},
		},
		{
			name:  "expect_version 0 creates an absent item",
			seed:  nil,
			args:  []any{state(req{"expect_version": 0})},
			want:  []any{"restored", "1"},
			after: keys{"st:s1": hash{"sofa": "7,1,9,1762000000000,2,5"}, "stores": set{"s1"}},
		},
		{
			name:  "expect_version -1 skips the check",
			seed:  seed,
			args:  []any{state(req{"expect_version": -1})},
			want:  []any{"restored", "1"},
			after: keys{"st:s1": hash{"sofa": "7,1,9,1762000000000,2,5"}, "stores": set{"s1"}, "cu:s1:sofa": gone{}},
		},
		{
			name: "many items in one call, one HSET per store, each store indexed",
			seed: seed,
			args: []any{
				state(req{"expect_version": -1}),
				state(req{"sku": "lamp", "on_hand": 3, "reserved": 0, "version": 1, "reorder_point": -1, "max_per_customer": -1,
					"expect_version": 0, "customer_units": map[string]int64{"bob": 1}}),
				state(req{"store": "s2", "expect_version": -1}),
			},
			want: []any{"restored", "1"},
			after: keys{
				"st:s1":      hash{"sofa": "7,1,9,1762000000000,2,5", "lamp": "3,0,1,1762000000000"},
				"st:s2":      hash{"sofa": "7,1,9,1762000000000,2,5"},
				"stores":     set{"s1", "s2"},
				"cu:s1:sofa": gone{},
				"cu:s1:lamp": hash{"bob": "1"},
			},
		},
		{
			name: "one refused request refuses the whole call: nothing written",
			seed: seed,
			args: []any{state(req{"sku": "lamp", "expect_version": 0}), state(req{"expect_version": 3})},
			err:  "VERSION_MISMATCH 4",
		},
		{
			name: "an invalid last request refuses the call",
			seed: seed,
			args: []any{state(req{"sku": "lamp", "expect_version": -1}), state(req{"sku": "so fa", "expect_version": -1})},
			err:  "INVALID id",
		},
		{name: "VERSION_MISMATCH", seed: seed, args: []any{state(req{"expect_version": 3})}, err: "VERSION_MISMATCH 4"},
		{name: "VERSION_MISMATCH absent", seed: nil, args: []any{state(nil)}, err: "VERSION_MISMATCH 0"},
		{name: "INVALID id", seed: seed, args: []any{state(req{"sku": "so fa"})}, err: "INVALID id"},
		{name: "INVALID state reserved above on_hand", seed: seed, args: []any{state(req{"reserved": 8})}, err: "INVALID state"},
		{name: "INVALID state version 0", seed: seed, args: []any{state(req{"version": 0})}, err: "INVALID state"},
		{name: "INVALID state limit missing", seed: seed, args: []any{state(req{"max_per_customer": nil})}, err: "INVALID state"},
		{name: "INVALID state time missing", seed: seed, args: []any{state(req{"updated_at_ms": nil})}, err: "INVALID state"},
		{name: "INVALID expect_version", seed: seed, args: []any{state(req{"expect_version": nil})}, err: "INVALID expect_version"},
		{name: "INVALID customer units id", seed: seed, args: []any{state(req{"customer_units": map[string]int64{"a b": 1}})}, err: "INVALID customer units"},
		{name: "INVALID customer units negative", seed: seed, args: []any{state(req{"customer_units": map[string]int64{"ann": -1}})}, err: "INVALID customer units"},
		{name: "INVALID customer units not an object", seed: seed, args: []any{state(req{"customer_units": "ann"})}, err: "INVALID customer units"},
	})
}

func TestRestoreReservation(t *testing.T) {
	t.Parallel()
	hold := func(m req) req {
		return merge(req{"reservation_id": "0-r1", "store": "s1", "customer": "ann", "lines": []any{line("sofa", 2), line("lamp", 1)},
			"expires_at_ms": 1764000060000}, m)
	}
	runRows(t, scripts.RestoreReservation, []row{
		{
			name: "puts back a hold with the units it counted, ready or not",
			args: []any{hold(req{"counted": []int64{0, 1}})},
			want: []any{"restored", "1"},
			after: keys{
				"r:0-r1": hash{"st": "s1", "c": "ann", "s": "held", "l": `[["sofa",2],["lamp",1]]`, "x": X, "ca": T, "u": "[0,1]"},
				"rexp":   zset{"0-r1": 1764000060000},
			},
		},
		{
			name: "replaces what the id held; a hold that counted nothing has no u",
			seed: keys{"r:0-r1": hash{"st": "s1", "s": "released", "junk": "1"}},
			args: []any{hold(req{"counted": []int64{0, 0}, "customer": nil})},
			want: []any{"restored", "1"},
			after: keys{
				"r:0-r1": hash{"st": "s1", "c": "", "s": "held", "l": `[["sofa",2],["lamp",1]]`, "x": X, "ca": T},
				"rexp":   zset{"0-r1": 1764000060000},
			},
		},
		{name: "INVALID reservation id", args: []any{hold(req{"reservation_id": ""})}, err: "INVALID reservation"},
		{name: "INVALID reservation store", args: []any{hold(req{"store": "s 1"})}, err: "INVALID reservation"},
		{name: "INVALID reservation no lines", args: []any{hold(req{"lines": []any{}})}, err: "INVALID reservation"},
		{name: "INVALID reservation expiry", args: []any{hold(req{"expires_at_ms": -1})}, err: "INVALID reservation"},
		{name: "INVALID reservation customer", args: []any{hold(req{"customer": "a b"})}, err: "INVALID reservation customer"},
		{name: "INVALID reservation lines", args: []any{hold(req{"lines": []any{line("sofa", 0)}})}, err: "INVALID reservation lines"},
		{name: "INVALID counted units per line", args: []any{hold(req{"counted": []int64{1}})}, err: "INVALID reservation counted units"},
		{name: "INVALID counted units above the line", args: []any{hold(req{"counted": []int64{0, 2}})}, err: "INVALID reservation counted units"},
		{
			name: "INVALID counted units without a customer", args: []any{hold(req{"counted": []int64{0, 1}, "customer": ""})},
			err: "INVALID reservation counted units without a customer",
		},
	})
}

// TestRestorePacked covers the rebuild's packed form of restore (ARGV[6] is
// '#', 15 fields per item, then its customers' units).
func TestRestorePacked(t *testing.T) {
	t.Parallel()
	// item: store, sku, on_hand, reserved, version, reorder_point,
	// max_per_customer, updated_at_ms, committed, damaged, quality_control,
	// display, incoming, safety_stock, then customer units
	item := func(store, sku string, more ...any) []any {
		return append([]any{store, sku, 7, 1, 9, 2, 5, int64(1762000000000), 0, 0, 0, 0, 0, -1}, more...)
	}
	args := func(items ...[]any) []any {
		out := []any{"#"}
		for _, it := range items {
			out = append(out, it...)
		}
		return out
	}
	seed := keys{"st:s1": hash{"sofa": "10,4,4," + UA}, "cu:s1:sofa": hash{"bob": "3"}, "cu:s1:lamp": hash{"cy": "1"}}
	states := []any{"s1", "vase", 9, 1, 3, -1, -1, int64(1762000000000), 2, 1, 1, 1, 4, 3, 0}
	runRows(t, scripts.Restore, []row{
		{
			name: "many items: items, states, customer units replaced, kept or deleted",
			seed: seed,
			args: args(item("s1", "sofa", 2, "ann", 2, "cy", 0), item("s1", "lamp", -1), item("s2", "sofa", 0), states),
			want: []any{"restored", "1"},
			after: keys{
				"st:s1":      hash{"sofa": "7,1,9,1762000000000,2,5", "lamp": "7,1,9,1762000000000,2,5", "vase": "9,1,3,1762000000000,-1,-1,2,1,1,1,4,3"},
				"st:s2":      hash{"sofa": "7,1,9,1762000000000,2,5"},
				"stores":     set{"s1", "s2"},
				"cu:s1:sofa": hash{"ann": "2"},
			},
		},
		{
			name:  "no customer units deletes them",
			seed:  seed,
			args:  args(item("s1", "sofa", 0)),
			want:  []any{"restored", "1"},
			after: keys{"st:s1": hash{"sofa": "7,1,9,1762000000000,2,5"}, "stores": set{"s1"}, "cu:s1:sofa": gone{}},
		},
		{name: "an invalid last item refuses the call", seed: seed, args: args(item("s1", "lamp", 0), item("s1", "so fa", 0)), err: "INVALID id"},
		{name: "INVALID state reserved above on_hand", seed: seed, args: args([]any{"s1", "sofa", 1, 2, 9, 2, 5, 1, 0, 0, 0, 0, 0, -1, 0}), err: "INVALID state"},
		{name: "INVALID state held above on_hand", seed: seed, args: args([]any{"s1", "sofa", 3, 1, 9, 2, 5, 1, 1, 1, 1, 0, 0, -1, 0}), err: "INVALID state"},
		{name: "INVALID state version 0", seed: seed, args: args([]any{"s1", "sofa", 7, 1, 0, 2, 5, 1, 0, 0, 0, 0, 0, -1, 0}), err: "INVALID state"},
		{name: "INVALID state not a number", seed: seed, args: args([]any{"s1", "sofa", 7, 1, 9, 2, 5, "x", 0, 0, 0, 0, 0, -1, 0}), err: "INVALID state"},
		{name: "INVALID state fraction", seed: seed, args: args([]any{"s1", "sofa", 7, "1.5", 9, 2, 5, 1, 0, 0, 0, 0, 0, -1, 0}), err: "INVALID state"},
		{name: "INVALID request short item", seed: seed, args: args([]any{"s1", "sofa", 7, 1, 9}), err: "INVALID request"},
		{name: "INVALID customer units missing pairs", seed: seed, args: args(item("s1", "sofa", 2, "ann", 1)), err: "INVALID customer units"},
		{name: "INVALID customer units id", seed: seed, args: args(item("s1", "sofa", 1, "a b", 1)), err: "INVALID customer units"},
		{name: "INVALID customer units negative", seed: seed, args: args(item("s1", "sofa", 1, "ann", -1)), err: "INVALID customer units"},
		{name: "INVALID customer units count", seed: seed, args: args(item("s1", "sofa", -2)), err: "INVALID customer units"},
	})
}
