package redistest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const childEnv = "REDISTEST_ORPHAN_CHILD"

// processGone reports whether pid has exited (a zombie counts as gone).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

// TestClusterServersDieWithTheTestBinary starts a server in a child test
// binary, kills the child with SIGKILL (no cleanup runs), and expects the
// redis-server to die with it.
func TestClusterServersDieWithTheTestBinary(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s, err := StartServer(ctx, Options{})
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		fmt.Printf("PID %d %s\n", s.c.nodes[0].cmd.Process.Pid, s.c.dir)
		<-ctx.Done() // the parent kills us long before
		os.Exit(3)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestClusterServersDieWithTheTestBinary$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	var pid int
	var dir string
	_, err = fmt.Sscanf(line, "PID %d %s", &pid, &dir)
	require.NoError(t, err, "child said %q", line)
	t.Cleanup(func() { os.RemoveAll(dir) }) // the child could not remove it
	require.False(t, processGone(pid), "redis-server %d runs", pid)
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for !processGone(pid) {
		require.False(t, time.Now().After(deadline), "redis-server %d outlived its test binary", pid)
		time.Sleep(10 * time.Millisecond)
	}
}
