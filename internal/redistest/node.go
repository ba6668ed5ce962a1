package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Node is one redis-server process of a Cluster.
type Node struct {
	// Addr is "127.0.0.1:<Port>".
	Addr string
	// Port is the client port; the cluster bus listens on Port+10000.
	Port int
	// Dir is the node's own directory: nodes.conf and redis.log.
	Dir string

	standalone bool // a plain redis-server, not a cluster node

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has exited
}

// LogPath returns the path of the node's log file.
func (n *Node) LogPath() string { return filepath.Join(n.Dir, "redis.log") }

// Running reports whether the node's process is alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	ch := n.exited
	n.mu.Unlock()
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

// logTail returns the last lines of the node's log, for error messages.
func (n *Node) logTail(lines int) string {
	b, err := os.ReadFile(n.LogPath())
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// Port range: client ports in [portLo, portHi) keep both the client port and
// the bus port (+10000) below Linux's default ephemeral range (32768+), so an
// outgoing connection never holds a port a node is about to bind.
const (
	portLo = 15000
	portHi = 22700
	busOff = 10000
)

// portFree reports whether both the client and the bus port can be bound on
// the loopback address now. A race with another process remains possible;
// start retries on "Address already in use".
func portFree(p int) bool {
	for _, q := range []int{p, p + busOff} {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(q))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

func pickPort(used map[int]bool) (int, error) {
	for i := 0; i < 200; i++ {
		p := portLo + rand.IntN(portHi-portLo)
		if used[p] || used[p+busOff] || used[p-busOff] {
			continue
		}
		if portFree(p) {
			return p, nil
		}
	}
	return 0, errors.New("redistest: no free loopback port pair found after 200 tries")
}

// spawner starts child processes from one locked OS thread that lives as
// long as the cluster. Children get Pdeathsig SIGKILL, which Linux delivers
// when the thread that forked them exits: so the redis-servers die with the
// test binary even when it panics, times out or is killed, and at the latest
// when the cluster's spawner stops.
type spawner struct {
	reqs chan func()
	once sync.Once
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan func())}
	go func() {
		runtime.LockOSThread()
		// Never unlocked: when this goroutine returns, the runtime ends the
		// thread, and Pdeathsig kills whatever it started.
		for f := range s.reqs {
			f()
		}
	}()
	return s
}

func (s *spawner) start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	errc := make(chan error, 1)
	s.reqs <- func() { errc <- cmd.Start() }
	return <-errc
}

func (s *spawner) close() { s.once.Do(func() { close(s.reqs) }) }

// serverArgs returns redis-server's command line for node n.
func serverArgs(n *Node, o Options) []string {
	var args []string
	if o.TLS == nil {
		args = []string{"--port", strconv.Itoa(n.Port)}
	} else {
		args = []string{
			"--port", "0",
			"--tls-port", strconv.Itoa(n.Port),
			"--tls-cert-file", o.TLS.CertFile,
			"--tls-key-file", o.TLS.KeyFile,
			"--tls-ca-cert-file", o.TLS.CAFile,
			"--tls-auth-clients", "no",
		}
		if !n.standalone {
			// The bus listens on the TLS port + 10000.
			args = append(args, "--tls-cluster", "yes", "--tls-replication", "yes")
		}
	}
	if o.Password != "" {
		args = append(args, "--requirepass", o.Password, "--masterauth", o.Password)
	}
	for _, u := range o.Users {
		// Each word its own argument: redis-server quotes each one.
		args = append(args, "--user")
		args = append(args, strings.Fields(u)...)
	}
	args = append(args,
		"--bind", "127.0.0.1",
		"--dir", n.Dir,
		"--logfile", n.LogPath(),
		"--daemonize", "no",
	)
	if !n.standalone {
		args = append(args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.FormatInt(o.NodeTimeout.Milliseconds(), 10),
			// A replica always tries to take over a failed master, however
			// long its link was down: tests want a failover, not a judgment
			// call.
			"--cluster-replica-validity-factor", "0",
		)
	}
	args = append(args,
		"--save", "",
		"--appendonly", "no",
		"--maxmemory-policy", "noeviction",
		// Replicas sync at once instead of waiting for more replicas.
		"--repl-diskless-sync-delay", "0",
	)
	return append(args, o.ExtraArgs...)
}

// launch starts node n's process (its port and dir set) and waits until it
// answers PING. It returns errAddrInUse when the port was taken meanwhile.
func (c *Cluster) launch(ctx context.Context, n *Node) error {
	cmd := exec.Command(c.opts.RedisServer, serverArgs(n, c.opts)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := c.spawn.start(cmd); err != nil {
		return fmt.Errorf("redistest: start %s: %w", c.opts.RedisServer, err)
	}
	exited := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()

	cl := redis.NewClient(c.opts.nodeOptions(n.Addr))
	defer cl.Close()
	deadline := time.Now().Add(c.opts.NodeStartTimeout)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := cl.Ping(pctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			log := n.logTail(30)
			if strings.Contains(log, "Address already in use") || strings.Contains(out.String(), "Address already in use") {
				return errAddrInUse
			}
			return fmt.Errorf("redistest: redis-server on %s exited at start: %s\n--- output ---\n%s\n--- log %s ---\n%s",
				n.Addr, cmd.ProcessState, out.String(), n.LogPath(), log)
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			n.kill()
			return fmt.Errorf("redistest: redis-server on %s did not answer PING within %s (last error %v)\n--- log %s ---\n%s",
				n.Addr, c.opts.NodeStartTimeout, err, n.LogPath(), n.logTail(30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var errAddrInUse = errors.New("address already in use")

// startNode creates node i's directory, picks a free port pair and starts
// it, retrying on a port collision.
func (c *Cluster) startNode(ctx context.Context, i int, used map[int]bool, standalone bool) (*Node, error) {
	dir := filepath.Join(c.dir, fmt.Sprintf("node%d", i))
	var lastErr error
	for attempt := 0; attempt < 10; attempt++ {
		p, err := pickPort(used)
		if err != nil {
			return nil, err
		}
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("redistest: clear %s: %w", dir, err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("redistest: %w", err)
		}
		n := &Node{Addr: "127.0.0.1:" + strconv.Itoa(p), Port: p, Dir: dir, standalone: standalone}
		err = c.launch(ctx, n)
		if err == nil {
			used[p] = true
			return n, nil
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("redistest: node %d: ports kept colliding: %w", i, lastErr)
}

// kill sends SIGKILL to the node's process and waits (bounded) for it to
// exit. Killing a stopped node is harmless.
func (n *Node) kill() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
	}
}
