package luascripts_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/luascripts"
)

// TestFunctionFormKeepsNothingBetweenCalls: a function's library is loaded
// once and its locals live on, so every call must start from KEYS and ARGV
// alone: items read by an earlier call (CACHE), the readiness seen
// (READY), the batch flag (BATCHED) and the partition (KEYS[1]) are not
// carried over.
func TestFunctionFormKeepsNothingBetweenCalls(t *testing.T) {
	t.Parallel()
	c := testsupport.RedisClient(t, 0)
	ctx := context.Background()
	a, b := newPartition(t, c), newPartition(t, c)
	a.fcall, b.fcall = true, true
	a.seed(ready(keys{"st:s1": hash{"sofa": "10,0,1," + UA}}))
	b.seed(ready(keys{"st:s1": hash{"sofa": "50,0,7," + UA}}))
	buy := func(op string) req {
		return req{"op": "checkout", "store": "s1", "lines": []any{line("sofa", 1)}, "op_id": op, "generated": true}
	}

	got, err := a.run(scripts.Batch, 0, "b1", buy("~g1"))
	require.NoError(t, err)
	require.Equal(t, []any{[]any{"item", "s1,sofa,9,0,2,-1,-1," + T}}, got)

	// the item changed behind the scripts' back: the next call reads it again
	require.NoError(t, c.HSet(ctx, a.base+"st:s1", "sofa", "100,0,5,"+UA).Err())
	got, err = a.run(scripts.Ops["checkout"], 0, buy("~g2"))
	require.NoError(t, err)
	require.Equal(t, []any{"item", "s1,sofa,99,0,6,-1,-1," + T}, got)
	// not a batch any more: the generated id has its own record
	n, err := c.Exists(ctx, a.base+"idem:g:~g2").Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	// another partition: its own keys, its own stream
	got, err = b.run(scripts.Ops["checkout"], 0, buy("~g3"))
	require.NoError(t, err)
	require.Equal(t, []any{"item", "s1,sofa,49,0,8,-1,-1," + T}, got)
	require.EqualValues(t, 1, c.XLen(ctx, b.base+"events").Val())
	require.EqualValues(t, 2, c.XLen(ctx, a.base+"events").Val())

	// a store indexed by one call is indexed again by a call on another
	// partition
	create := func(op string) req {
		return req{"op": "set", "store": "s9", "sku": "sofa", "on_hand": 1, "op_id": op, "generated": true}
	}
	_, err = a.run(scripts.Batch, 0, "b2", create("~g5"))
	require.NoError(t, err)
	_, err = b.run(scripts.Batch, 0, "b3", create("~g6"))
	require.NoError(t, err)
	for _, p := range []*partition{a, b} {
		stores, err := c.SMembers(ctx, p.base+"stores").Result()
		require.NoError(t, err)
		require.Contains(t, stores, "s9", p.base)
	}

	// the marker went: the next call sees it gone
	require.NoError(t, c.Del(ctx, a.base+"ready").Err())
	_, err = a.run(scripts.Ops["checkout"], 0, buy("~g4"))
	require.ErrorContains(t, err, "NOT_READY")
}

// TestLibraryNames: a library's function is named after its script and a
// hash of its code, so builds with different scripts load side by side,
// and the same build always names it the same.
func TestLibraryNames(t *testing.T) {
	seen := map[string]string{}
	for _, n := range append(luascripts.WriteOps(), "batch", "expire", "restore", "restore_reservation", "read", "transfer", "unlock", "extend") {
		code, fn, err := luascripts.Library(n)
		require.NoError(t, err)
		require.Regexp(t, `^inv_`+n+`_[0-9a-f]{16}$`, fn)
		require.True(t, strings.HasPrefix(code, "#!lua name="+fn+"\n"), n)
		require.Contains(t, code, "redis.register_function{ function_name = '"+fn+"'")
		_, again, err := luascripts.Library(n)
		require.NoError(t, err)
		require.Equal(t, fn, again)
		require.NotContains(t, seen, fn)
		seen[fn] = n
	}
}

// TestOperationFilesKeepNoCallState: a library runs its operation files
// once, so a local they declare outside a function lives across calls. Only
// functions and tables that are never changed may be declared there; what a
// call changes is declared in the prelude and set by begin_call.
func TestOperationFilesKeepNoCallState(t *testing.T) {
	constant := map[string]bool{"T_FIELDS": true, "TREADS": true, "TFIX": true}
	topLocal := regexp.MustCompile(`(?m)^local\s+([A-Za-z_][A-Za-z0-9_]*)`)
	prelude, err := luascripts.Prelude()
	require.NoError(t, err)
	prelude = strings.TrimSuffix(prelude, "\nbegin_call()\n")
	for _, name := range append(luascripts.WriteOps(), "batch", "transfer") {
		code, _, err := luascripts.Library(name)
		require.NoError(t, err)
		i := strings.Index(code, prelude)
		j := strings.Index(code, "\nredis.register_function")
		require.True(t, i > 0 && j > i, name)
		defs := code[i+len(prelude) : j] // the operation files
		require.NotEmpty(t, strings.TrimSpace(defs), name)
		for _, m := range topLocal.FindAllStringSubmatch(defs, -1) {
			if m[1] == "function" || constant[m[1]] {
				continue
			}
			t.Errorf("%s: top-level local %s outlives a call of the library: declare it in the prelude and set it in begin_call", name, m[1])
		}
	}
}
