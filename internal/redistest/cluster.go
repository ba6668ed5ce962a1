// Package redistest starts throw-away Redis Clusters of local redis-server
// processes for tests: loopback only, free ports, one temporary directory per
// node, no persistence, torn down by Stop.
//
// A test binary usually shares one cluster between its tests (Shared, torn
// down by StopShared from TestMain) and starts a private one (StartCluster)
// only for a test that breaks it, such as a failover test.
package redistest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options configures StartCluster. The zero value selects every default.
type Options struct {
	// Masters is the number of masters. Defaults to 3 (the least Redis
	// Cluster accepts).
	Masters int
	// ReplicasPerMaster is the number of replicas of each master. Defaults to
	// 1. Negative means none.
	ReplicasPerMaster int
	// NodeTimeout is cluster-node-timeout: how long a master may be
	// unreachable before its replica takes over. Defaults to 1s.
	NodeTimeout time.Duration
	// StartTimeout bounds the whole start, from the first process to a
	// healthy cluster. Defaults to 60s.
	StartTimeout time.Duration
	// NodeStartTimeout bounds the wait for one redis-server to answer PING.
	// Defaults to 10s.
	NodeStartTimeout time.Duration
	// RedisServer and RedisCLI are the binaries. Default to "redis-server" and
	// "redis-cli" on PATH.
	RedisServer, RedisCLI string
	// Dir is where the cluster's temporary directory is made. Defaults to
	// os.TempDir().
	Dir string
	// ExtraArgs are appended to every redis-server command line.
	ExtraArgs []string
	// Password is every node's requirepass (the default user's password)
	// and its masterauth, so replicas authenticate to their masters. Every
	// client redistest makes, NewClient's included, sends it. Defaults to
	// none.
	Password string
	// Users are ACL users every node has from its start, each a rule line
	// as ACL SETUSER takes it, name first: "alice on >secret ~* &* +@all".
	// Defaults to none (the default user only).
	Users []string
	// TLS, when set, makes the nodes serve TLS only (--port 0 and
	// --tls-port on the node's port) with these files; a cluster's bus and
	// replication go over TLS too. Clients need no certificate of their
	// own. Every client redistest makes trusts TLS.CAFile. NewTLSFiles
	// makes the files. Defaults to none: plain TCP.
	TLS *TLSFiles

	// clientTLS is the TLS configuration of redistest's clients, loaded
	// from TLS.CAFile at start.
	clientTLS *tls.Config
}

// prepare loads what the clients of the nodes need.
func (o *Options) prepare() error {
	if o.TLS == nil {
		return nil
	}
	cfg, err := o.TLS.ClientConfig()
	if err != nil {
		return err
	}
	o.clientTLS = cfg
	return nil
}

// nodeOptions returns the options of a client of one node at addr, with the
// password and TLS configuration of the nodes.
func (o Options) nodeOptions(addr string) *redis.Options {
	return &redis.Options{Addr: addr, Password: o.Password, TLSConfig: o.tlsConfig(), DialTimeout: time.Second, MaxRetries: -1}
}

// tlsConfig returns a copy of the clients' TLS configuration, or nil.
func (o Options) tlsConfig() *tls.Config {
	if o.clientTLS == nil {
		return nil
	}
	return o.clientTLS.Clone()
}

// cliArgs returns redis-cli's arguments to reach the nodes over TLS; the
// password goes in its environment (cliEnv), off the command line.
func (o Options) cliArgs() []string {
	if o.TLS == nil {
		return nil
	}
	return []string{"--tls", "--cacert", o.TLS.CAFile}
}

// cliEnv returns redis-cli's environment.
func (o Options) cliEnv() []string {
	env := os.Environ()
	if o.Password != "" {
		env = append(env, "REDISCLI_AUTH="+o.Password)
	}
	return env
}

