package luascripts_test

import (
	"testing"
	"time"
)

// held is a partition with hold 0-r1 of ann: 2 sofas and 1 lamp, the lamp
// counted against her purchase limit, until X.
func held(status, x, u string) keys {
	r := hash{"st": "s1", "c": "ann", "s": status, "l": `[["sofa",2],["lamp",1]]`, "x": x, "ca": UA, "u": u}
	if u == "" {
		delete(r, "u")
	}
	ks := keys{
		"st:s1":      hash{"sofa": "10,4,4," + UA, "lamp": "6,1,10," + UA + ",-1,3"},
		"r:0-r1":     r,
		"cu:s1:lamp": hash{"ann": "1"},
	}
	if status == "held" {
		ks["rexp"] = zset{"0-r1": 1764000060000}
	}
	return ks
}

// with returns ks with more keys.
func with(ks keys, more keys) keys {
	out := keys{}
	for k, v := range ks {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

// reservation is the reply's reservation fields of 0-r1.
func reservation(status string, items ...string) []any {
	out := []any{"reservation_id", "0-r1", "store", "s1", "customer", "ann", "status", status, "expires_at_ms", X,
		"lines", `[["sofa",2],["lamp",1]]`}
	for _, it := range items {
		out = append(out, "item", it)
	}
	return out
}

func TestCommit(t *testing.T) {
	t.Parallel()
	commit := req{"op": "commit", "reservation_id": "0-r1", "principal": "web"}
	runRows(t, scripts.Ops["commit"], []row{
		{
			name: "sells what is held, keeping the counted units",
			seed: ready(held("held", X, "[0,1]")),
			args: []any{commit},
			want: reservation("committed", "s1,sofa,8,2,5,-1,-1,"+T, "s1,lamp,5,0,11,-1,3,"+T),
			after: keys{
				"st:s1":  hash{"sofa": "8,2,5," + T, "lamp": "5,0,11," + T + ",-1,3"},
				"r:0-r1": hash{"st": "s1", "c": "ann", "s": "committed", "l": `[["sofa",2],["lamp",1]]`, "x": X, "ca": UA, "u": "[0,1]"},
				"rexp":   gone{},
				"events": entries{
					event("COMMIT", "s1", "sofa", "5,-2,-2,8,2,-1,-1,"+T+",0", "rid", "0-r1", "c", "ann", "pr", "web"),
					event("COMMIT", "s1", "lamp", "11,-1,-1,5,0,-1,3,"+T+",0", "rid", "0-r1", "c", "ann", "pr", "web"),
				},
			},
			ttl: map[string]time.Duration{"r:0-r1": retention},
		},
		{
			name: "committing a committed hold changes nothing",
			seed: ready(held("committed", X, "[0,1]")),
			args: []any{commit},
			want: reservation("committed"),
		},
		{name: "NOT_READY", seed: held("held", X, ""), args: []any{commit}, err: "NOT_READY"},
		{name: "INVALID reservation id", seed: ready(held("held", X, "")), args: []any{req{"op": "commit"}}, err: "INVALID reservation id"},
		{name: "NOT_FOUND", seed: ready(held("held", X, "")), args: []any{req{"op": "commit", "reservation_id": "0-r2"}}, err: "NOT_FOUND 0-r2"},
		{name: "NOT_HELD released", seed: ready(held("released", X, "")), args: []any{commit}, err: "NOT_HELD released"},
		{name: "NOT_HELD expired", seed: ready(held("expired", X, "")), args: []any{commit}, err: "NOT_HELD expired"},
		{name: "NOT_HELD past expires_at", seed: ready(held("held", T, "")), args: []any{commit}, err: "NOT_HELD expired"},
		{
			name: "CORRUPT when an item no longer holds the line",
			seed: ready(with(held("held", X, ""), keys{"st:s1": hash{"sofa": "10,1,4," + UA, "lamp": "6,1,10," + UA + ",-1,3"}})),
			args: []any{commit}, err: "CORRUPT reservation 0-r1 line sofa",
		},
		{
			name: "CORRUPT when an item is gone",
			seed: ready(with(held("held", X, ""), keys{"st:s1": hash{"sofa": "10,4,4," + UA}})),
			args: []any{commit}, err: "CORRUPT reservation 0-r1 line lamp",
		},
		{
			name: "BACKPRESSURE", hw: 1, seed: ready(with(held("held", X, ""), keys{"events": entries{{"x": "1"}}})),
			args: []any{commit}, err: "BACKPRESSURE",
		},
		{
			name: "IDEMPOTENCY_MISMATCH", seed: ready(with(held("held", X, ""), keys{"idem:3:web:k1": "other\nstatus\theld"})),
			args: []any{req{"op": "commit", "reservation_id": "0-r1", "op_id": "k1", "idem_key": "3:web:k1", "fingerprint": "fp"}},
			err:  "IDEMPOTENCY_MISMATCH",
		},
		{
			name: "ALREADY_APPLIED", seed: ready(with(held("held", X, ""), keys{"idem:3:web:k1": "*\n"})),
			args: []any{req{"op": "commit", "reservation_id": "0-r1", "op_id": "k1", "idem_key": "3:web:k1", "fingerprint": "fp"}},
			err:  "ALREADY_APPLIED",
		},
	})
}
