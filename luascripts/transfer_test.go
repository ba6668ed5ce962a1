package luascripts_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/shelfline/inventory/luascripts"
)

var transferScript = func() *redis.Script {
	s, err := luascripts.Source("transfer")
	if err != nil {
		panic(err)
	}
	return redis.NewScript(s)
}()

// The transfer tests run source and destination in one partition: a step
// touches one side only, so where the other side lives does not matter to
// the script.

// wh is a warehouse with 10 sofas (2 reserved) and 3 lamps.
var wh = hash{"sofa": "10,2,5," + UA, "lamp": "3,0,1," + UA}

// T0 is the first transfer's id; its record and marker as the steps write
// them.
const T0 = "0-00000000000000000000000000000001"

// tev is a transfer step's event: n as emit packs it with every state and
// its delta, tid, and tr when given.
func tev(typ, store, sku, n, tr string, more ...string) hash {
	e := event(typ, store, sku, n, append([]string{"tid", T0}, more...)...)
	if tr != "" {
		e["tr"] = tr
	}
	return e
}

func TestTransferShip(t *testing.T) {
	t.Parallel()
	ship := func(m req) req {
		return merge(req{"op": "transfer_ship", "id": T0, "from": "wh", "to": "s2", "lines": []any{line("sofa", 3), line("lamp", 1)},
			"expected_at": 1764100000000, "reference": "PO-7", "grace_ms": 2000, "op_id": "k1", "principal": "web"}, m)
	}
	rec := `["` + T0 + `","wh","s2","shipped",[["sofa",3,0,0,0],["lamp",1,0,0,0]],1764100000000,"PO-7",` + T + `,` + T + `]`
	runRows(t, transferScript, []row{
		{
			name: "takes every line off on_hand, writes the marker and queues the expect step",
			seed: ready(keys{"st:wh": wh}),
			args: []any{ship(nil)},
			want: []any{"transfer", rec},
			after: keys{
				"st:wh": hash{"sofa": "7,2,6," + T, "lamp": "2,0,2," + T},
				"to:" + T0: hash{"fr": "wh", "to": "s2", "s": "shipped", "l": `[["sofa",3,0,0,0],["lamp",1,0,0,0]]`,
					"ea": "1764100000000", "ref": "PO-7", "ca": T, "ua": T},
				"ts:wh": zset{T0: float64(now)},
				"tpend": zset{"expect:" + T0: float64(now + 2000)},
				"events": entries{
					tev("TRANSFER_OUT", "wh", "sofa", "6,-3,0,7,2,-1,-1,"+T+",0,0,0,0,0,0,-1,0,0,0,0,0", rec, "op", "k1", "pr", "web"),
					tev("TRANSFER_OUT", "wh", "lamp", "2,-1,0,2,0,-1,-1,"+T+",0,0,0,0,0,0,-1,0,0,0,0,0", "", "op", "k1", "pr", "web"),
				},
			},
		},
		{name: "NOT_READY", seed: keys{"st:wh": wh}, args: []any{ship(nil)}, err: "NOT_READY"},
		{name: "INVALID to its own source", seed: ready(keys{"st:wh": wh}), args: []any{ship(req{"to": "wh"})}, err: "INVALID to"},
		{name: "INVALID from", seed: ready(keys{"st:wh": wh}), args: []any{ship(req{"from": nil})}, err: "INVALID from"},
		{name: "INVALID id", seed: ready(keys{"st:wh": wh}), args: []any{ship(req{"id": "x"})}, err: "INVALID id"},
		{name: "INVALID qty", seed: ready(keys{"st:wh": wh}), args: []any{ship(req{"lines": []any{line("sofa", 0)}})}, err: "INVALID lines.qty"},
		{name: "INVALID duplicate", seed: ready(keys{"st:wh": wh}), args: []any{ship(req{"lines": []any{line("sofa", 1), line("sofa", 1)}})}, err: "INVALID lines.duplicate sofa"},
		{name: "INVALID reference", seed: ready(keys{"st:wh": wh}), args: []any{ship(req{"reference": "a\nb"})}, err: "INVALID reference"},
		{
			name: "INSUFFICIENT: reserved units are not available, an unknown SKU has none",
			seed: ready(keys{"st:wh": wh}), args: []any{ship(req{"lines": []any{line("sofa", 9), line("bed", 1), line("lamp", 3)}})},
			err: "INSUFFICIENT", errJSON: `[{"sku":"sofa","requested":9,"available":8},{"sku":"bed","requested":1,"available":0}]`,
		},
		{
			name: "CONFLICT when the id is taken", seed: ready(keys{"st:wh": wh, "to:" + T0: hash{"to": "s2", "s": "returned"}}),
			args: []any{ship(nil)}, err: "CONFLICT transfer id exists",
		},
		{
			name: "a retry with the same key replays", seed: ready(keys{"st:wh": wh, "idem:3:web:k1": "fp\ntransfer\t[1]"}),
			args: []any{ship(req{"idem_key": "3:web:k1", "fingerprint": "fp"})}, want: []any{"replayed", "1", "transfer", "[1]"},
		},
	})
}