func (o Options) withDefaults() Options {
	if o.Masters == 0 {
		o.Masters = 3
	}
	if o.ReplicasPerMaster == 0 {
		o.ReplicasPerMaster = 1
	}
	if o.ReplicasPerMaster < 0 {
		o.ReplicasPerMaster = 0
	}
	if o.NodeTimeout == 0 {
		o.NodeTimeout = time.Second
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.NodeStartTimeout == 0 {
		o.NodeStartTimeout = 10 * time.Second
	}
	if o.RedisServer == "" {
		o.RedisServer = "redis-server"
	}
	if o.RedisCLI == "" {
		o.RedisCLI = "redis-cli"
	}
	return o
}

func (o Options) validate() error {
	switch {
	case o.Masters < 3:
		return fmt.Errorf("redistest: Options.Masters must be at least 3, got %d", o.Masters)
	case o.NodeTimeout < 100*time.Millisecond:
		return fmt.Errorf("redistest: Options.NodeTimeout must be at least 100ms, got %s", o.NodeTimeout)
	}
	return nil
}

// Cluster is a running local Redis Cluster. Its methods are safe for
// concurrent use. Stop it when done; stopping twice is harmless.
type Cluster struct {
	opts  Options
	dir   string
	spawn *spawner
	nodes []*Node
	addrs []string // seed addresses for clients

	mu      sync.Mutex
	client  *redis.ClusterClient
	stopped bool
}

// StartCluster starts Masters+Masters*ReplicasPerMaster redis-server processes
// on free loopback ports, joins them with `redis-cli --cluster create`, and
// returns once every node reports cluster_state:ok with all 16384 slots
// served, every replica is in sync, and a client reaches every master. On
// error nothing is left running and the error carries the nodes' logs.
func StartCluster(ctx context.Context, opts Options) (*Cluster, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if err := opts.prepare(); err != nil {
		return nil, err
	}
	for _, bin := range []string{opts.RedisServer, opts.RedisCLI} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("redistest: %s not found (install Debian's redis-server and redis-tools): %w", bin, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	dir, err := os.MkdirTemp(opts.Dir, "redistest-cluster-")
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	c := &Cluster{opts: opts, dir: dir, spawn: newSpawner()}
	if err := c.start(ctx); err != nil {
		logs := c.logs(40)
		c.Stop()
		return nil, fmt.Errorf("%w\n%s", err, logs)
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	total := c.opts.Masters * (1 + c.opts.ReplicasPerMaster)
	used := map[int]bool{}
	for i := 0; i < total; i++ {
		n, err := c.startNode(ctx, i, used, false)
		if err != nil {
			return err
		}
		c.nodes = append(c.nodes, n)
		c.addrs = append(c.addrs, n.Addr)
	}
	args := append(c.opts.cliArgs(), "--cluster", "create")
	args = append(args, c.addrs...)
	args = append(args, "--cluster-replicas", fmt.Sprint(c.opts.ReplicasPerMaster), "--cluster-yes")
	cli := exec.CommandContext(ctx, c.opts.RedisCLI, args...)
	cli.Env = c.opts.cliEnv()
	out, err := cli.CombinedOutput()
	if err != nil {
		return fmt.Errorf("redistest: %s %s: %v\n%s", c.opts.RedisCLI, strings.Join(args, " "), err, out)
	}
	if err := c.waitHealthy(ctx, c.nodes); err != nil {
		return fmt.Errorf("%w\n--- redis-cli --cluster create ---\n%s", err, out)
	}
	// Connect and make sure the client's view holds every master.
	cl := c.NewClient(nil)
	for {
		cl.ReloadState(ctx)
		masters := 0
		err := cl.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return m.Ping(ctx).Err()
		})
		if err == nil {
			if n, ok := countMasters(ctx, cl); ok {
				masters = n
			}
		}
		if err == nil && masters == c.opts.Masters {
			break
		}
		if ctx.Err() != nil {
			cl.Close()
			return fmt.Errorf("redistest: client sees %d of %d masters (last error %v): %w", masters, c.opts.Masters, err, ctx.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.mu.Lock()
	c.client = cl
	c.mu.Unlock()
	return nil
}

func countMasters(ctx context.Context, cl *redis.ClusterClient) (int, bool) {
	//lint:ignore SA1019 CLUSTER SLOTS answers on every Redis this runs (7.0 and later) and gives the slot ranges counted here directly
	slots, err := cl.ClusterSlots(ctx).Result()
	if err != nil {
		return 0, false
	}
	seen := map[string]bool{}
	for _, s := range slots {
		if len(s.Nodes) > 0 {
			seen[s.Nodes[0].Addr] = true
		}
	}
	return len(seen), true
}

// Addrs returns the addresses of every node, masters and replicas, as given
// to a client's seed list (INVENTORY_REDIS_CLUSTER_ADDRS).
func (c *Cluster) Addrs() []string { return append([]string(nil), c.addrs...) }

// Nodes returns every node, in start order.
func (c *Cluster) Nodes() []*Node { return append([]*Node(nil), c.nodes...) }

// Dir returns the cluster's temporary directory (removed by Stop).
func (c *Cluster) Dir() string { return c.dir }

// Client returns the cluster's own client, closed by Stop. Tests that want
// their own pool, or to close their client, use NewClient.
func (c *Cluster) Client() *redis.ClusterClient {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client
}

// NewClient returns a new client of the cluster; the caller closes it. opt
// may be nil; its Addrs are replaced by the cluster's. Unless opt sets them,
// the client sends Options.Password and trusts Options.TLS.CAFile.
func (c *Cluster) NewClient(opt *redis.ClusterOptions) *redis.ClusterClient {
	var o redis.ClusterOptions
	if opt != nil {
		o = *opt
	}
	o.Addrs = c.Addrs()
	if o.DialTimeout == 0 {
		o.DialTimeout = 2 * time.Second
	}
	if o.Password == "" && o.Username == "" {
		o.Password = c.opts.Password
	}
	if o.TLSConfig == nil {
		o.TLSConfig = c.opts.tlsConfig()
	}
	return redis.NewClusterClient(&o)
}

// Stop kills every node, closes the cluster's client and removes the
// cluster's directory. It is safe to call twice, and on a cluster whose
// start failed.
func (c *Cluster) Stop() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.stopped = true
	cl := c.client
	c.mu.Unlock()
	if cl != nil {
		cl.Close()
	}
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func(n *Node) {
			defer wg.Done()
			n.kill()
		}(n)
	}
	wg.Wait()
	if c.spawn != nil {
		c.spawn.close()
	}
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// Logs returns the last lines of every node's log, for failure messages.
func (c *Cluster) Logs(lines int) string { return c.logs(lines) }

// logs returns the tail of every node's log.
func (c *Cluster) logs(lines int) string {
	var b strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "--- node %s (%s) ---\n%s\n", n.Addr, n.LogPath(), n.logTail(lines))
	}
	return b.String()
}

// ErrStopped is returned by helpers called on a stopped cluster.
var ErrStopped = errors.New("redistest: cluster stopped")
