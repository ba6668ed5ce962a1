package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/persist"
)

// Child processes: the test binary re-executed with CHAOS_CHILD set runs one
// role (not the tests), so a test can SIGKILL it for real.

const envChild = "CHAOS_CHILD"

// childMain runs the role CHAOS_CHILD names and returns the exit code.
func childMain(role string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	var err error
	switch role {
	case "persister":
		err = childPersister(ctx)
	case "transfers":
		err = childTransfers(ctx)
	default:
		err = fmt.Errorf("unknown child role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// hookLine is what a child prints when it reaches its failure point: the
// events of the batch, then it blocks until killed.
type hookLine struct {
	Point  string   `json:"point"`
	Events []string `json:"events"` // "store/sku@version"
}

// childPersister runs a persister with a failure point: at its
// CHAOS_HOOK_AT-th batch, before or after COMMIT (CHAOS_HOOK), it prints a
// hookLine and waits to be killed.
func childPersister(ctx context.Context) error {
	parts, _ := strconv.Atoi(os.Getenv("CHAOS_PARTS"))
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("CHAOS_REDIS"), PoolSize: 64})
	e, err := engine.New(engine.Config{Client: rdb, Prefix: os.Getenv("CHAOS_PREFIX"), Partitions: parts})
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, os.Getenv("CHAOS_DB"))
	if err != nil {
		return err
	}
	point := os.Getenv("CHAOS_HOOK")
	at, _ := strconv.Atoi(os.Getenv("CHAOS_HOOK_AT"))
	var mu sync.Mutex
	n := 0
	hook := func(which string) func(context.Context, int, []engine.Event) error {
		return func(ctx context.Context, _ int, evs []engine.Event) error {
			if which != point {
				return nil
			}
			mu.Lock()
			n++
			hit := n == at
			mu.Unlock()
			if !hit {
				return nil
			}
			hl := hookLine{Point: which}
			for _, ev := range evs {
				hl.Events = append(hl.Events, fmt.Sprintf("%s/%s@%d", ev.Store, ev.SKU, ev.Version))
			}
			b, _ := json.Marshal(hl)
			fmt.Println("HOOK " + string(b))
			select {} // wait for SIGKILL, inside the transaction or before XACK
		}
	}
	p, err := persist.NewPersister(e, pool, fastPersister(persist.PersisterConfig{
		Consumer: os.Getenv("CHAOS_CONSUMER"), BatchSize: 40,
		BeforeCommit: hook("before"), AfterCommit: hook("after"),
	}))
	if err != nil {
		return err
	}
	fmt.Println("READY")
	return p.Run(ctx)
}

// child is a running child process.
type child struct {
	t     testing.TB
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
}

// startChild re-executes the test binary as role with env added; the child
// is killed when the test ends.
func startChild(t testing.TB, role string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envChild+"="+role), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &testWriter{t: t, prefix: role + ": "}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child %s: %v", role, err)
	}
	c := &child{t: t, cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default:
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(c.kill)
	return c
}

// expect waits for a line starting with prefix and returns the rest.
func (c *child) expect(prefix string, d time.Duration) string {
	c.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case l := <-c.lines:
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest
			}
		case <-c.done:
			c.t.Fatalf("child exited before printing %q", prefix)
		case <-timer.C:
			c.t.Fatalf("child did not print %q within %s", prefix, d)
		}
	}
}

// kill SIGKILLs the child and waits for it to exit. Harmless twice.
func (c *child) kill() {
	if c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Errorf("child did not exit after SIGKILL")
	}
}

// testWriter sends a child's stderr to the test log.
type testWriter struct {
	t      testing.TB
	prefix string
	mu     sync.Mutex
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if l != "" {
			w.t.Log(w.prefix + l)
		}
	}
	return len(p), nil
}
