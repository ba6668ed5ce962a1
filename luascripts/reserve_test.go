package luascripts_test

import (
	"testing"
)

// X is the expires_at of a hold made now for a minute.
const X = "1764000060000"

func TestReserve(t *testing.T) {
	t.Parallel()
	hold := func(m req) req {
		return merge(req{"op": "reserve", "store": "s1", "reservation_id": "0-r1", "ttl_ms": 60000, "lines": []any{line("sofa", 2)}}, m)
	}
	runRows(t, scripts.Ops["reserve"], []row{
		{
			name: "holds every line until expires_at",
			seed: ready(keys{"st:s1": shelf}),
			args: []any{hold(req{"lines": []any{line("sofa", 2), line("desk", 1)}, "op_id": "k1", "principal": "web"})},
			want: []any{"reservation_id", "0-r1", "store", "s1", "customer", "", "status", "held", "expires_at_ms", X,
				"lines", `[["sofa",2],["desk",1]]`, "item", "s1,sofa,10,4,4,-1,-1," + T, "item", "s1,desk,5,5,3,-1,-1," + T},
			after: keys{
				"st:s1":  hash{"sofa": "10,4,4," + T, "lamp": "6,0,9," + UA + ",-1,3", "desk": "5,5,3," + T},
				"r:0-r1": hash{"st": "s1", "c": "", "s": "held", "l": `[["sofa",2],["desk",1]]`, "x": X, "ca": T},
				"rexp":   zset{"0-r1": 1764000060000},
				"events": entries{
					event("RESERVE", "s1", "sofa", "4,0,2,10,4,-1,-1,"+T+","+X, "rid", "0-r1", "op", "k1", "pr", "web"),
					event("RESERVE", "s1", "desk", "3,0,1,5,5,-1,-1,"+T+","+X, "rid", "0-r1", "op", "k1", "pr", "web"),
				},
			},
		},
		{
			name: "a hold under a purchase limit counts its units, and records them per line",
			seed: ready(keys{"st:s1": shelf}),
			args: []any{hold(req{"lines": []any{line("sofa", 2), line("lamp", 1)}, "customer": "ann"})},
			want: []any{"reservation_id", "0-r1", "store", "s1", "customer", "ann", "status", "held", "expires_at_ms", X,
				"lines", `[["sofa",2],["lamp",1]]`, "item", "s1,sofa,10,4,4,-1,-1," + T, "item", "s1,lamp,6,1,10,-1,3," + T},
			after: keys{
				"st:s1":      hash{"sofa": "10,4,4," + T, "lamp": "6,1,10," + T + ",-1,3", "desk": "5,4,2," + UA},
				"r:0-r1":     hash{"st": "s1", "c": "ann", "s": "held", "l": `[["sofa",2],["lamp",1]]`, "x": X, "ca": T, "u": "[0,1]"},
				"rexp":       zset{"0-r1": 1764000060000},
				"cu:s1:lamp": hash{"ann": "1"},
				"events": entries{
					event("RESERVE", "s1", "sofa", "4,0,2,10,4,-1,-1,"+T+","+X, "rid", "0-r1", "c", "ann"),
					event("RESERVE", "s1", "lamp", "10,0,1,6,1,-1,3,"+T+","+X, "rid", "0-r1", "c", "ann"),
				},
			},
		},
		{name: "NOT_READY", seed: keys{"st:s1": shelf}, args: []any{hold(nil)}, err: "NOT_READY"},
		{name: "INVALID reservation id missing", seed: ready(keys{"st:s1": shelf}), args: []any{hold(req{"reservation_id": nil})}, err: "INVALID reservation id"},
		{name: "INVALID reservation id empty", seed: ready(keys{"st:s1": shelf}), args: []any{hold(req{"reservation_id": ""})}, err: "INVALID reservation id"},
		{name: "INVALID ttl too short", seed: ready(keys{"st:s1": shelf}), args: []any{hold(req{"ttl_ms": 999})}, err: "INVALID ttl_seconds"},
		{name: "INVALID ttl too long", seed: ready(keys{"st:s1": shelf}), args: []any{hold(req{"ttl_ms": 86400001})}, err: "INVALID ttl_seconds"},
		{name: "INVALID ttl missing", seed: ready(keys{"st:s1": shelf}), args: []any{hold(req{"ttl_ms": nil})}, err: "INVALID ttl_seconds"},
		{name: "INVALID lines", seed: ready(keys{"st:s1": shelf}), args: []any{hold(req{"lines": []any{line("sofa", -1)}})}, err: "INVALID lines.qty"},
		{name: "NOT_FOUND", seed: ready(keys{"st:s1": shelf}), args: []any{hold(req{"lines": []any{line("bed", 1)}})}, err: "NOT_FOUND bed"},
		{name: "CUSTOMER_REQUIRED", seed: ready(keys{"st:s1": shelf}), args: []any{hold(req{"lines": []any{line("lamp", 1)}})}, err: "CUSTOMER_REQUIRED lamp"},
		{
			name: "PURCHASE_LIMIT", seed: ready(keys{"st:s1": shelf, "cu:s1:lamp": hash{"ann": "3"}}),
			args: []any{hold(req{"lines": []any{line("lamp", 1)}, "customer": "ann"})},
			err:  "PURCHASE_LIMIT", errJSON: `{"sku":"lamp","limit":3,"already":3}`,
		},
		{
			name: "INSUFFICIENT", seed: ready(keys{"st:s1": shelf}), args: []any{hold(req{"lines": []any{line("desk", 2)}})},
			err: "INSUFFICIENT", errJSON: `[{"sku":"desk","requested":2,"available":1}]`,
		},
		{
			name: "CONFLICT when the id is taken", seed: ready(keys{"st:s1": shelf, "r:0-r1": hash{"st": "s1", "s": "released"}}),
			args: []any{hold(nil)}, err: "CONFLICT reservation id exists",
		},
		{
			name: "BACKPRESSURE", hw: 1, seed: ready(keys{"st:s1": shelf, "events": entries{{"x": "1"}}}),
			args: []any{hold(nil)}, err: "BACKPRESSURE",
		},
		{
			name: "IDEMPOTENCY_MISMATCH", seed: ready(keys{"st:s1": shelf, "idem:3:web:k1": "other\nstatus\theld"}),
			args: []any{hold(req{"op_id": "k1", "idem_key": "3:web:k1", "fingerprint": "fp"})}, err: "IDEMPOTENCY_MISMATCH",
		},
		{
			name: "ALREADY_APPLIED", seed: ready(keys{"st:s1": shelf, "idem:3:web:k1": "*\n"}),
			args: []any{hold(req{"op_id": "k1", "idem_key": "3:web:k1", "fingerprint": "fp"})}, err: "ALREADY_APPLIED",
		},
		{name: "CORRUPT", seed: ready(keys{"st:s1": hash{"sofa": ""}}), args: []any{hold(nil)}, err: "CORRUPT item s1/sofa is malformed"},
	})
}
