package chaos

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server process of one test, on its own loopback
// port and directory, without persistence: killing it loses everything, as
// a crash of a Redis without AOF would. Restart starts it again, empty, on
// the same port.
type redisServer struct {
	t    testing.TB
	port int
	dir  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// startRedis starts a private redis-server; it is killed when the test ends.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	r := &redisServer{t: t, dir: t.TempDir()}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		r.port, err = freePort()
		if err != nil {
			continue
		}
		if err = r.launch(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(r.Kill)
	return r
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Addr is the server's host:port.
func (r *redisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *redisServer) launch() error {
	log := filepath.Join(r.dir, "redis.log")
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir, "--logfile", log,
		"--daemonize", "no", "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction",
		"--protected-mode", "no")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// The server dies with the test binary, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(log)
			return fmt.Errorf("redis-server on %s exited: %s %s", r.Addr(), out.String(), b)
		default:
		}
		if time.Now().After(deadline) {
			r.Kill()
			return fmt.Errorf("redis-server on %s did not answer: %v", r.Addr(), err)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

// Kill SIGKILLs the server and waits for it to exit. Harmless when stopped.
func (r *redisServer) Kill() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		r.t.Errorf("redis-server on %s did not exit after SIGKILL", r.Addr())
	}
}

// Restart kills the server and starts it again, empty, on the same port.
func (r *redisServer) Restart() {
	r.t.Helper()
	r.Kill()
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = r.launch(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond) // the port may linger for a moment
	}
	r.t.Fatalf("restart redis-server: %v", err)
}
