package redistest

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/redis/go-redis/v9"
)

// nodeByAddr returns the cluster's node at addr, or nil.
func (c *Cluster) nodeByAddr(addr string) *Node {
	for _, n := range c.nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// topology returns CLUSTER NODES as seen by the first running node that
// answers.
func (c *Cluster) topology(ctx context.Context) ([]nodeLine, error) {
	var lastErr error = errors.New("no node is running")
	for _, n := range c.running() {
		o := c.opts.nodeOptions(n.Addr)
		o.PoolSize = 1
		cl := redis.NewClient(o)
		raw, err := cl.ClusterNodes(ctx).Result()
		cl.Close()
		if err != nil {
			lastErr = err
			continue
		}
		return parseNodes(raw)
	}
	return nil, fmt.Errorf("redistest: read topology: %w", lastErr)
}

// Masters returns the masters that serve slots now, ordered by their first
// slot, as seen by a running node.
func (c *Cluster) Masters(ctx context.Context) ([]*Node, error) {
	lines, err := c.topology(ctx)
	if err != nil {
		return nil, err
	}
	var ms []nodeLine
	for _, l := range lines {
		if l.flags["master"] && !l.failed() && len(l.slots) > 0 {
			ms = append(ms, l)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].slots[0][0] < ms[j].slots[0][0] })
	out := make([]*Node, 0, len(ms))
	for _, l := range ms {
		n := c.nodeByAddr(l.addr)
		if n == nil {
			return nil, fmt.Errorf("redistest: master %s is not a node of this cluster", l.addr)
		}
		out = append(out, n)
	}
	return out, nil
}

// MasterForSlot returns the master serving slot (0..16383) now.
func (c *Cluster) MasterForSlot(ctx context.Context, slot int) (*Node, error) {
	lines, err := c.topology(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		if !l.flags["master"] || l.failed() {
			continue
		}
		for _, s := range l.slots {
			if slot >= s[0] && slot <= s[1] {
				if n := c.nodeByAddr(l.addr); n != nil {
					return n, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("redistest: no live master serves slot %d", slot)
}

// KillMaster kills (SIGKILL) the master serving slot and returns it. Its
// replica takes over after about NodeTimeout; WaitFailover waits for that.
func (c *Cluster) KillMaster(ctx context.Context, slot int) (*Node, error) {
	if c.isStopped() {
		return nil, ErrStopped
	}
	n, err := c.MasterForSlot(ctx, slot)
	if err != nil {
		return nil, err
	}
	n.kill()
	if n.Running() {
		return nil, fmt.Errorf("redistest: %s survived SIGKILL", n.Addr)
	}
	return n, nil
}

// WaitFailover waits until a replica has taken over the slots of the killed
// master: every running node reports a healthy cluster with Masters serving
// masters, and none of them is the killed node. It returns the new masters.
func (c *Cluster) WaitFailover(ctx context.Context, killed *Node) ([]*Node, error) {
	if killed.Running() {
		return nil, fmt.Errorf("redistest: %s is still running", killed.Addr)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		return nil, fmt.Errorf("redistest: failover of %s: %w", killed.Addr, err)
	}
	ms, err := c.Masters(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m == killed {
			return nil, fmt.Errorf("redistest: killed node %s still serves slots", killed.Addr)
		}
	}
	return ms, nil
}

// Restart starts a stopped node again on its port and directory. Its
// nodes.conf brings it back into the cluster; a former master comes back as a
// replica of the node that took over. It waits until the whole cluster is
// healthy again.
func (c *Cluster) Restart(ctx context.Context, n *Node) error {
	if c.isStopped() {
		return ErrStopped
	}
	if n.Running() {
		return fmt.Errorf("redistest: %s is running", n.Addr)
	}
	if err := c.launch(ctx, n); err != nil {
		return fmt.Errorf("redistest: restart %s: %w", n.Addr, err)
	}
	return c.WaitHealthy(ctx)
}

func (c *Cluster) isStopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}
