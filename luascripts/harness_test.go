package luascripts_test

import (
	"context"
	"encoding/json"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/luascripts"
)

// The scripts' tests run each composed script on the real Redis, EVALSHA
// (EVAL on NOSCRIPT) with the calling convention of prelude.lua: seed the
// raw keys of one partition, run the script once, then check the reply and
// every key of the partition after. A refusal must write nothing: its row
// checks that every key, the stream included, is as it was.

// The calling convention's ARGV[1..5] of every run.
const (
	now       = int64(1764000000000)
	idemTTL   = 24 * time.Hour
	opTTL     = 30 * time.Second
	retention = 24 * time.Hour
)

// T is now as the scripts write it; UA an item's earlier updated_at.
const (
	T  = "1764000000000"
	UA = "1763000000000"
)

// testScripts holds every composed script, named as the engine names them.
type testScripts struct {
	Ops                                                      map[string]*redis.Script
	Batch, Expire, Restore, RestoreReservation, Read, Unlock *redis.Script
	Extend                                                   *redis.Script
}

var scripts = func() *testScripts {
	src := func(name string) *redis.Script {
		s, err := luascripts.Source(name)
		if err != nil {
			panic(err)
		}
		return redis.NewScript(s)
	}
	s := &testScripts{Ops: map[string]*redis.Script{}}
	for _, op := range luascripts.WriteOps() {
		s.Ops[op] = src(op)
	}
	s.Batch, s.Expire, s.Restore = src("batch"), src("expire"), src("restore")
	s.RestoreReservation, s.Read, s.Unlock = src("restore_reservation"), src("read"), src("unlock")
	s.Extend = src("extend")
	return s
}()

// The content of a raw key, as seeded and as read back.
type (
	hash    map[string]string
	set     []string
	zset    map[string]float64
	entries []hash // a stream's entries, their fields in order of the stream
)

// gone marks, in a row's after, a key the script deletes.
type gone struct{}

// matching stands, in a row's want or after, for a string that matches the
// regular expression (a Lua error message names a line of the script).
type matching string

// withJSON stands, in a row's want or after, for a string made of prefix
// and a JSON document equal to doc (cjson orders an object's members as it
// pleases).
type withJSON struct{ prefix, doc string }

func (w withJSON) matches(s string) bool {
	rest, ok := strings.CutPrefix(s, w.prefix)
	if !ok {
		return false
	}
	var a, b any
	return json.Unmarshal([]byte(rest), &a) == nil && json.Unmarshal([]byte(w.doc), &b) == nil && reflect.DeepEqual(a, b)
}

// resolve returns want with each matching value that got matches replaced
// by got's, so that require.Equal reports only real differences.
func resolve(want, got any) any {
	switch w := want.(type) {
	case matching:
		if s, ok := got.(string); ok && regexp.MustCompile(string(w)).MatchString(s) {
			return s
		}
	case withJSON:
		if s, ok := got.(string); ok && w.matches(s) {
			return s
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return w
		}
		out := make([]any, len(w))
		for i := range w {
			out[i] = resolve(w[i], g[i])
		}
		return out
	case keys:
		g, ok := got.(keys)
		if !ok {
			return w
		}
		out := keys{}
		for k, v := range w {
			out[k] = resolve(v, g[k])
		}
		return out
	}
	return want
}

// keys holds raw keys by their name without the partition's base
// "<prefix>:{0}:": "st:s1", "events", "idem:g:op1".
type keys map[string]any

// row is one case of a script: what Redis holds, what the script gets, and
// what it must answer and leave.
type row struct {
	name string
	seed keys
	// args are ARGV[6…]; a map or slice is sent as its JSON.
	args []any
	// hw is the stream high watermark (ARGV[4]); 0 disables backpressure.
	hw int64
	// want is the reply; check, when set, checks it instead.
	want  any
	check func(t *testing.T, got any)
	// err is set for an error reply: the reply holds it ("CODE detail");
	// errJSON is a detail given as JSON (compared as JSON).
	err, errJSON string
	// after holds the keys the script writes (gone: deletes); every other
	// key must be as seeded. A refusal (err) has none, but for a sticky
	// request's record.
	after keys
	// ttl holds keys that must expire within the given time.
	ttl map[string]time.Duration
}

