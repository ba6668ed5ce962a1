package luascripts_test

import (
	"testing"
)

// shelf is a store with a sofa, a lamp (purchase limit 3) and a desk (5
// on hand, 4 reserved).
var shelf = hash{"sofa": "10,2,3," + UA, "lamp": "6,0,9," + UA + ",-1,3", "desk": "5,4,2," + UA}

func TestCheckout(t *testing.T) {
	t.Parallel()
	buy := func(m req) req {
		return merge(req{"op": "checkout", "store": "s1", "lines": []any{line("sofa", 1)}}, m)
	}
	many := make([]any, 101)
	for i := range many {
		many[i] = line("sku"+itoa(int64(i)), 1)
	}
	runRows(t, scripts.Ops["checkout"], []row{
		{
			name: "sells every line",
			seed: ready(keys{"st:s1": shelf}),
			args: []any{buy(req{"lines": []any{line("sofa", 2), line("desk", 1)}, "reason": "web order"})},
			want: []any{"item", "s1,sofa,8,2,4,-1,-1," + T, "item", "s1,desk,4,4,3,-1,-1," + T},
			after: keys{
				"st:s1": hash{"sofa": "8,2,4," + T, "lamp": "6,0,9," + UA + ",-1,3", "desk": "4,4,3," + T},
				"events": entries{
					event("SALE", "s1", "sofa", "4,-2,0,8,2,-1,-1,"+T+",0", "rsn", "web order"),
					event("SALE", "s1", "desk", "3,-1,0,4,4,-1,-1,"+T+",0", "rsn", "web order"),
				},
			},
		},
		{
			name: "a line under a purchase limit counts against the customer",
			seed: ready(keys{"st:s1": shelf, "cu:s1:lamp": hash{"ann": "1"}}),
			args: []any{buy(req{"lines": []any{line("lamp", 2), line("sofa", 1)}, "customer": "ann"})},
			want: []any{"item", "s1,lamp,4,0,10,-1,3," + T, "item", "s1,sofa,9,2,4,-1,-1," + T},
			after: keys{
				"st:s1":      hash{"sofa": "9,2,4," + T, "lamp": "4,0,10," + T + ",-1,3", "desk": "5,4,2," + UA},
				"cu:s1:lamp": hash{"ann": "3"},
				"events": entries{
					event("SALE", "s1", "lamp", "10,-2,0,4,0,-1,3,"+T+",0", "c", "ann"),
					event("SALE", "s1", "sofa", "4,-1,0,9,2,-1,-1,"+T+",0", "c", "ann"),
				},
			},
		},
		{
			name: "a principal holding a tab keeps one field per text",
			seed: ready(keys{"st:s1": shelf}),
			args: []any{buy(req{"principal": "till\t7", "reason": "web order"})},
			want: []any{"item", "s1,sofa,9,2,4,-1,-1," + T},
			after: keys{
				"st:s1": hash{"sofa": "9,2,4," + T, "lamp": "6,0,9," + UA + ",-1,3", "desk": "5,4,2," + UA},
				"events": entries{hash{"s": "s1", "k": "sofa", "t": "SALE", "n": "4,-1,0,9,2,-1,-1," + T + ",0",
					"rid": "", "c": "", "op": "", "rsn": "web order", "pr": "till\t7"}},
			},
		},
		{
			name: "an event packs every field in e",
			seed: ready(keys{"st:s1": shelf}),
			args: []any{buy(req{"principal": "web", "customer": "ann", "op_id": "k9", "reason": "web order"})},
			want: []any{"item", "s1,sofa,9,2,4,-1,-1," + T},
			after: keys{
				"st:s1":  hash{"sofa": "9,2,4," + T, "lamp": "6,0,9," + UA + ",-1,3", "desk": "5,4,2," + UA},
				"events": entries{hash{"e": "s1\tsofa\tSALE\t4,-1,0,9,2,-1,-1," + T + ",0\t\tann\tk9\tweb order\tweb"}},
			},
		},
		{name: "NOT_READY", seed: keys{"st:s1": shelf}, args: []any{buy(nil)}, err: "NOT_READY"},
		{name: "INVALID store", seed: ready(keys{"st:s1": shelf}), args: []any{buy(req{"store": "s/1"})}, err: "INVALID store"},
		{name: "INVALID lines empty", seed: ready(keys{"st:s1": shelf}), args: []any{buy(req{"lines": []any{}})}, err: "INVALID lines"},
		{name: "INVALID lines missing", seed: ready(keys{"st:s1": shelf}), args: []any{req{"op": "checkout", "store": "s1"}}, err: "INVALID lines"},
		{name: "INVALID lines too many", seed: ready(keys{"st:s1": shelf}), args: []any{buy(req{"lines": many})}, err: "INVALID lines"},
		{name: "INVALID lines not pairs", seed: ready(keys{"st:s1": shelf}), args: []any{buy(req{"lines": []any{"sofa"}})}, err: "INVALID lines"},
		{name: "INVALID lines.sku", seed: ready(keys{"st:s1": shelf}), args: []any{buy(req{"lines": []any{line("so fa", 1)}})}, err: "INVALID lines.sku"},
		{name: "INVALID lines.qty zero", seed: ready(keys{"st:s1": shelf}), args: []any{buy(req{"lines": []any{line("sofa", 0)}})}, err: "INVALID lines.qty"},
		{name: "INVALID lines.qty too big", seed: ready(keys{"st:s1": shelf}), args: []any{buy(req{"lines": []any{line("sofa", 1000000001)}})}, err: "INVALID lines.qty"},
		{
			name: "INVALID lines.duplicate", seed: ready(keys{"st:s1": shelf}),
			args: []any{buy(req{"lines": []any{line("sofa", 1), line("desk", 1), line("sofa", 1)}})}, err: "INVALID lines.duplicate sofa",
		},
		{name: "INVALID customer", seed: ready(keys{"st:s1": shelf}), args: []any{buy(req{"customer": "ann smith"})}, err: "INVALID customer"},
		{
			name: "NOT_FOUND names the missing line", seed: ready(keys{"st:s1": shelf}),
			args: []any{buy(req{"lines": []any{line("sofa", 1), line("bed", 1)}})}, err: "NOT_FOUND bed",
		},
		{name: "CUSTOMER_REQUIRED", seed: ready(keys{"st:s1": shelf}), args: []any{buy(req{"lines": []any{line("lamp", 1)}})}, err: "CUSTOMER_REQUIRED lamp"},
		{
			name: "PURCHASE_LIMIT", seed: ready(keys{"st:s1": shelf, "cu:s1:lamp": hash{"ann": "2"}}),
			args: []any{buy(req{"lines": []any{line("sofa", 1), line("lamp", 2)}, "customer": "ann"})},
			err:  "PURCHASE_LIMIT", errJSON: `{"sku":"lamp","limit":3,"already":2}`,
		},
		{
			name: "PURCHASE_LIMIT before INSUFFICIENT", seed: ready(keys{"st:s1": shelf}),
			args: []any{buy(req{"lines": []any{line("desk", 2), line("sofa", 1), line("lamp", 7)}, "customer": "ann"})},
			err:  "PURCHASE_LIMIT", errJSON: `{"sku":"lamp","limit":3,"already":0}`,
		},
		{
			name: "INSUFFICIENT lists every short line", seed: ready(keys{"st:s1": shelf}),
			args: []any{buy(req{"lines": []any{line("desk", 2), line("sofa", 9), line("lamp", 1)}, "customer": "ann"})},
			err:  "INSUFFICIENT", errJSON: `[{"sku":"desk","requested":2,"available":1},{"sku":"sofa","requested":9,"available":8}]`,
		},
		{
			name: "BACKPRESSURE", hw: 1, seed: ready(keys{"st:s1": shelf, "events": entries{{"x": "1"}}}),
			args: []any{buy(nil)}, err: "BACKPRESSURE",
		},
		{
			name: "IDEMPOTENCY_MISMATCH", seed: ready(keys{"st:s1": shelf, "idem:3:web:k1": "other\nitem\tx"}),
			args: []any{buy(req{"op_id": "k1", "idem_key": "3:web:k1", "fingerprint": "fp"})}, err: "IDEMPOTENCY_MISMATCH",
		},
		{
			name: "ALREADY_APPLIED", seed: ready(keys{"st:s1": shelf, "idem:3:web:k1": "*\n"}),
			args: []any{buy(req{"op_id": "k1", "idem_key": "3:web:k1", "fingerprint": "fp"})}, err: "ALREADY_APPLIED",
		},
		{
			name: "CORRUPT", seed: ready(keys{"st:s1": hash{"sofa": "10,2,3," + UA, "desk": "5,4"}}),
			args: []any{buy(req{"lines": []any{line("sofa", 1), line("desk", 1)}})}, err: "CORRUPT item s1/desk is malformed",
		},
	})
}
