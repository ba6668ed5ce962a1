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

// The recovery scenario on a few thousand items: import, loss of every
// Redis key, rebuild, check, drift, check and repair, final check; every
// step passes its checks and the table is printed.
func TestRecoverySmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	rep, err := bench.RunRecovery(ctx, bench.RecoveryConfig{
		RedisURL: testsupport.RedisURL(), DatabaseURL: testsupport.DatabaseURL(),
		Partitions: 8, Items: 2000, Stores: 7, Chunk: 300, Workers: 3, Drift: 100,
		OutDir: t.TempDir(), CPUProfile: true, Progress: &progress,
	})
	require.NoError(t, err)
	var table bytes.Buffer
	require.NoError(t, bench.WriteRecoveryTable(&table, rep))
	t.Log("\n" + progress.String() + "\n" + table.String())
	require.True(t, rep.Passed, "%v", rep.Failures)
	names := []string{}
	for _, s := range rep.Steps {
		names = append(names, s.Name)
	}
	require.Equal(t, []string{
		"import over HTTP (PUT /v1/items)",
		"ledger drain of the import (persister)",
		"rebuild after Redis lost every key: every partition ready",
		"check of every item against the ledger",
		"check with 100 drifted items",
		"repair of 100 drifted items",
		"final check of every item (ledger, and what was imported)",
	}, names)
	require.Equal(t, int64(2000), rep.Steps[0].Items)
	// The import and the drain report the CPU each part used per item:
	// this process, the run's Redis and the run's PostgreSQL backends
	// (all on this machine in the test).
	for _, s := range rep.Steps[:2] {
		for _, part := range []string{"process", "redis", "postgres", "machine"} {
			require.Greater(t, s.CPUPerItem[part], 0.0, "%s: %s", s.Name, part)
		}
	}
	require.GreaterOrEqual(t, rep.Steps[2].Items, int64(2000), "every item restored")
	require.Len(t, rep.Profiles, 5)
	require.Contains(t, table.String(), "| repair of 100 drifted items")
}
