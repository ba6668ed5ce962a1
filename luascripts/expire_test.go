package luascripts_test

import (
	"testing"
	"time"
)

// due is a partition with three reservations in its expiry set: 0-r1 of
// ann (2 sofas, 1 lamp counted), due now; 0-r2 (2 sofas), due at X; 0-r3,
// released but still in the set, due before 0-r1.
var due = keys{
	"st:s1":      hash{"sofa": "10,4,4," + UA, "lamp": "6,1,10," + UA + ",-1,3"},
	"r:0-r1":     hash{"st": "s1", "c": "ann", "s": "held", "l": `[["sofa",2],["lamp",1]]`, "x": T, "ca": UA, "u": "[0,1]"},
	"r:0-r2":     hash{"st": "s1", "c": "", "s": "held", "l": `[["sofa",2]]`, "x": X, "ca": UA},
	"r:0-r3":     hash{"st": "s1", "c": "", "s": "released", "l": `[["sofa",1]]`, "x": "1763999999000", "ca": UA},
	"rexp":       zset{"0-r1": 1764000000000, "0-r2": 1764000060000, "0-r3": 1763999999000},
	"cu:s1:lamp": hash{"ann": "1"},
}

func TestExpire(t *testing.T) {
	t.Parallel()
	expired := keys{
		"st:s1":      hash{"sofa": "10,2,5," + T, "lamp": "6,0,11," + T + ",-1,3"},
		"r:0-r1":     hash{"st": "s1", "c": "ann", "s": "expired", "l": `[["sofa",2],["lamp",1]]`, "x": T, "ca": UA, "u": "[0,1]"},
		"rexp":       zset{"0-r2": 1764000060000},
		"cu:s1:lamp": gone{},
		"events": entries{
			event("EXPIRE", "s1", "sofa", "5,0,-2,10,2,-1,-1,"+T+",0", "rid", "0-r1", "c", "ann", "op", "expire:0-r1", "pr", "sweeper"),
			event("EXPIRE", "s1", "lamp", "11,0,-1,6,0,-1,3,"+T+",0", "rid", "0-r1", "c", "ann", "op", "expire:0-r1", "pr", "sweeper"),
		},
	}
	runRows(t, scripts.Expire, []row{
		{
			name:  "expires the due holds and drops finished ones from the set",
			seed:  ready(due),
			args:  []any{req{"limit": 10}},
			want:  []any{"expired", "0-r1"},
			after: expired,
			ttl:   map[string]time.Duration{"r:0-r1": retention},
		},
		{
			name:  "expires at most limit holds, in due order",
			seed:  ready(due),
			args:  []any{req{"limit": 1}},
			want:  []any{},
			after: keys{"rexp": zset{"0-r1": 1764000000000, "0-r2": 1764000060000}},
		},
		{
			name:  "a hold whose items no longer hold it is dropped as corrupt, its units left",
			seed:  ready(with(due, keys{"st:s1": hash{"sofa": "10,4,4," + UA}})),
			args:  []any{req{"limit": 10}},
			want:  []any{"corrupt", "0-r1"},
			after: keys{"rexp": zset{"0-r2": 1764000060000}},
		},
		{name: "a partition that is not ready is left alone", seed: due, args: []any{req{"limit": 10}}, want: []any{}},
		{name: "INVALID limit", seed: ready(due), args: []any{req{"limit": 0}}, err: "INVALID limit"},
		{name: "INVALID limit missing", seed: ready(due), args: []any{req{}}, err: "INVALID limit"},
	})
}
