package redistest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestClusterLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	c, err := StartCluster(ctx, Options{})
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	t.Logf("cluster up in %s: %v", time.Since(start).Round(time.Millisecond), c.Addrs())

	require.Len(t, c.Addrs(), 6)
	for _, a := range c.Addrs() {
		require.True(t, strings.HasPrefix(a, "127.0.0.1:"), a)
	}
	ms, err := c.Masters(ctx)
	require.NoError(t, err)
	require.Len(t, ms, 3)

	// Write one key per master, and make sure the replicas have it.
	cl := c.Client()
	keys := map[*Node]string{}
	for i := 0; len(keys) < 3 && i < 1000; i++ {
		k := fmt.Sprintf("k{%d}", i)
		slot, err := cl.ClusterKeySlot(ctx, k).Result()
		require.NoError(t, err)
		m, err := c.MasterForSlot(ctx, int(slot))
		require.NoError(t, err)
		if _, ok := keys[m]; !ok {
			keys[m] = k
		}
	}
	require.Len(t, keys, 3, "a key on every master")
	for m, k := range keys {
		require.NoError(t, cl.Set(ctx, k, m.Addr, 0).Err())
		mc := redis.NewClient(&redis.Options{Addr: m.Addr})
		n, err := mc.Do(ctx, "WAIT", 1, 5000).Int()
		mc.Close()
		require.NoError(t, err)
		require.Equal(t, 1, n, "replica of %s acknowledged", m.Addr)
	}

	// Kill the master of the first key; its replica takes over with the data.
	victimKey := keys[ms[0]]
	slot, err := cl.ClusterKeySlot(ctx, victimKey).Result()
	require.NoError(t, err)
	killed, err := c.KillMaster(ctx, int(slot))
	require.NoError(t, err)
	require.Equal(t, ms[0], killed)
	require.False(t, killed.Running())
	t0 := time.Now()
	after, err := c.WaitFailover(ctx, killed)
	require.NoError(t, err)
	t.Logf("failover took %s", time.Since(t0).Round(time.Millisecond))
	require.Len(t, after, 3)
	require.NotContains(t, after, killed)
	nm, err := c.MasterForSlot(ctx, int(slot))
	require.NoError(t, err)
	require.NotEqual(t, killed, nm)
	// go-redis (v9.23) does not reload its slot map when a master stops
	// answering, only on MOVED/ASK or every ClusterStateReloadInterval (60s
	// by default): a client of a dead master must ask for a reload.
	require.Eventually(t, func() bool {
		cl.ReloadState(ctx)
		v, err := cl.Get(ctx, victimKey).Result()
		return err == nil && v == killed.Addr
	}, 10*time.Second, 20*time.Millisecond, "the client follows the failover and the key survived")

	// The killed node comes back as a replica.
	require.NoError(t, c.Restart(ctx, killed))
	require.True(t, killed.Running())
	ms2, err := c.Masters(ctx)
	require.NoError(t, err)
	require.NotContains(t, ms2, killed)

	// Stop kills every process and removes every directory; twice is fine.
	dir := c.Dir()
	nodes := c.Nodes()
	c.Stop()
	c.Stop()
	for _, n := range nodes {
		require.False(t, n.Running(), n.Addr)
	}
	_, err = os.Stat(dir)
	require.True(t, os.IsNotExist(err), "cluster dir removed: %v", err)
	_, err = c.KillMaster(ctx, 0)
	require.ErrorIs(t, err, ErrStopped)
}

func TestClusterStartFailsClearly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := StartCluster(ctx, Options{RedisServer: "/nonexistent/redis-server"})
	require.ErrorContains(t, err, "/nonexistent/redis-server not found")

	// A redis-server that refuses its arguments: the error carries its log.
	dir := t.TempDir()
	_, err = StartCluster(ctx, Options{Dir: dir, ExtraArgs: []string{"--no-such-option", "x"}})
	require.Error(t, err)
	require.Contains(t, err.Error(), "exited at start")
	require.Contains(t, err.Error(), "no-such-option")
	entries, _ := os.ReadDir(dir)
	require.Empty(t, entries, "a failed start leaves no directory behind")
}

func TestClusterParseNodes(t *testing.T) {
	raw := `07c3 127.0.0.1:30004@40004 slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@40002,host master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@40003 master,fail - 0 1426238318243 3 connected
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 10923-16383 [93-<-292f]`
	lines, err := parseNodes(raw)
	require.NoError(t, err)
	require.Len(t, lines, 4)
	require.Equal(t, "127.0.0.1:30002", lines[1].addr)
	require.True(t, lines[2].failed())
	require.Equal(t, 5461+5461, lines[3].nslots())
	v := makeView(lines)
	require.Equal(t, 16384, v.slots)
	require.Equal(t, "127.0.0.1:30001=0-5460,10923-16383 127.0.0.1:30002=5461-10922", v.summary())
	require.True(t, v.failed["127.0.0.1:30003"])
}

func TestClusterStandaloneServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := StartServer(ctx, Options{})
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	c := s.NewClient(nil)
	defer c.Close()
	require.NoError(t, c.Set(ctx, "a", "1", 0).Err())
	info, err := c.Info(ctx, "cluster", "memory").Result()
	require.NoError(t, err)
	require.Contains(t, info, "cluster_enabled:0")
	require.Contains(t, info, "maxmemory_policy:noeviction")
	s.Stop()
	s.Stop()
	require.Error(t, c.Ping(ctx).Err())
}
