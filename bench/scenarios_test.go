package bench_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/bench"
	"github.com/shelfline/inventory/internal/testsupport"
)

// runSmall runs a small scenario on the engine and both baselines and
// requires every check to pass.
func runSmall(t *testing.T, cfg bench.Config) *bench.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var progress bytes.Buffer
	cfg.Targets = []string{bench.TargetEngine, bench.TargetPGGuarded, bench.TargetPGOptimistic}
	cfg.RedisURL, cfg.DatabaseURL = testsupport.RedisURL(), testsupport.DatabaseURL()
	cfg.OutDir, cfg.Progress, cfg.PGConns, cfg.Partitions = t.TempDir(), &progress, 8, 4
	r, err := bench.Run(ctx, cfg)
	require.NoError(t, err)
	var summary bytes.Buffer
	require.NoError(t, bench.WriteSummary(&summary, r))
	t.Log("\n" + progress.String() + "\n" + summary.String())
	require.True(t, r.Passed, "the run must pass its checks")
	for _, res := range r.Results {
		require.Empty(t, res.Error, res.Target)
		require.Positive(t, res.Units, res.Target)
		for _, c := range res.Checks {
			require.True(t, c.Passed, "%s: %s: %s", res.Target, c.Name, c.Detail)
		}
	}
	return r
}

// TestMixedSmoke runs a short chain-store day: checkouts, reads, restocks
// and holds that commit, release or expire; the books, the expiry and the
// ledger must agree.
func TestMixedSmoke(t *testing.T) {
	r := runSmall(t, bench.Config{Scenario: bench.ScenarioMixed, Workers: 12, Stores: 3, SKUs: 40,
		Duration: 1500 * time.Millisecond, ReservationTTL: time.Second})
	for _, res := range r.Results {
		require.Positive(t, res.Extra["left_to_expire"], res.Target)
	}
}

// TestBulkSmoke imports a few thousand adjustment lines in chunks.
func TestBulkSmoke(t *testing.T) {
	r := runSmall(t, bench.Config{Scenario: bench.ScenarioBulk, Workers: 4, Stores: 3, BulkItems: 500, BulkLines: 3000, BulkChunk: 250,
		Duration: 20 * time.Second})
	for _, res := range r.Results {
		require.EqualValues(t, 12, res.Extra["chunks"], res.Target)
	}
}

// TestPacedLoad paces a flash sale: the schedule, not the workers, bounds
// the operations, and none starts after the duration.
func TestPacedLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := bench.Run(ctx, bench.Config{Scenario: bench.ScenarioFlashSale, Targets: []string{bench.TargetEngine},
		Workers: 20, Stock: 100000, Rate: 1000, Duration: time.Second, Partitions: 4,
		RedisURL: testsupport.RedisURL(), DatabaseURL: testsupport.DatabaseURL(), OutDir: t.TempDir()})
	require.NoError(t, err)
	require.True(t, r.Passed)
	res := r.Results[0]
	require.Empty(t, res.Error)
	require.Positive(t, res.OK)
	require.LessOrEqual(t, res.Ops, int64(1000), "a 1s schedule at 1000/s holds at most 1000 operations")
	require.Equal(t, res.OK, res.Extra["units_sold"])
}