func TestTransferExpect(t *testing.T) {
	t.Parallel()
	expect := func(m req) req {
		return merge(req{"op": "transfer_expect", "id": T0, "from": "wh", "to": "s2", "lines": []any{line("sofa", 3), line("lamp", 1)},
			"expected_at": 1764100000000, "reference": "PO-7", "created_at": 1763999999000, "op_id": T0 + ":expect", "principal": "web"}, m)
	}
	rec := `["` + T0 + `","wh","s2","in_transit",[["sofa",3,0,0,0],["lamp",1,0,0,0]],1764100000000,"PO-7",1763999999000,` + T + `]`
	stored := hash{"fr": "wh", "to": "s2", "s": "in_transit", "l": `[["sofa",3,0,0,0],["lamp",1,0,0,0]]`,
		"ea": "1764100000000", "ref": "PO-7", "ca": "1763999999000", "ua": T}
	runRows(t, transferScript, []row{
		{
			name: "adds incoming, creating an absent item with on_hand 0, and writes the record",
			seed: ready(keys{"st:s2": hash{"sofa": "1,0,4," + UA}}),
			args: []any{expect(nil)},
			want: []any{"transfer", rec},
			after: keys{
				"st:s2":   hash{"sofa": "1,0,5," + T + ",-1,-1,0,0,0,0,3,-1", "lamp": "0,0,1," + T + ",-1,-1,0,0,0,0,1,-1"},
				"stores":  set{"s2"},
				"t:" + T0: stored,
				"tx":      zset{T0: 1763999999000},
				"ts:s2":   zset{T0: 1763999999000},
				"tin:s2":  set{T0},
				"events": entries{
					tev("TRANSFER_EXPECTED", "s2", "sofa", "5,0,0,1,0,-1,-1,"+T+",0,0,0,0,0,3,-1,0,0,0,0,3", rec, "op", T0+":expect", "pr", "web"),
					tev("TRANSFER_EXPECTED", "s2", "lamp", "1,0,0,0,0,-1,-1,"+T+",0,0,0,0,0,1,-1,0,0,0,0,1", "", "op", T0+":expect", "pr", "web"),
				},
			},
		},
		{
			name: "done already: answers the record and changes nothing",
			seed: ready(keys{"t:" + T0: stored}),
			args: []any{expect(nil)},
			want: []any{"transfer", rec},
		},
		{
			name: "a supplier's delivery (no from) under a client key",
			seed: ready(nil),
			args: []any{expect(req{"from": nil, "lines": []any{line("lamp", 4)}, "expected_at": nil, "reference": nil, "created_at": nil,
				"op_id": "k9", "idem_key": "3:web:k9", "fingerprint": "fp"})},
			want: []any{"transfer", `["` + T0 + `","","s2","in_transit",[["lamp",4,0,0,0]],0,"",` + T + `,` + T + `]`},
			after: keys{
				"st:s2":         hash{"lamp": "0,0,1," + T + ",-1,-1,0,0,0,0,4,-1"},
				"stores":        set{"s2"},
				"t:" + T0:       hash{"fr": "", "to": "s2", "s": "in_transit", "l": `[["lamp",4,0,0,0]]`, "ea": "0", "ref": "", "ca": T, "ua": T},
				"tx":            zset{T0: float64(now)},
				"ts:s2":         zset{T0: float64(now)},
				"tin:s2":        set{T0},
				"idem:3:web:k9": "fp\ntransfer\t" + `["` + T0 + `","","s2","in_transit",[["lamp",4,0,0,0]],0,"",` + T + `,` + T + `]`,
				"events": entries{
					tev("TRANSFER_EXPECTED", "s2", "lamp", "1,0,0,0,0,-1,-1,"+T+",0,0,0,0,0,4,-1,0,0,0,0,4",
						`["`+T0+`","","s2","in_transit",[["lamp",4,0,0,0]],0,"",`+T+`,`+T+`]`, "op", "k9", "pr", "web"),
				},
			},
		},
		{name: "NOT_READY", seed: nil, args: []any{expect(nil)}, err: "NOT_READY"},
		{name: "INVALID to", seed: ready(nil), args: []any{expect(req{"to": "a b"})}, err: "INVALID to"},
	})
}

