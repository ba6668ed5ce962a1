package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testsupport.RemoveBinary()
	os.Exit(code)
}

func buildBinary(t *testing.T) string {
	t.Helper()
	return testsupport.BuildBinary(t)
}

// runBinary runs the built binary to its end and returns what it wrote.
func runBinary(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// exec runs the built binary with env (over the test's own environment)
// to its end and returns its exit code and output.
func execBinary(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, buildBinary(t), args...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	require.NoError(t, err)
	return 0, string(out)
}

// process is a running inventory process, killed when the test ends.
type process struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProcess starts the built binary with env (over the test's own
// environment) and args.
func startProcess(t *testing.T, env map[string]string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(buildBinary(t), args...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &process{t: t, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("inventory %s wrote:\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// waitFor polls cond until it holds, failing the test after d (or when
// the process exits first).
func (p *process) waitFor(d time.Duration, what string, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		select {
		case <-p.done:
			p.t.Fatalf("inventory exited (%v) before %s:\n%s", p.err, what, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("not %s within %s:\n%s", what, d, p.out.String())
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// stop sends SIGTERM and returns the exit error once the process exits.
func (p *process) signal() { require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGTERM)) }

func (p *process) wait(d time.Duration) error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		p.t.Fatalf("inventory did not exit within %s:\n%s", d, p.out.String())
		return nil
	}
}

// fetch GETs url and returns the status and body; status 0 when nothing
// answers.
func fetch(url string, token ...string) (int, string) {
	rq, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	if len(token) > 0 {
		rq.Header.Set("Authorization", "Bearer "+token[0])
	}
	res, err := http.DefaultClient.Do(rq)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}