// req is a request, sent as JSON.
type req = map[string]any

// merge returns base with the members of m; a nil member is left out.
func merge(base, m req) req {
	out := req{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range m {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// line is a request's or a reservation's line, [sku, qty].
func line(sku string, qty int64) []any { return []any{sku, qty} }

// partition is one test's partition 0 of its own prefix.
type partition struct {
	t    *testing.T
	c    *redis.Client
	base string
	// fcall runs the scripts in their function form (luascripts.Library)
	// instead of EVALSHA.
	fcall bool
}

// libraries maps the hash of each composed script (Source) to its function
// form: the library's code and its function's name.
var libraries = func() map[string][2]string {
	out := map[string][2]string{}
	for _, n := range append(luascripts.WriteOps(), "batch", "expire", "restore", "restore_reservation", "read", "transfer", "unlock", "extend") {
		src, err := luascripts.Source(n)
		if err != nil {
			panic(err)
		}
		code, fn, err := luascripts.Library(n)
		if err != nil {
			panic(err)
		}
		out[redis.NewScript(src).Hash()] = [2]string{code, fn}
	}
	return out
}()

// fcall runs sc's function form, loading its library first.
func fcall(c *redis.Client, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
	ctx := context.Background()
	lib, ok := libraries[sc.Hash()]
	if !ok {
		panic("no library for script " + sc.Hash())
	}
	if err := c.FunctionLoad(ctx, lib[0]).Err(); err != nil && !strings.Contains(err.Error(), "already exists") {
		panic(err)
	}
	return c.FCall(ctx, lib[1], keys, args...)
}

func newPartition(t *testing.T, c *redis.Client) *partition {
	return &partition{t: t, c: c, base: testsupport.IsolatedPrefix(t, c) + ":{0}:"}
}

func (p *partition) seed(ks keys) {
	ctx := context.Background()
	for k, v := range ks {
		key := p.base + k
		var err error
		switch v := v.(type) {
		case string:
			err = p.c.Set(ctx, key, v, 0).Err()
		case hash:
			err = p.c.HSet(ctx, key, map[string]string(v)).Err()
		case set:
			for _, m := range v {
				if err = p.c.SAdd(ctx, key, m).Err(); err != nil {
					break
				}
			}
		case zset:
			for m, s := range v {
				if err = p.c.ZAdd(ctx, key, redis.Z{Score: s, Member: m}).Err(); err != nil {
					break
				}
			}
		case entries:
			for _, e := range v {
				fields := make([]string, 0, 2*len(e))
				for f, x := range e {
					fields = append(fields, f, x)
				}
				if err = p.c.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: fields}).Err(); err != nil {
					break
				}
			}
		default:
			p.t.Fatalf("seed %s: unsupported %T", k, v)
		}
		require.NoError(p.t, err, "seed %s", k)
	}
}

// snapshot reads every key of the partition.
func (p *partition) snapshot() keys {
	ctx := context.Background()
	out := keys{}
	iter := p.c.Scan(ctx, 0, p.base+"*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		typ, err := p.c.Type(ctx, key).Result()
		require.NoError(p.t, err)
		var v any
		switch typ {
		case "string":
			v, err = p.c.Get(ctx, key).Result()
		case "hash":
			var m map[string]string
			m, err = p.c.HGetAll(ctx, key).Result()
			v = hash(m)
		case "set":
			var m []string
			m, err = p.c.SMembers(ctx, key).Result()
			sort.Strings(m)
			v = set(m)
		case "zset":
			var zs []redis.Z
			zs, err = p.c.ZRangeWithScores(ctx, key, 0, -1).Result()
			m := zset{}
			for _, z := range zs {
				m[z.Member.(string)] = z.Score
			}
			v = m
		case "stream":
			var msgs []redis.XMessage
			msgs, err = p.c.XRange(ctx, key, "-", "+").Result()
			es := entries{}
			for _, m := range msgs {
				e := hash{}
				for f, x := range m.Values {
					e[f] = x.(string)
				}
				es = append(es, e)
			}
			v = es
		default:
			p.t.Fatalf("key %s: unexpected type %s", key, typ)
		}
		require.NoError(p.t, err)
		out[strings.TrimPrefix(key, p.base)] = v
	}
	require.NoError(p.t, iter.Err())
	return out
}

// normal gives a seeded value the shape snapshot reads back.
func normal(v any) any {
	if s, ok := v.(set); ok {
		c := append(set{}, s...)
		sort.Strings(c)
		return c
	}
	return v
}

// run runs sc on the partition with the calling convention's ARGV[1..5].
func (p *partition) run(sc *redis.Script, hw int64, args ...any) (any, error) {
	argv := []any{now, idemTTL.Milliseconds(), opTTL.Milliseconds(), hw, retention.Milliseconds()}
	for _, a := range args {
		switch a := a.(type) {
		case string, int, int64:
			argv = append(argv, a)
		default:
			b, err := json.Marshal(a)
			require.NoError(p.t, err)
			argv = append(argv, string(b))
		}
	}
	if p.fcall {
		return fcall(p.c, sc, []string{p.base + "events"}, argv...).Result()
	}
	return sc.Run(context.Background(), p.c, []string{p.base + "events"}, argv...).Result()
}

// runRows runs each row on a partition of its own, once with EVALSHA and
// once with FCALL of the script's library: both forms must answer and write
// the same.
func runRows(t *testing.T, sc *redis.Script, rows []row) {
	t.Helper()
	c := testsupport.RedisClient(t, 0)
	for _, form := range []string{"evalsha", "fcall"} {
		for _, r := range rows {
			t.Run(form+"/"+r.name, func(t *testing.T) {
				p := newPartition(t, c)
				p.fcall = form == "fcall"
				p.seed(r.seed)
				before := p.snapshot()
				got, err := p.run(sc, r.hw, r.args...)
				if r.err != "" {
					require.Error(t, err)
					require.Contains(t, err.Error(), r.err)
					if r.errJSON != "" {
						_, detail, _ := strings.Cut(err.Error()[strings.Index(err.Error(), r.err):], " ")
						require.JSONEq(t, r.errJSON, detail)
					}
				} else {
					require.NoError(t, err)
					if r.check != nil {
						r.check(t, got)
					} else {
						require.Equal(t, resolve(r.want, got), got)
					}
				}
				want := keys{}
				for k, v := range before {
					want[k] = v
				}
				for k, v := range r.after {
					if _, del := v.(gone); del {
						delete(want, k)
						continue
					}
					want[k] = normal(v)
				}
				snap := p.snapshot()
				require.Equal(t, resolve(want, snap), snap, "keys after")
				for k, max := range r.ttl {
					d, err := p.c.PTTL(context.Background(), p.base+k).Result()
					require.NoError(t, err)
					require.Greater(t, d, time.Duration(0), "%s has a TTL", k)
					require.LessOrEqual(t, d, max, "%s expires within %s", k, max)
				}
			})
		}
	}
}

// ready is the seed of a partition that is ready.
func ready(ks keys) keys {
	out := keys{"ready": "1"}
	for k, v := range ks {
		out[k] = v
	}
	return out
}

// event is a stream entry as the write scripts append it: n packs version,
// delta on_hand, delta reserved, on_hand, reserved, reorder_point,
// max_per_customer, time and expires_at; more are the texts (rid, c, op,
// rsn, pr), a MOVE's mv and a transfer step's tid and tr. emit packs them
// all in field e, tab-separated; a transfer step, or a text that holds a
// tab, keeps one field per text.
func event(typ, store, sku, n string, more ...string) hash {
	e := hash{"s": store, "k": sku, "t": typ, "n": n, "rid": "", "c": "", "op": "", "rsn": "", "pr": ""}
	for i := 0; i+1 < len(more); i += 2 {
		e[more[i]] = more[i+1]
	}
	_, transfer := e["tid"]
	if transfer || strings.Contains(e["rid"]+e["c"]+e["op"]+e["rsn"]+e["pr"], "\t") {
		return e
	}
	packed := strings.Join([]string{store, sku, typ, n, e["rid"], e["c"], e["op"], e["rsn"], e["pr"]}, "\t")
	if mv, ok := e["mv"]; ok {
		packed += "\t" + mv
	}
	return hash{"e": packed}
}

// itoa formats an integer.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