// inTransit is T0's record at s2 with sofa 3 and lamp 1 open, and s2's items
// expecting them.
func inTransit(l string) keys {
	return ready(keys{
		"st:s2": hash{"sofa": "1,0,5," + UA + ",-1,-1,0,0,0,0,3,-1", "lamp": "0,0,1," + UA + ",-1,-1,0,0,0,0,1,-1"},
		"t:" + T0: hash{"fr": "wh", "to": "s2", "s": "in_transit", "l": l,
			"ea": "1764100000000", "ref": "", "ca": UA, "ua": UA},
		"tin:s2": set{T0},
	})
}

const open2 = `[["sofa",3,0,0,0],["lamp",1,0,0,0]]`

func TestTransferReceive(t *testing.T) {
	t.Parallel()
	receive := func(lines ...any) req {
		return req{"op": "transfer_receive", "id": T0, "lines": lines, "op_id": "r1", "principal": "s2"}
	}
	runRows(t, transferScript, []row{
		{
			name: "a partial receipt: received, damaged and missing units",
			seed: inTransit(open2),
			args: []any{receive([]any{"sofa", 1, 1, 0}, []any{"lamp", 0, 0, 1})},
			want: []any{"transfer", `["` + T0 + `","wh","s2","in_transit",[["sofa",3,1,1,0],["lamp",1,0,0,1]],1764100000000,"",` + UA + `,` + T + `]`},
			after: keys{
				"st:s2": hash{"sofa": "3,0,6," + T + ",-1,-1,0,1,0,0,1,-1", "lamp": "0,0,2," + T},
				"t:" + T0: hash{"fr": "wh", "to": "s2", "s": "in_transit", "l": `[["sofa",3,1,1,0],["lamp",1,0,0,1]]`,
					"ea": "1764100000000", "ref": "", "ca": UA, "ua": T},
				"events": entries{
					tev("TRANSFER_IN", "s2", "sofa", "6,2,0,3,0,-1,-1,"+T+",0,0,1,0,0,1,-1,0,1,0,0,-2",
						`["`+T0+`","wh","s2","in_transit",[["sofa",3,1,1,0],["lamp",1,0,0,1]],1764100000000,"",`+UA+`,`+T+`]`, "op", "r1", "pr", "s2"),
					tev("TRANSFER_LOSS", "s2", "lamp", "2,0,0,0,0,-1,-1,"+T+",0,0,0,0,0,0,-1,0,0,0,0,-1", "", "op", "r1", "pr", "s2"),
				},
			},
		},
		{
			name: "the last units: received",
			seed: inTransit(`[["sofa",3,2,0,0],["lamp",1,0,0,1]]`),
			args: []any{receive([]any{"sofa", 1, 0, 0})},
			want: []any{"transfer", `["` + T0 + `","wh","s2","received",[["sofa",3,3,0,0],["lamp",1,0,0,1]],1764100000000,"",` + UA + `,` + T + `]`},
			after: keys{
				"st:s2": hash{"sofa": "2,0,6," + T + ",-1,-1,0,0,0,0,2,-1", "lamp": "0,0,1," + UA + ",-1,-1,0,0,0,0,1,-1"},
				"t:" + T0: hash{"fr": "wh", "to": "s2", "s": "received", "l": `[["sofa",3,3,0,0],["lamp",1,0,0,1]]`,
					"ea": "1764100000000", "ref": "", "ca": UA, "ua": T},
				"tin:s2": gone{},
				"events": entries{
					tev("TRANSFER_IN", "s2", "sofa", "6,1,0,2,0,-1,-1,"+T+",0,0,0,0,0,2,-1,0,0,0,0,-1",
						`["`+T0+`","wh","s2","received",[["sofa",3,3,0,0],["lamp",1,0,0,1]],1764100000000,"",`+UA+`,`+T+`]`, "op", "r1", "pr", "s2"),
				},
			},
		},
		{
			name: "OVER_RECEIPT", seed: inTransit(`[["sofa",3,2,0,0],["lamp",1,0,0,0]]`),
			args: []any{receive([]any{"sofa", 1, 1, 0})},
			err:  "OVER_RECEIPT", errJSON: `[{"sku":"sofa","requested":2,"open":1}]`,
		},
		{name: "NOT_FOUND", seed: ready(nil), args: []any{receive([]any{"sofa", 1, 0, 0})}, err: "NOT_FOUND transfer " + T0},
		{name: "TRANSFER_STATE received", seed: ready(keys{"t:" + T0: hash{"to": "s2", "s": "received", "l": open2}}), args: []any{receive([]any{"sofa", 1, 0, 0})}, err: "TRANSFER_STATE received"},
		{name: "TRANSFER_STATE cancelled", seed: ready(keys{"t:" + T0: hash{"to": "s2", "s": "cancelled", "l": open2}}), args: []any{receive([]any{"sofa", 1, 0, 0})}, err: "TRANSFER_STATE cancelled"},
		{name: "INVALID a SKU not in the transfer", seed: inTransit(open2), args: []any{receive([]any{"bed", 1, 0, 0})}, err: "INVALID lines.sku: bed"},
		{name: "INVALID a line of no unit", seed: inTransit(open2), args: []any{receive([]any{"sofa", 0, 0, 0})}, err: "INVALID lines"},
		{name: "INVALID a SKU twice", seed: inTransit(open2), args: []any{receive([]any{"sofa", 1, 0, 0}, []any{"sofa", 1, 0, 0})}, err: "INVALID lines.duplicate sofa"},
		{name: "INVALID negative", seed: inTransit(open2), args: []any{receive([]any{"sofa", 2, -1, 0})}, err: "INVALID lines.received"},
		{name: "NOT_READY", seed: keys{}, args: []any{receive([]any{"sofa", 1, 0, 0})}, err: "NOT_READY"},
	})
}

