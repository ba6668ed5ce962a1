package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/bench"
	"github.com/shelfline/inventory/internal/testsupport"
)

// TestFlashSaleSmoke sells a small hot SKU out on every in-process target and
// requires the checker to pass and the summary, JSON and SVG to be written.
func TestFlashSaleSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	dir := t.TempDir()
	var progress bytes.Buffer
	// Every target sells out long before the duration on a quiet machine
	// (the slowest, pg-optimistic, in about 2 s); the duration only bounds
	// a loaded one, where pg-optimistic fell to 17 sales/s.
	r, err := bench.Run(ctx, bench.Config{
		Scenario:    bench.ScenarioFlashSale,
		Targets:     []string{bench.TargetEngine, bench.TargetPGGuarded, bench.TargetPGOptimistic, bench.TargetBare, bench.TargetServer},
		Workers:     20,
		Stock:       200,
		Duration:    40 * time.Second,
		PGConns:     8,
		Partitions:  4,
		RedisURL:    testsupport.RedisURL(),
		DatabaseURL: testsupport.DatabaseURL(),
		OutDir:      dir,
		Progress:    &progress,
	})
	require.NoError(t, err)
	var summary bytes.Buffer
	require.NoError(t, bench.WriteSummary(&summary, r))
	t.Log("\n" + progress.String() + "\n" + summary.String())
	require.True(t, r.Passed, "the run must pass its checks")
	require.Len(t, r.Results, 5)
	for _, res := range r.Results {
		require.Empty(t, res.Error, res.Target)
		require.Empty(t, res.Violations, res.Target)
		require.Equal(t, int64(200), res.Units, "%s sells the whole stock", res.Target)
		require.Equal(t, int64(0), res.Extra["final_on_hand"], res.Target)
		require.Positive(t, res.Throughput, res.Target)
		require.NotEmpty(t, res.Timeline, res.Target)
		names := map[string]bool{}
		for _, c := range res.Checks {
			require.True(t, c.Passed, "%s: %s: %s", res.Target, c.Name, c.Detail)
			names[c.Name] = true
		}
		require.True(t, names["never oversold"] && names["successes equal units sold"] && names["ledger"], "%s checks: %v", res.Target, names)
	}
	require.Contains(t, r.Results[0].Ratios, bench.TargetPGGuarded)
	require.Contains(t, r.Results[0].Ratios, bench.TargetBare)
	require.Contains(t, summary.String(), "every invariant held")

	b, err := os.ReadFile(r.Files["json"])
	require.NoError(t, err)
	var back bench.Report
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, r.Run, back.Run)
	require.Len(t, back.Results, 5)
	svg, err := os.ReadFile(r.Files["svg"])
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(svg), "<svg"), "an SVG document")
	require.Contains(t, string(svg), "latency (ms, log scale)")
	require.Contains(t, string(svg), "pg-guarded")
	txt, err := os.ReadFile(r.Files["txt"])
	require.NoError(t, err)
	require.Equal(t, filepath.Dir(r.Files["txt"]), dir)
	require.Contains(t, string(txt), "every invariant held")
}
