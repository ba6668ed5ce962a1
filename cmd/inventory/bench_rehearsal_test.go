package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/bench"
	"github.com/shelfline/inventory/internal/testsupport"
)

// TestRehearsalThresholdDecidesExitStatus: the same short rehearsal of a
// stub that answers in 20 ms exits 1 under a p99 below 1 ms and 0 under
// one below 10 s.
func TestRehearsalThresholdDecidesExitStatus(t *testing.T) {
	stub := testsupport.NewStub(t)
	stub.Delay = 20 * time.Millisecond
	ctx := context.Background()
	out := t.TempDir()
	code, stdout, stderr := runCmd(t, ctx, nil, "bench", "--url", stub.URL, "--token", "t", "--stages", "1s:40",
		"--thresholds", "checkout.p99<1ms,errors<0.1%", "--out", out)
	require.Equal(t, 1, code, stdout+stderr)
	require.Contains(t, stdout, "FAILED checkout.p99<1ms")
	require.Contains(t, stdout, "held   errors<0.1%")
	code, stdout, stderr = runCmd(t, ctx, nil, "bench", "--url", stub.URL, "--token", "t", "--stages", "1s:40",
		"--thresholds", "checkout.p99<10s", "--out", out)
	require.Equal(t, 0, code, stdout+stderr)
	require.Contains(t, stdout, "passed: every invariant and every threshold held")

	// compare: the run against itself has no regression; against a run
	// whose latency doubled, it has.
	files, err := filepath.Glob(filepath.Join(out, "*.json"))
	require.NoError(t, err)
	require.Len(t, files, 2)
	code, stdout, _ = runCmd(t, ctx, nil, "bench", "compare", files[0], files[0])
	require.Equal(t, 0, code, stdout)
	require.Contains(t, stdout, "no regression")
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	var r bench.Rehearsal
	require.NoError(t, json.Unmarshal(b, &r))
	r.Ops["checkout"].Latency.P50 *= 3
	worse := filepath.Join(t.TempDir(), "worse.json")
	b, err = json.Marshal(r)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(worse, b, 0o644))
	code, stdout, _ = runCmd(t, ctx, nil, "bench", "compare", files[0], worse)
	require.Equal(t, 1, code, stdout)
	require.Regexp(t, `checkout\s+p50 ms.*REGRESSION`, stdout)
}

// TestRehearsalWithThreeWorkerProcesses: three `inventory bench --worker`
// processes take their shares of one schedule from a coordinator; the
// report holds every iteration exactly once.
func TestRehearsalWithThreeWorkerProcesses(t *testing.T) {
	stub := testsupport.NewStub(t)
	stub.Delay = 2 * time.Millisecond
	listening := regexp.MustCompile(`worker listening on (http://\S+)`)
	var urls []string
	for i := 0; i < 3; i++ {
		p := startProcess(t, nil, "bench", "--worker", "--listen", "127.0.0.1:0")
		p.waitFor(30*time.Second, "listening", func() bool { return listening.MatchString(p.out.String()) })
		urls = append(urls, listening.FindStringSubmatch(p.out.String())[1])
	}
	out := t.TempDir()
	code, stdout, stderr := runCmd(t, context.Background(), nil, "bench", "--url", stub.URL, "--token", "t",
		"--stages", "1s:150,1s:150", "--worker-urls", strings.Join(urls, ","), "--thresholds", "errors==0,oversold==0", "--out", out)
	require.Equal(t, 0, code, stdout+stderr)
	require.Contains(t, stdout, "3 load process(es)")
	// 0→150 over 1 s is 75 iterations, then 150.
	require.EqualValues(t, 225, stub.Checkouts.Load())
	files, err := filepath.Glob(filepath.Join(out, "*.json"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	r, err := bench.LoadRehearsal(files[0])
	require.NoError(t, err)
	require.EqualValues(t, 225, r.Iterations)
	require.EqualValues(t, 225, r.Histograms["checkout"].TotalCount(), "the merged histogram holds every request")
	require.True(t, r.Passed)
}

// TestHTTPTargetAloneRehearses: --targets http alone runs the scenario as a
// rehearsal: open loop at --rate for --duration, or with no rate a closed
// loop of --workers.
func TestHTTPTargetAloneRehearses(t *testing.T) {
	stub := testsupport.NewStub(t)
	ctx := context.Background()
	code, stdout, stderr := runCmd(t, ctx, nil, "bench", "--targets", "http", "--url", stub.URL, "--token", "t",
		"--rate", "60", "--duration", "1s", "--stock", "1000", "--out", t.TempDir())
	require.Equal(t, 0, code, stdout+stderr)
	require.Contains(t, stdout, "open loop")
	require.EqualValues(t, 60, stub.Checkouts.Load(), "1 s at 60/s")
	code, stdout, stderr = runCmd(t, ctx, nil, "bench", "--targets", "http", "--url", stub.URL, "--token", "t",
		"--workers", "4", "--duration", "500ms", "--stock", "1000000", "--out", t.TempDir())
	require.Equal(t, 0, code, stdout+stderr)
	require.Contains(t, stdout, "closed loop: 4 workers")
}