func TestTransferCancelAndReturn(t *testing.T) {
	t.Parallel()
	cancelled := `["` + T0 + `","wh","s2","cancelled",` + open2 + `,1764100000000,"",` + UA + `,` + T + `]`
	marker := hash{"fr": "wh", "to": "s2", "s": "shipped", "l": open2, "ea": "1764100000000", "ref": "", "ca": UA, "ua": UA}
	runRows(t, transferScript, []row{
		{
			name: "cancel: incoming drops, the record is cancelled, the return step queued",
			seed: inTransit(open2),
			args: []any{req{"op": "transfer_cancel", "id": T0, "grace_ms": 2000, "op_id": "c1", "principal": "wh"}},
			want: []any{"transfer", cancelled},
			after: keys{
				"st:s2":   hash{"sofa": "1,0,6," + T, "lamp": "0,0,2," + T},
				"t:" + T0: hash{"fr": "wh", "to": "s2", "s": "cancelled", "l": open2, "ea": "1764100000000", "ref": "", "ca": UA, "ua": T},
				"tin:s2":  gone{},
				"tpend":   zset{"return:" + T0: float64(now + 2000)},
				"events": entries{
					tev("TRANSFER_CANCEL", "s2", "sofa", "6,0,0,1,0,-1,-1,"+T+",0,0,0,0,0,0,-1,0,0,0,0,-3", cancelled, "op", "c1", "pr", "wh"),
					tev("TRANSFER_CANCEL", "s2", "lamp", "2,0,0,0,0,-1,-1,"+T+",0,0,0,0,0,0,-1,0,0,0,0,-1", "", "op", "c1", "pr", "wh"),
				},
			},
		},
		{
			name: "TRANSFER_STATE after a receipt", seed: inTransit(`[["sofa",3,0,0,1],["lamp",1,0,0,0]]`),
			args: []any{req{"op": "transfer_cancel", "id": T0}}, err: "TRANSFER_STATE partly_received",
		},
		{
			name: "TRANSFER_STATE cancelled", seed: ready(keys{"t:" + T0: hash{"to": "s2", "s": "cancelled", "l": open2}}),
			args: []any{req{"op": "transfer_cancel", "id": T0}}, err: "TRANSFER_STATE cancelled",
		},
		{
			name: "return: the units go back to the source",
			seed: ready(keys{"st:wh": hash{"sofa": "7,2,6," + UA}, "to:" + T0: marker}),
			args: []any{req{"op": "transfer_return", "id": T0, "op_id": T0 + ":return", "principal": "wh"}},
			want: []any{"transfer", `["` + T0 + `","wh","s2","returned",` + open2 + `,1764100000000,"",` + UA + `,` + T + `]`},
			after: keys{
				"st:wh":    hash{"sofa": "10,2,7," + T, "lamp": "1,0,1," + T},
				"stores":   set{"wh"},
				"to:" + T0: hash{"fr": "wh", "to": "s2", "s": "returned", "l": open2, "ea": "1764100000000", "ref": "", "ca": UA, "ua": T},
				"events": entries{
					tev("TRANSFER_CANCEL", "wh", "sofa", "7,3,0,10,2,-1,-1,"+T+",0,0,0,0,0,0,-1,0,0,0,0,0",
						`["`+T0+`","wh","s2","returned",`+open2+`,1764100000000,"",`+UA+`,`+T+`]`, "op", T0+":return", "pr", "wh"),
					tev("TRANSFER_CANCEL", "wh", "lamp", "1,1,0,1,0,-1,-1,"+T+",0,0,0,0,0,0,-1,0,0,0,0,0", "", "op", T0+":return", "pr", "wh"),
				},
			},
		},
		{
			name: "return again: no change",
			seed: ready(keys{"to:" + T0: merge2(marker, hash{"s": "returned"})}),
			args: []any{req{"op": "transfer_return", "id": T0}},
			want: []any{"transfer", `["` + T0 + `","wh","s2","returned",` + open2 + `,1764100000000,"",` + UA + `,` + UA + `]`},
		},
		{name: "return of an unknown transfer", seed: ready(nil), args: []any{req{"op": "transfer_return", "id": T0}}, err: "NOT_FOUND"},
	})
}

