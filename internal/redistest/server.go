package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/redis/go-redis/v9"
)

// Server is a standalone redis-server of a test's own, on a free loopback
// port, with the same settings as a cluster node (no persistence,
// noeviction). Stop it when done; stopping twice is harmless.
type Server struct {
	c *Cluster
}

// StartServer starts a standalone redis-server and returns once it answers
// PING. Of opts only RedisServer, Dir, NodeStartTimeout, ExtraArgs,
// Password, Users and TLS apply.
func StartServer(ctx context.Context, opts Options) (*Server, error) {
	opts = opts.withDefaults()
	if err := opts.prepare(); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath(opts.RedisServer); err != nil {
		return nil, fmt.Errorf("redistest: %s not found (install Debian's redis-server): %w", opts.RedisServer, err)
	}
	dir, err := os.MkdirTemp(opts.Dir, "redistest-server-")
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	c := &Cluster{opts: opts, dir: dir, spawn: newSpawner()}
	n, err := c.startNode(ctx, 0, map[int]bool{}, true)
	if err != nil {
		c.Stop()
		return nil, err
	}
	c.nodes = []*Node{n}
	c.addrs = []string{n.Addr}
	return &Server{c: c}, nil
}

// Addr returns the server's "127.0.0.1:port".
func (s *Server) Addr() string { return s.c.addrs[0] }

// NewClient returns a new client of the server; the caller closes it. opt
// may be nil; its Addr is replaced by the server's. Unless opt sets them,
// the client sends Options.Password and trusts Options.TLS.CAFile.
func (s *Server) NewClient(opt *redis.Options) *redis.Client {
	var o redis.Options
	if opt != nil {
		o = *opt
	}
	o.Addr = s.Addr()
	if o.Password == "" && o.Username == "" {
		o.Password = s.c.opts.Password
	}
	if o.TLSConfig == nil {
		o.TLSConfig = s.c.opts.tlsConfig()
	}
	return redis.NewClient(&o)
}

// Stop kills the server and removes its directory.
func (s *Server) Stop() { s.c.Stop() }
