package luascripts_test

import (
	"testing"
	"time"
)

func TestRelease(t *testing.T) {
	t.Parallel()
	release := req{"op": "release", "reservation_id": "0-r1", "reason": "cart emptied"}
	runRows(t, scripts.Ops["release"], []row{
		{
			name: "gives the units back, and the counted ones to the customer",
			seed: ready(held("held", X, "[0,1]")),
			args: []any{release},
			want: reservation("released", "s1,sofa,10,2,5,-1,-1,"+T, "s1,lamp,6,0,11,-1,3,"+T),
			after: keys{
				"st:s1":      hash{"sofa": "10,2,5," + T, "lamp": "6,0,11," + T + ",-1,3"},
				"r:0-r1":     hash{"st": "s1", "c": "ann", "s": "released", "l": `[["sofa",2],["lamp",1]]`, "x": X, "ca": UA, "u": "[0,1]"},
				"rexp":       gone{},
				"cu:s1:lamp": gone{},
				"events": entries{
					event("RELEASE", "s1", "sofa", "5,0,-2,10,2,-1,-1,"+T+",0", "rid", "0-r1", "c", "ann", "rsn", "cart emptied"),
					event("RELEASE", "s1", "lamp", "11,0,-1,6,0,-1,3,"+T+",0", "rid", "0-r1", "c", "ann", "rsn", "cart emptied"),
				},
			},
			ttl: map[string]time.Duration{"r:0-r1": retention},
		},
		{
			name: "a hold that counted nothing gives back no customer units",
			seed: ready(held("held", X, "")),
			args: []any{release},
			want: reservation("released", "s1,sofa,10,2,5,-1,-1,"+T, "s1,lamp,6,0,11,-1,3,"+T),
			after: keys{
				"st:s1":  hash{"sofa": "10,2,5," + T, "lamp": "6,0,11," + T + ",-1,3"},
				"r:0-r1": hash{"st": "s1", "c": "ann", "s": "released", "l": `[["sofa",2],["lamp",1]]`, "x": X, "ca": UA},
				"rexp":   gone{},
				"events": entries{
					event("RELEASE", "s1", "sofa", "5,0,-2,10,2,-1,-1,"+T+",0", "rid", "0-r1", "c", "ann", "rsn", "cart emptied"),
					event("RELEASE", "s1", "lamp", "11,0,-1,6,0,-1,3,"+T+",0", "rid", "0-r1", "c", "ann", "rsn", "cart emptied"),
				},
			},
		},
		{
			name: "past expires_at the hold expires now",
			seed: ready(held("held", T, "[0,1]")),
			args: []any{release},
			want: []any{"reservation_id", "0-r1", "store", "s1", "customer", "ann", "status", "expired", "expires_at_ms", T,
				"lines", `[["sofa",2],["lamp",1]]`, "item", "s1,sofa,10,2,5,-1,-1," + T, "item", "s1,lamp,6,0,11,-1,3," + T},
			after: keys{
				"st:s1":      hash{"sofa": "10,2,5," + T, "lamp": "6,0,11," + T + ",-1,3"},
				"r:0-r1":     hash{"st": "s1", "c": "ann", "s": "expired", "l": `[["sofa",2],["lamp",1]]`, "x": T, "ca": UA, "u": "[0,1]"},
				"rexp":       gone{},
				"cu:s1:lamp": gone{},
				"events": entries{
					event("EXPIRE", "s1", "sofa", "5,0,-2,10,2,-1,-1,"+T+",0", "rid", "0-r1", "c", "ann", "rsn", "cart emptied"),
					event("EXPIRE", "s1", "lamp", "11,0,-1,6,0,-1,3,"+T+",0", "rid", "0-r1", "c", "ann", "rsn", "cart emptied"),
				},
			},
		},
		{name: "releasing a released hold changes nothing", seed: ready(held("released", X, "")), args: []any{release}, want: reservation("released")},
		{name: "releasing an expired hold changes nothing", seed: ready(held("expired", X, "")), args: []any{release}, want: reservation("expired")},
		{name: "NOT_READY", seed: held("held", X, ""), args: []any{release}, err: "NOT_READY"},
		{name: "INVALID reservation id", seed: ready(held("held", X, "")), args: []any{req{"op": "release", "reservation_id": ""}}, err: "INVALID reservation id"},
		{name: "NOT_FOUND", seed: ready(held("held", X, "")), args: []any{req{"op": "release", "reservation_id": "0-r2"}}, err: "NOT_FOUND 0-r2"},
		{name: "NOT_HELD committed", seed: ready(held("committed", X, "")), args: []any{release}, err: "NOT_HELD committed"},
		{
			name: "CORRUPT counted units", seed: ready(held("held", X, "[0,2]")),
			args: []any{release}, err: "CORRUPT reservation 0-r1 line lamp",
		},
		{
			name: "BACKPRESSURE", hw: 1, seed: ready(with(held("held", X, ""), keys{"events": entries{{"x": "1"}}})),
			args: []any{release}, err: "BACKPRESSURE",
		},
		{
			name: "IDEMPOTENCY_MISMATCH", seed: ready(with(held("held", X, ""), keys{"idem:g:~g1": "\nstatus\treleased"})),
			args: []any{req{"op": "release", "reservation_id": "0-r1", "op_id": "~g1", "generated": true, "fingerprint": "fp"}},
			err:  "IDEMPOTENCY_MISMATCH",
		},
		{
			name: "ALREADY_APPLIED", seed: ready(with(held("held", X, ""), keys{"idem:3:web:k1": "*\n"})),
			args: []any{req{"op": "release", "reservation_id": "0-r1", "op_id": "k1", "idem_key": "3:web:k1", "fingerprint": "fp"}},
			err:  "ALREADY_APPLIED",
		},
	})
}
