package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
)

// `inventory groups` lists the streams' consumer groups; `groups forget
// NAME` removes one from every partition, refuses the persister's group and
// an unknown name, and changes nothing then.
func TestGroupsForget(t *testing.T) {
	env := testEnv(t)
	ctx := t.Context()
	e, err := engine.New(engine.Config{Client: testsupport.RedisClient(t, 0), Prefix: env["INVENTORY_REDIS_PREFIX"], Partitions: 4})
	require.NoError(t, err)
	require.NoError(t, e.Init(ctx))
	for p := range 4 {
		require.NoError(t, e.CreateGroup(ctx, p, "persister"))
		require.NoError(t, e.CreateGroup(ctx, p, "relay"))
	}
	_, err = e.Set(ctx, engine.SetRequest{Store: "s1", SKU: "lamp", OnHand: 3}, engine.Op{})
	require.NoError(t, err)
	groupsOn := func(p int) []string {
		gs, err := e.StreamGroups(ctx, p)
		require.NoError(t, err)
		var names []string
		for _, g := range gs {
			names = append(names, g.Name)
		}
		return names
	}

	code, out, errOut := runCmd(t, ctx, env, "groups")
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, `(?m)^relay\s+4\s+1\s+\d+s$`, out)
	require.Regexp(t, `(?m)^persister\s+4\s+1\s`, out)

	code, _, errOut = runCmd(t, ctx, env, "groups", "forget", "persister")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "cannot be forgotten")
	code, _, errOut = runCmd(t, ctx, env, "groups", "forget", "relya")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `no consumer group "relya"`)
	code, _, _ = runCmd(t, ctx, env, "groups", "forget")
	require.Equal(t, 2, code)
	code, _, _ = runCmd(t, ctx, env, "groups", "drop", "relay")
	require.Equal(t, 2, code)
	for p := range 4 {
		require.Equal(t, []string{"persister", "relay"}, groupsOn(p), "a refused command changes nothing")
	}

	code, out, errOut = runCmd(t, ctx, env, "groups", "forget", "relay")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "forgot group relay on 4 partitions (1 entries it had not acknowledged)")
	for p := range 4 {
		require.Equal(t, []string{"persister"}, groupsOn(p))
	}
	code, _, _ = runCmd(t, ctx, env, "groups", "forget", "relay")
	require.Equal(t, 1, code, "a second forget finds nothing")
}
