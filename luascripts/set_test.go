package luascripts_test

import (
	"strings"
	"testing"
	"time"
)

// sofa is an item with 10 on hand, 2 reserved, version 3.
var sofa = hash{"sofa": "10,2,3," + UA}

func TestSet(t *testing.T) {
	t.Parallel()
	set1 := func(m req) req {
		return merge(req{"op": "set", "store": "s1", "sku": "sofa", "on_hand": 12}, m)
	}
	runRows(t, scripts.Ops["set"], []row{
		{
			name: "creates an item",
			seed: ready(nil),
			args: []any{set1(req{"on_hand": 5, "reason": "count", "principal": "web"})},
			want: []any{"created", "1", "item", "s1,sofa,5,0,1,-1,-1," + T},
			after: keys{
				"st:s1":  hash{"sofa": "5,0,1," + T},
				"stores": set{"s1"},
				"events": entries{event("SET", "s1", "sofa", "1,5,0,5,0,-1,-1,"+T+",0", "rsn", "count", "pr", "web")},
			},
		},
		{
			name: "sets on_hand and limits of an item",
			seed: ready(keys{"st:s1": sofa, "stores": set{"s1"}}),
			args: []any{set1(req{"reorder_point": 4, "max_per_customer": 2, "expect_version": 3})},
			want: []any{"item", "s1,sofa,12,2,4,4,2," + T},
			after: keys{
				"st:s1":  hash{"sofa": "12,2,4," + T + ",4,2"},
				"events": entries{event("SET", "s1", "sofa", "4,2,0,12,2,4,2,"+T+",0")},
			},
		},
		{
			name: "-1 clears the limits",
			seed: ready(keys{"st:s1": hash{"sofa": "10,2,3," + UA + ",4,2"}}),
			args: []any{set1(req{"on_hand": 10, "reorder_point": -1, "max_per_customer": -1})},
			want: []any{"item", "s1,sofa,10,2,4,-1,-1," + T},
			after: keys{
				"st:s1":  hash{"sofa": "10,2,4," + T},
				"events": entries{event("SET", "s1", "sofa", "4,0,0,10,2,-1,-1,"+T+",0")},
			},
		},
		{
			name: "no change writes nothing",
			seed: ready(keys{"st:s1": hash{"sofa": "10,2,3," + UA + ",4,-1"}}),
			args: []any{set1(req{"on_hand": 10, "reorder_point": 4})},
			want: []any{"item", "s1,sofa,10,2,3,4,-1," + UA},
		},
		{
			name: "a generated op id keeps its result for the op TTL",
			seed: ready(keys{"st:s1": sofa}),
			args: []any{set1(req{"op_id": "~gop1", "generated": true})},
			want: []any{"item", "s1,sofa,12,2,4,-1,-1," + T},
			after: keys{
				"st:s1":        hash{"sofa": "12,2,4," + T},
				"events":       entries{event("SET", "s1", "sofa", "4,2,0,12,2,-1,-1,"+T+",0", "op", "~gop1")},
				"idem:g:~gop1": "\nitem\ts1,sofa,12,2,4,-1,-1," + T,
			},
			ttl: map[string]time.Duration{"idem:g:~gop1": opTTL},
		},
		{
			name: "a client key keeps its result and fingerprint for the key TTL",
			seed: ready(keys{"st:s1": sofa}),
			args: []any{set1(req{"op_id": "k1", "idem_key": "3:web:k1", "fingerprint": "fp", "principal": "web"})},
			want: []any{"item", "s1,sofa,12,2,4,-1,-1," + T},
			after: keys{
				"st:s1":         hash{"sofa": "12,2,4," + T},
				"events":        entries{event("SET", "s1", "sofa", "4,2,0,12,2,-1,-1,"+T+",0", "op", "k1", "pr", "web")},
				"idem:3:web:k1": "fp\nitem\ts1,sofa,12,2,4,-1,-1," + T,
			},
			ttl: map[string]time.Duration{"idem:3:web:k1": idemTTL},
		},
		{
			name: "a retry replays the stored result and changes nothing",
			seed: ready(keys{"st:s1": sofa, "idem:3:web:k1": "fp\ncreated\t1\titem\ts1,sofa,12,0,1,-1,-1," + UA}),
			args: []any{set1(req{"op_id": "k1", "idem_key": "3:web:k1", "fingerprint": "fp"})},
			want: []any{"replayed", "1", "created", "1", "item", "s1,sofa,12,0,1,-1,-1," + UA},
		},
		{
			name:  "a sticky request records its refusal",
			seed:  ready(keys{"st:s1": sofa}),
			args:  []any{set1(req{"expect_version": 2, "op_id": "k1§0", "idem_key": "3:web:k1§0", "fingerprint": "fp", "sticky": true})},
			err:   "VERSION_MISMATCH 3",
			after: keys{"idem:3:web:k1§0": "fp\n!VERSION_MISMATCH 3"},
			ttl:   map[string]time.Duration{"idem:3:web:k1§0": idemTTL},
		},
		{
			name: "a sticky request's retry answers its refusal again",
			seed: ready(keys{"st:s1": sofa, "idem:3:web:k1§0": "fp\n!VERSION_MISMATCH 3"}),
			args: []any{set1(req{"expect_version": 3, "op_id": "k1§0", "idem_key": "3:web:k1§0", "fingerprint": "fp", "sticky": true})},
			err:  "VERSION_MISMATCH 3",
		},
		{name: "NOT_READY", seed: keys{"st:s1": sofa}, args: []any{set1(nil)}, err: "NOT_READY"},
		{name: "INVALID operation", seed: ready(nil), args: []any{set1(req{"op": "steal"})}, err: "INVALID operation"},
		{name: "INVALID operation when missing", seed: ready(nil), args: []any{req{"store": "s1", "sku": "sofa", "on_hand": 1}}, err: "INVALID operation"},
		{name: "INVALID reason with a NUL", seed: ready(nil), args: []any{set1(req{"reason": "a\x00b"})}, err: "INVALID reason"},
		{name: "INVALID reason too long", seed: ready(nil), args: []any{set1(req{"reason": strings.Repeat("x", 1025)})}, err: "INVALID reason"},
		{name: "INVALID reason not text", seed: ready(nil), args: []any{set1(req{"reason": 5})}, err: "INVALID reason"},
		{name: "INVALID store", seed: ready(nil), args: []any{set1(req{"store": "s 1"})}, err: "INVALID store"},
		{name: "INVALID store missing", seed: ready(nil), args: []any{req{"op": "set", "sku": "sofa", "on_hand": 1}}, err: "INVALID store"},
		{name: "INVALID sku", seed: ready(nil), args: []any{set1(req{"sku": strings.Repeat("k", 65)})}, err: "INVALID sku"},
		{name: "INVALID on_hand negative", seed: ready(nil), args: []any{set1(req{"on_hand": -1})}, err: "INVALID on_hand"},
		{name: "INVALID on_hand too big", seed: ready(nil), args: []any{set1(req{"on_hand": 1000000000001})}, err: "INVALID on_hand"},
		{name: "INVALID on_hand fraction", seed: ready(nil), args: []any{set1(req{"on_hand": 1.5})}, err: "INVALID on_hand"},
		{name: "INVALID reorder_point", seed: ready(nil), args: []any{set1(req{"reorder_point": -2})}, err: "INVALID reorder_point"},
		{name: "INVALID max_per_customer", seed: ready(nil), args: []any{set1(req{"max_per_customer": 1000000001})}, err: "INVALID max_per_customer"},
		{name: "INVALID version", seed: ready(nil), args: []any{set1(req{"expect_version": -1})}, err: "INVALID version"},
		{name: "VERSION_MISMATCH", seed: ready(keys{"st:s1": sofa}), args: []any{set1(req{"expect_version": 2})}, err: "VERSION_MISMATCH 3"},
		{name: "VERSION_MISMATCH create only", seed: ready(keys{"st:s1": sofa}), args: []any{set1(req{"expect_version": 0})}, err: "VERSION_MISMATCH 3"},
		{name: "VERSION_MISMATCH absent", seed: ready(nil), args: []any{set1(req{"expect_version": 1})}, err: "VERSION_MISMATCH 0"},
		{
			name: "BELOW_RESERVED", seed: ready(keys{"st:s1": sofa}), args: []any{set1(req{"on_hand": 1})},
			err: "BELOW_RESERVED", errJSON: `[{"sku":"sofa","requested":2,"available":1}]`,
		},
		{
			name: "BACKPRESSURE", hw: 2,
			seed: ready(keys{"st:s1": sofa, "events": entries{{"x": "1"}, {"x": "2"}}}),
			args: []any{set1(nil)}, err: "BACKPRESSURE",
		},
		{
			name: "IDEMPOTENCY_MISMATCH",
			seed: ready(keys{"st:s1": sofa, "idem:3:web:k1": "other\nitem\ts1,sofa,12,2,4,-1,-1," + UA}),
			args: []any{set1(req{"op_id": "k1", "idem_key": "3:web:k1", "fingerprint": "fp"})},
			err:  "IDEMPOTENCY_MISMATCH",
		},
		{
			name: "ALREADY_APPLIED",
			seed: ready(keys{"st:s1": sofa, "idem:3:web:k1": "*\n"}),
			args: []any{set1(req{"op_id": "k1", "idem_key": "3:web:k1", "fingerprint": "fp"})},
			err:  "ALREADY_APPLIED",
		},
		{name: "CORRUPT item", seed: ready(keys{"st:s1": hash{"sofa": "10,x,3," + UA}}), args: []any{set1(nil)}, err: "CORRUPT item s1/sofa is malformed"},
		{name: "CORRUPT limits", seed: ready(keys{"st:s1": hash{"sofa": "10,2,3," + UA + ",4"}}), args: []any{set1(nil)}, err: "CORRUPT item s1/sofa is malformed"},
	})
}
