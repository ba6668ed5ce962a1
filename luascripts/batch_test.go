package luascripts_test

import (
	"testing"
	"time"
)

func TestBatch(t *testing.T) {
	t.Parallel()
	buy := func(sku string, qty int64, op string) req {
		return req{"op": "checkout", "store": "s1", "lines": []any{line(sku, qty)}, "op_id": op, "generated": true}
	}
	keyed := func(r req, key string) req {
		out := req{"op_id": key, "idem_key": "3:web:" + key, "fingerprint": "fp", "principal": "web"}
		for k, v := range r {
			if k != "generated" && k != "op_id" {
				out[k] = v
			}
		}
		return out
	}
	runRows(t, scripts.Batch, []row{
		{
			name: "runs each request on its own and keeps the results under the batch id",
			seed: ready(keys{"st:s1": shelf}),
			args: []any{"b1", buy("sofa", 1, "~g1"), buy("bed", 1, "~g2"), `{"op":`, buy("desk", 1, "~g3")},
			want: []any{
				[]any{"item", "s1,sofa,9,2,4,-1,-1," + T},
				[]any{"error", "NOT_FOUND bed"},
				[]any{"error", matching(`^INVALID request: .*Expected value but found T_END`)},
				[]any{"item", "s1,desk,4,4,3,-1,-1," + T},
			},
			after: keys{
				"st:s1": hash{"sofa": "9,2,4," + T, "lamp": "6,0,9," + UA + ",-1,3", "desk": "4,4,3," + T},
				"events": entries{
					event("SALE", "s1", "sofa", "4,-1,0,9,2,-1,-1,"+T+",0", "op", "~g1"),
					event("SALE", "s1", "desk", "3,-1,0,4,4,-1,-1,"+T+",0", "op", "~g3"),
				},
				"idem:b:b1": matching("^item\ts1,sofa,9,2,4,-1,-1," + T + "\nerror\tNOT_FOUND bed\nerror\tINVALID request: [^\t\n]*\nitem\ts1,desk,4,4,3,-1,-1," + T + "$"),
			},
			ttl: map[string]time.Duration{"idem:b:b1": opTTL},
		},
		{
			name: "requests of one batch see each other's changes",
			seed: ready(keys{"st:s1": shelf}),
			args: []any{"b1", buy("sofa", 1, "~g1"), buy("sofa", 7, "~g2"), buy("sofa", 1, "~g3")},
			want: []any{
				[]any{"item", "s1,sofa,9,2,4,-1,-1," + T},
				[]any{"item", "s1,sofa,2,2,5,-1,-1," + T},
				[]any{"error", withJSON{"INSUFFICIENT ", `[{"sku":"sofa","requested":1,"available":0}]`}},
			},
			after: keys{
				"st:s1": hash{"sofa": "2,2,5," + T, "lamp": "6,0,9," + UA + ",-1,3", "desk": "5,4,2," + UA},
				"events": entries{
					event("SALE", "s1", "sofa", "4,-1,0,9,2,-1,-1,"+T+",0", "op", "~g1"),
					event("SALE", "s1", "sofa", "5,-7,0,2,2,-1,-1,"+T+",0", "op", "~g2"),
				},
				"idem:b:b1": withJSON{"item\ts1,sofa,9,2,4,-1,-1," + T + "\nitem\ts1,sofa,2,2,5,-1,-1," + T + "\nerror\tINSUFFICIENT ",
					`[{"sku":"sofa","requested":1,"available":0}]`},
			},
		},
		{
			name: "a retry of the call replays the batch and changes nothing",
			seed: ready(keys{"st:s1": shelf, "idem:b:b1": "item\ts1,sofa,9,2,4,-1,-1," + T + "\nerror\tNOT_FOUND bed"}),
			args: []any{"b1", buy("sofa", 1, "~g1"), buy("bed", 1, "~g2")},
			want: []any{[]any{"item", "s1,sofa,9,2,4,-1,-1," + T}, []any{"error", "NOT_FOUND bed"}},
		},
		{
			name: "a keyed request keeps its own record and replays it; a generated one has none",
			seed: ready(keys{"st:s1": shelf, "idem:3:web:k0": "fp\nitem\ts1,lamp,6,0,9,-1,3," + UA}),
			args: []any{"b1", keyed(buy("desk", 1, ""), "k1"), buy("sofa", 1, "~g2"), keyed(buy("lamp", 1, ""), "k0")},
			want: []any{
				[]any{"item", "s1,desk,4,4,3,-1,-1," + T},
				[]any{"item", "s1,sofa,9,2,4,-1,-1," + T},
				[]any{"replayed", "1", "item", "s1,lamp,6,0,9,-1,3," + UA},
			},
			after: keys{
				"st:s1": hash{"sofa": "9,2,4," + T, "lamp": "6,0,9," + UA + ",-1,3", "desk": "4,4,3," + T},
				"events": entries{
					event("SALE", "s1", "desk", "3,-1,0,4,4,-1,-1,"+T+",0", "op", "k1", "pr", "web"),
					event("SALE", "s1", "sofa", "4,-1,0,9,2,-1,-1,"+T+",0", "op", "~g2"),
				},
				"idem:3:web:k1": "fp\nitem\ts1,desk,4,4,3,-1,-1," + T,
				"idem:b:b1": "item\ts1,desk,4,4,3,-1,-1," + T + "\nitem\ts1,sofa,9,2,4,-1,-1," + T +
					"\nreplayed\t1\titem\ts1,lamp,6,0,9,-1,3," + UA,
			},
			ttl: map[string]time.Duration{"idem:3:web:k1": idemTTL},
		},
		{
			name: "a corrupt item fails its request alone",
			seed: ready(keys{"st:s1": hash{"sofa": "10,2,3," + UA, "desk": "5;4"}}),
			args: []any{"b1", buy("desk", 1, "~g1"), buy("sofa", 1, "~g2")},
			want: []any{
				[]any{"error", "CORRUPT item s1/desk is malformed"},
				[]any{"item", "s1,sofa,9,2,4,-1,-1," + T},
			},
			after: keys{
				"st:s1":     hash{"sofa": "9,2,4," + T, "desk": "5;4"},
				"events":    entries{event("SALE", "s1", "sofa", "4,-1,0,9,2,-1,-1,"+T+",0", "op", "~g2")},
				"idem:b:b1": "error\tCORRUPT item s1/desk is malformed\nitem\ts1,sofa,9,2,4,-1,-1," + T,
			},
		},
		{
			name: "backpressure counts the batch's own events",
			hw:   2,
			seed: ready(keys{"st:s1": shelf}),
			args: []any{"b1", buy("sofa", 1, "~g1"), buy("desk", 1, "~g2"), buy("sofa", 1, "~g3")},
			want: []any{
				[]any{"item", "s1,sofa,9,2,4,-1,-1," + T},
				[]any{"item", "s1,desk,4,4,3,-1,-1," + T},
				[]any{"error", "BACKPRESSURE "},
			},
			after: keys{
				"st:s1": hash{"sofa": "9,2,4," + T, "lamp": "6,0,9," + UA + ",-1,3", "desk": "4,4,3," + T},
				"events": entries{
					event("SALE", "s1", "sofa", "4,-1,0,9,2,-1,-1,"+T+",0", "op", "~g1"),
					event("SALE", "s1", "desk", "3,-1,0,4,4,-1,-1,"+T+",0", "op", "~g2"),
				},
				"idem:b:b1": "item\ts1,sofa,9,2,4,-1,-1," + T + "\nitem\ts1,desk,4,4,3,-1,-1," + T + "\nerror\tBACKPRESSURE ",
			},
		},
		{
			name:  "NOT_READY refuses every request; only the batch's record is written",
			seed:  keys{"st:s1": shelf},
			args:  []any{"b1", buy("sofa", 1, "~g1"), buy("desk", 1, "~g2")},
			want:  []any{[]any{"error", "NOT_READY "}, []any{"error", "NOT_READY "}},
			after: keys{"idem:b:b1": "error\tNOT_READY \nerror\tNOT_READY "},
		},
		{
			name:  "IDEMPOTENCY_MISMATCH and ALREADY_APPLIED refuse their own request",
			seed:  ready(keys{"st:s1": shelf, "idem:3:web:k1": "other\nitem\tx", "idem:3:web:k2": "*\n"}),
			args:  []any{"b1", keyed(buy("sofa", 1, ""), "k1"), keyed(buy("sofa", 1, ""), "k2")},
			want:  []any{[]any{"error", "IDEMPOTENCY_MISMATCH "}, []any{"error", "ALREADY_APPLIED "}},
			after: keys{"idem:b:b1": "error\tIDEMPOTENCY_MISMATCH \nerror\tALREADY_APPLIED "},
		},
	})
}
