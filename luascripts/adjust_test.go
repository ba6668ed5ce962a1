package luascripts_test

import (
	"testing"
	"time"
)

func TestAdjust(t *testing.T) {
	t.Parallel()
	adj := func(m req) req {
		return merge(req{"op": "adjust", "store": "s1", "sku": "sofa", "delta": 5}, m)
	}
	runRows(t, scripts.Ops["adjust"], []row{
		{
			name: "adds to on_hand",
			seed: ready(keys{"st:s1": sofa}),
			args: []any{adj(req{"expect_version": 3, "reason": "delivery", "principal": "web"})},
			want: []any{"item", "s1,sofa,15,2,4,-1,-1," + T},
			after: keys{
				"st:s1":  hash{"sofa": "15,2,4," + T},
				"events": entries{event("ADJUST", "s1", "sofa", "4,5,0,15,2,-1,-1,"+T+",0", "rsn", "delivery", "pr", "web")},
			},
		},
		{
			name: "takes from on_hand down to what is reserved, keeping the limits",
			seed: ready(keys{"st:s1": hash{"sofa": "10,2,3," + UA + ",-1,4"}}),
			args: []any{adj(req{"delta": -8})},
			want: []any{"item", "s1,sofa,2,2,4,-1,4," + T},
			after: keys{
				"st:s1":  hash{"sofa": "2,2,4," + T + ",-1,4"},
				"events": entries{event("ADJUST", "s1", "sofa", "4,-8,0,2,2,-1,4,"+T+",0")},
			},
		},
		{
			name: "a client key keeps its result",
			seed: ready(keys{"st:s1": sofa}),
			args: []any{adj(req{"op_id": "k1", "idem_key": "3:web:k1", "fingerprint": "fp"})},
			want: []any{"item", "s1,sofa,15,2,4,-1,-1," + T},
			after: keys{
				"st:s1":         hash{"sofa": "15,2,4," + T},
				"events":        entries{event("ADJUST", "s1", "sofa", "4,5,0,15,2,-1,-1,"+T+",0", "op", "k1")},
				"idem:3:web:k1": "fp\nitem\ts1,sofa,15,2,4,-1,-1," + T,
			},
			ttl: map[string]time.Duration{"idem:3:web:k1": idemTTL},
		},
		{
			name: "a generated op id's retry replays",
			seed: ready(keys{"st:s1": sofa, "idem:g:~g1": "\nitem\ts1,sofa,10,2,3,-1,-1," + UA}),
			args: []any{adj(req{"op_id": "~g1", "generated": true})},
			want: []any{"replayed", "1", "item", "s1,sofa,10,2,3,-1,-1," + UA},
		},
		{name: "NOT_READY", seed: keys{"st:s1": sofa}, args: []any{adj(nil)}, err: "NOT_READY"},
		{name: "INVALID store", seed: ready(nil), args: []any{adj(req{"store": ""})}, err: "INVALID store"},
		{name: "INVALID sku", seed: ready(nil), args: []any{adj(req{"sku": "-sofa"})}, err: "INVALID sku"},
		{name: "INVALID delta zero", seed: ready(keys{"st:s1": sofa}), args: []any{adj(req{"delta": 0})}, err: "INVALID delta"},
		{name: "INVALID delta missing", seed: ready(keys{"st:s1": sofa}), args: []any{req{"op": "adjust", "store": "s1", "sku": "sofa"}}, err: "INVALID delta"},
		{name: "INVALID delta fraction", seed: ready(keys{"st:s1": sofa}), args: []any{adj(req{"delta": 0.5})}, err: "INVALID delta"},
		{name: "INVALID delta too big", seed: ready(keys{"st:s1": sofa}), args: []any{adj(req{"delta": 1000000000001})}, err: "INVALID delta"},
		{
			name: "INVALID delta past the most on hand",
			seed: ready(keys{"st:s1": hash{"sofa": "999999999999,0,3," + UA}}),
			args: []any{adj(req{"delta": 2})}, err: "INVALID delta: on_hand would pass 1000000000000",
		},
		{name: "INVALID version", seed: ready(keys{"st:s1": sofa}), args: []any{adj(req{"expect_version": 0})}, err: "INVALID version"},
		{name: "NOT_FOUND", seed: ready(keys{"st:s1": sofa}), args: []any{adj(req{"sku": "lamp"})}, err: "NOT_FOUND lamp"},
		{name: "VERSION_MISMATCH", seed: ready(keys{"st:s1": sofa}), args: []any{adj(req{"expect_version": 4})}, err: "VERSION_MISMATCH 3"},
		{
			name: "INSUFFICIENT below what is reserved", seed: ready(keys{"st:s1": sofa}), args: []any{adj(req{"delta": -9})},
			err: "INSUFFICIENT", errJSON: `[{"sku":"sofa","requested":9,"available":8}]`,
		},
		{
			name: "BACKPRESSURE", hw: 1,
			seed: ready(keys{"st:s1": sofa, "events": entries{{"x": "1"}}}),
			args: []any{adj(nil)}, err: "BACKPRESSURE",
		},
		{
			name: "IDEMPOTENCY_MISMATCH",
			seed: ready(keys{"st:s1": sofa, "idem:3:web:k1": "other\nitem\tx"}),
			args: []any{adj(req{"op_id": "k1", "idem_key": "3:web:k1", "fingerprint": "fp"})},
			err:  "IDEMPOTENCY_MISMATCH",
		},
		{
			name: "ALREADY_APPLIED",
			seed: ready(keys{"st:s1": sofa, "idem:3:web:k1": "*\n"}),
			args: []any{adj(req{"op_id": "k1", "idem_key": "3:web:k1", "fingerprint": "fp"})},
			err:  "ALREADY_APPLIED",
		},
		{name: "CORRUPT", seed: ready(keys{"st:s1": hash{"sofa": "ten"}}), args: []any{adj(nil)}, err: "CORRUPT item s1/sofa is malformed"},
	})
}
