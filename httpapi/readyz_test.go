package httpapi

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// persisterStatsOf serves PersisterStats from a persister, as the serve
// command wires it.
func persisterStatsOf(p *persist.Persister) func() PersisterStats {
	return func() PersisterStats {
		st := p.Stats()
		out := PersisterStats{Persisted: st.EventsPersisted, Batches: st.Batches, DeadLetters: st.DeadLetters,
			Errors: st.WriteErrors, LastBatchSize: st.LastBatchSize}
		for _, n := range st.Lag {
			out.Lag += n
		}
		for part, ps := range st.Partitions {
			hp := PersisterPartition{Partition: part, Lag: ps.Lag, Failing: ps.Failing, LastSuccess: ps.LastSuccess, Error: ps.LastError}
			if ps.FailingSince != nil {
				hp.FailingSince = *ps.FailingSince
			}
			out.Partitions = append(out.Partitions, hp)
		}
		return out
	}
}

// metricValue returns the value of the sample named name with the given
// labels (as written on /metrics, e.g. `partition="2"`).
func metricValue(t testing.TB, body, name, labels string) (float64, bool) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{` + regexp.QuoteMeta(labels) + `\} (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return v, true
}

// A persister that cannot write a partition's events to PostgreSQL shows
// the partition degraded on /readyz (still 200: the API serves) and failing
// on /metrics, with its lag.
func TestReadyzAndMetricsShowFailingPersister(t *testing.T) {
	t.Parallel()
	_, pool := testsupport.LedgerSchema(t, testsupport.MaxConns(6))
	// The persister's PostgreSQL is an address nobody listens on.
	deadPool := testsupport.Pool(t, "public", testsupport.Via(testsupport.FreeAddr(t)))

	var p *persist.Persister
	ts := newTestServer(t, func(c *Config) {
		c.Ledger = persist.NewLedger(pool)
		var err error
		p, err = persist.NewPersister(c.Engine, deadPool, persist.PersisterConfig{Block: 50 * time.Millisecond, Linger: -1,
			RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, TrimInterval: 20 * time.Millisecond,
			FailingAfter: 200 * time.Millisecond})
		require.NoError(t, err)
		c.PersisterStats = persisterStatsOf(p)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	part := strconv.Itoa(ts.e.Partition("s1"))
	label := `partition="` + part + `"`

	// Nothing to write: healthy.
	require.Eventually(t, func() bool {
		body := string(ts.req("GET", "/metrics", "", "").Body)
		v, ok := metricValue(t, body, "inventory_persister_partition_lag_events", label)
		return ok && v == 0
	}, 10*time.Second, 10*time.Millisecond)
	r := ts.req("GET", "/readyz", "", "")
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Equal(t, "ready", r.json(t)["status"])
	require.Equal(t, "ok", r.json(t)["checks"].(map[string]any)["persister"])
	v, ok := metricValue(t, string(ts.req("GET", "/metrics", "", "").Body), "inventory_persister_failing", label)
	require.True(t, ok)
	require.Zero(t, v)

	ts.put("s1", "x", 3)
	require.Eventually(t, func() bool {
		r := ts.req("GET", "/readyz", "", "")
		return r.Status == 200 && r.json(t)["status"] == "degraded"
	}, 10*time.Second, 10*time.Millisecond)
	r = ts.req("GET", "/readyz", "", "")
	require.Equal(t, 200, r.Status, "degraded, still serving: %s", r.Body)
	m := r.json(t)
	check := m["checks"].(map[string]any)["persister"].(string)
	require.Contains(t, check, "degraded")
	require.Contains(t, check, "partition "+part+" failing")
	require.Contains(t, check, "failed to connect")
	deg := m["degraded"].([]any)
	require.Len(t, deg, 1)
	d := deg[0].(map[string]any)
	require.Equal(t, float64(ts.e.Partition("s1")), d["partition"])
	require.Equal(t, float64(1), d["lag"])
	require.Contains(t, d["error"], "failed to connect")
	require.Equal(t, "ok", m["checks"].(map[string]any)["postgres"], "the API's own ledger connection is fine")

	body := string(ts.req("GET", "/metrics", "", "").Body)
	v, ok = metricValue(t, body, "inventory_persister_failing", label)
	require.True(t, ok)
	require.Equal(t, 1.0, v)
	v, ok = metricValue(t, body, "inventory_persister_partition_lag_events", label)
	require.True(t, ok)
	require.Equal(t, 1.0, v)
	require.Regexp(t, `(?m)^inventory_persister_lag_events 1$`, body)
	v, ok = metricValue(t, body, "inventory_persister_seconds_since_success", label)
	require.True(t, ok)
	require.GreaterOrEqual(t, v, 0.2)
	for i := 0; i < ts.e.Partitions(); i++ {
		if strconv.Itoa(i) == part {
			continue
		}
		v, ok := metricValue(t, body, "inventory_persister_failing", `partition="`+strconv.Itoa(i)+`"`)
		require.True(t, ok)
		require.Zero(t, v, "partition %d has nothing to write", i)
	}
}