func TestTransferReads(t *testing.T) {
	t.Parallel()
	rec := hash{"fr": "", "to": "s2", "s": "in_transit", "l": `[["lamp",4,0,0,0]]`, "ea": "0", "ref": "", "ca": "5", "ua": "5"}
	j := func(id string) string {
		return `["` + id + `","","s2","in_transit",[["lamp",4,0,0,0]],0,"",5,5]`
	}
	seed := ready(keys{"t:0-a": rec, "t:0-b": rec, "tin:s2": set{"0-a", "0-b"}, "ts:s2": zset{"0-a": 5, "0-b": 5, "3-c": 6}, "tx": zset{"0-a": 5, "0-b": 5}})
	runRows(t, transferScript, []row{
		{name: "get", seed: seed, args: []any{req{"op": "transfer_get", "id": "0-a"}}, want: []any{"transfer", j("0-a")}},
		{name: "get unknown", seed: seed, args: []any{req{"op": "transfer_get", "id": "0-x"}}, err: "NOT_FOUND transfer 0-x"},
		{name: "get NOT_READY", seed: keys{"t:0-a": rec}, args: []any{req{"op": "transfer_get", "id": "0-a"}}, err: "NOT_READY"},
		{name: "open", seed: seed, args: []any{req{"op": "transfer_open", "store": "s2"}}, want: []any{"transfer", j("0-a"), "transfer", j("0-b")}},
		{
			name: "list a store's page: records here whole, others by id", seed: seed,
			args: []any{req{"op": "transfer_list", "store": "s2", "limit": 2}},
			want: []any{"transfer", j("0-a"), "transfer", j("0-b"), "next", "5:0-b"},
		},
		{
			name: "list after a cursor", seed: seed,
			args: []any{req{"op": "transfer_list", "store": "s2", "limit": 2, "after": "5:0-a"}},
			want: []any{"transfer", j("0-b"), "id", "3-c", "next", ""},
		},
		{
			name: "list the partition", seed: seed,
			args: []any{req{"op": "transfer_list", "limit": 5}},
			want: []any{"transfer", j("0-a"), "transfer", j("0-b"), "next", ""},
		},
		{name: "list INVALID cursor", seed: seed, args: []any{req{"op": "transfer_list", "limit": 5, "after": "x"}}, err: "INVALID cursor"},
	})
}

// merge2 returns a copy of h with the fields of m.
func merge2(h, m hash) hash {
	out := hash{}
	for k, v := range h {
		out[k] = v
	}
	for k, v := range m {
		out[k] = v
	}
	return out
}
