package redistest

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// nodeLine is one line of CLUSTER NODES.
type nodeLine struct {
	id, addr, master string
	flags            map[string]bool
	slots            [][2]int
}

func (l nodeLine) failed() bool { return l.flags["fail"] || l.flags["fail?"] }

func (l nodeLine) nslots() int {
	n := 0
	for _, s := range l.slots {
		n += s[1] - s[0] + 1
	}
	return n
}

// parseNodes parses CLUSTER NODES output.
func parseNodes(s string) ([]nodeLine, error) {
	var out []nodeLine
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("redistest: malformed CLUSTER NODES line %q", line)
		}
		addr := f[1]
		if i := strings.IndexAny(addr, "@,"); i >= 0 {
			addr = addr[:i]
		}
		l := nodeLine{id: f[0], addr: addr, master: f[3], flags: map[string]bool{}}
		for _, fl := range strings.Split(f[2], ",") {
			l.flags[fl] = true
		}
		for _, sl := range f[8:] {
			if strings.HasPrefix(sl, "[") { // a slot being migrated
				continue
			}
			lo, hi, rng := strings.Cut(sl, "-")
			a, err := strconv.Atoi(lo)
			if err != nil {
				return nil, fmt.Errorf("redistest: malformed slot %q", sl)
			}
			b := a
			if rng {
				if b, err = strconv.Atoi(hi); err != nil {
					return nil, fmt.Errorf("redistest: malformed slot %q", sl)
				}
			}
			l.slots = append(l.slots, [2]int{a, b})
		}
		out = append(out, l)
	}
	return out, nil
}

// view is one node's picture of the cluster, reduced to what must agree.
type view struct {
	masters map[string]string // addr of each serving master -> its slot ranges
	failed  map[string]bool   // addrs flagged fail or fail?
	slots   int               // slots served by non-failed masters
}

func (v view) summary() string {
	var s []string
	for a, sl := range v.masters {
		s = append(s, a+"="+sl)
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

func makeView(lines []nodeLine) view {
	v := view{masters: map[string]string{}, failed: map[string]bool{}}
	for _, l := range lines {
		if l.failed() {
			v.failed[l.addr] = true
			continue
		}
		if l.flags["master"] && len(l.slots) > 0 {
			var r []string
			for _, s := range l.slots {
				r = append(r, fmt.Sprintf("%d-%d", s[0], s[1]))
			}
			v.masters[l.addr] = strings.Join(r, ",")
			v.slots += l.nslots()
		}
	}
	return v
}

func infoField(info, key string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+":"); ok {
			return v
		}
	}
	return ""
}

// checkHealthy returns nil when every node in live reports cluster_state:ok
// with every slot served, all of them agree on which master serves which
// slots, none of them is flagged failing by any other, no node outside live
// serves slots, there are exactly Masters serving masters, and every live
// replica's link to its master is up.
func (c *Cluster) checkHealthy(ctx context.Context, live []*Node, clients map[string]*redis.Client) error {
	var first string
	for _, n := range live {
		cl := clients[n.Addr]
		info, err := cl.ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER INFO: %w", n.Addr, err)
		}
		if st := infoField(info, "cluster_state"); st != "ok" {
			return fmt.Errorf("%s: cluster_state:%s", n.Addr, st)
		}
		if ok := infoField(info, "cluster_slots_ok"); ok != "16384" {
			return fmt.Errorf("%s: cluster_slots_ok:%s", n.Addr, ok)
		}
		raw, err := cl.ClusterNodes(ctx).Result()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER NODES: %w", n.Addr, err)
		}
		lines, err := parseNodes(raw)
		if err != nil {
			return err
		}
		v := makeView(lines)
		if v.slots != 16384 || len(v.masters) != c.opts.Masters {
			return fmt.Errorf("%s: sees %d masters serving %d slots", n.Addr, len(v.masters), v.slots)
		}
		isLive := map[string]bool{}
		for _, m := range live {
			isLive[m.Addr] = true
			if v.failed[m.Addr] {
				return fmt.Errorf("%s: flags live node %s as failing", n.Addr, m.Addr)
			}
		}
		for a := range v.masters {
			if !isLive[a] {
				return fmt.Errorf("%s: still sees stopped node %s serving slots", n.Addr, a)
			}
		}
		known := map[string]bool{}
		for _, l := range lines {
			known[l.addr] = true
			if l.flags["handshake"] || l.flags["noaddr"] {
				return fmt.Errorf("%s: node %s still in %v", n.Addr, l.addr, l.flags)
			}
		}
		for _, m := range live {
			if !known[m.Addr] {
				return fmt.Errorf("%s: does not know node %s yet", n.Addr, m.Addr)
			}
		}
		if s := v.summary(); first == "" {
			first = s
		} else if s != first {
			return fmt.Errorf("nodes disagree on the slot map: %q vs %q", first, s)
		}
		for _, l := range lines {
			if l.flags["myself"] && l.flags["slave"] {
				rep, err := cl.Info(ctx, "replication").Result()
				if err != nil {
					return fmt.Errorf("%s: INFO replication: %w", n.Addr, err)
				}
				if st := infoField(rep, "master_link_status"); st != "up" {
					return fmt.Errorf("%s: replica link %s", n.Addr, st)
				}
			}
		}
	}
	return nil
}

// waitHealthy polls checkHealthy until it passes or ctx ends.
func (c *Cluster) waitHealthy(ctx context.Context, live []*Node) error {
	clients := map[string]*redis.Client{}
	for _, n := range live {
		o := c.opts.nodeOptions(n.Addr)
		o.ReadTimeout, o.PoolSize = 2*time.Second, 1
		clients[n.Addr] = redis.NewClient(o)
	}
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	var err error
	for {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err = c.checkHealthy(cctx, live, clients)
		cancel()
		if err == nil {
			return nil
		}
		for _, n := range live {
			if !n.Running() {
				return fmt.Errorf("redistest: node %s exited while waiting for the cluster: %v", n.Addr, err)
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("redistest: cluster not healthy: %v: %w", err, ctx.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitHealthy waits until every running node reports a healthy cluster (see
// StartCluster) with Masters serving masters. Dead nodes are left out.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	if err := c.waitHealthy(ctx, c.running()); err != nil {
		return fmt.Errorf("%w\n%s", err, c.logs(20))
	}
	return nil
}

func (c *Cluster) running() []*Node {
	var out []*Node
	for _, n := range c.nodes {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}
