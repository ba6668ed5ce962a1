package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"runtime/debug"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/admin"
	"github.com/shelfline/inventory/internal/testsupport"
)

// world is an engine on its own prefix of the real Redis, its partitions
// ready, and a pool on the real PostgreSQL.
func world(t *testing.T) *engine.Engine {
	t.Helper()
	rdb := testsupport.RedisClient(t, 0)
	e, err := engine.New(engine.Config{Client: rdb, Prefix: testsupport.IsolatedPrefix(t, rdb), Partitions: 4})
	require.NoError(t, err)
	require.NoError(t, e.Init(t.Context()))
	return e
}

// serve runs an admin server for cfg on a free port until the test ends
// and returns its base URL.
func serve(t *testing.T, cfg admin.Config) (string, *admin.Server) {
	t.Helper()
	srv, err := admin.New(cfg)
	require.NoError(t, err)
	ln, err := admin.Listen("127.0.0.1:0")
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		require.NoError(t, <-done)
	})
	return "http://" + ln.Addr().String(), srv
}

type answer struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, url string) answer {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return answer{res.StatusCode, res.Header, string(b)}
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(a.body), &m), a.body)
	return m
}

func TestServerRoutes(t *testing.T) {
	t.Parallel()
	e := world(t)
	_, pool := testsupport.LedgerSchema(t)
	reg := prometheus.NewRegistry()
	b := admin.Build{Version: "v1.2.3", Revision: "abc", GoVersion: "go1.26"}
	require.NoError(t, admin.Register(reg, admin.BuildInfoCollector(b), admin.StreamCollector(e)))
	url, srv := serve(t, admin.Config{Registry: reg, Build: &b, Checks: admin.Checks{Engine: e, Partitions: true, Ledger: pool}})

	h := get(t, url+"/healthz")
	require.Equal(t, 200, h.status)
	require.Equal(t, "v1.2.3", h.json(t)["version"])

	r := get(t, url+"/readyz")
	require.Equal(t, 200, r.status, r.body)
	require.Equal(t, "ready", r.json(t)["status"])
	require.Equal(t, map[string]any{"redis": "ok", "partitions": "ok", "postgres": "ok"}, r.json(t)["checks"])

	m := get(t, url+"/metrics")
	require.Equal(t, 200, m.status)
	require.Contains(t, m.body, `inventory_build_info{goversion="go1.26",revision="abc",version="v1.2.3"} 1`)
	require.Regexp(t, `(?m)^inventory_stream_length\{partition="3"\} 0$`, m.body)

	require.Equal(t, 404, get(t, url+"/v1/stores").status)

	// A partition that lost its marker: not ready, naming it.
	require.NoError(t, testsupport.RedisClient(t, 0).Del(t.Context(), e.ReadyKey(2)).Err())
	r = get(t, url+"/readyz")
	require.Equal(t, 503, r.status)
	require.Equal(t, "1", r.header.Get("Retry-After"))
	require.Equal(t, "not ready", r.json(t)["status"])
	require.Equal(t, "not ready: [2]", r.json(t)["checks"].(map[string]any)["partitions"])
	require.NoError(t, e.MarkReady(t.Context(), 2))
	require.Equal(t, 200, get(t, url+"/readyz").status)

	// A shutdown: 503 at once, the rest keeps answering.
	srv.BeginShutdown()
	r = get(t, url+"/readyz")
	require.Equal(t, 503, r.status)
	require.Equal(t, "shutting down", r.json(t)["status"])
	require.Equal(t, 200, get(t, url+"/healthz").status)
	require.Equal(t, 200, get(t, url+"/metrics").status)
}

// A worker process (no API) does not wait for partitions; PostgreSQL
// unreachable makes it not ready; a failing persister partition leaves it
// ready but degraded.
func TestWorkerReadiness(t *testing.T) {
	t.Parallel()
	e := world(t)
	deadPool := testsupport.Pool(t, "public", testsupport.Via(testsupport.FreeAddr(t)))
	since := time.Now().Add(-time.Minute)
	stats := admin.PersisterStats{Partitions: []admin.PersisterPartition{
		{Partition: 1, Lag: 7, Failing: true, FailingSince: since, Error: "boom"},
		{Partition: 0, Lag: 0},
	}}
	require.NoError(t, testsupport.RedisClient(t, 0).Del(t.Context(), e.ReadyKey(0)).Err())

	c := admin.Checks{Engine: e, Persister: func() admin.PersisterStats { return stats }}
	rd := c.Check(t.Context(), time.Now())
	require.Equal(t, 200, rd.Code())
	require.Equal(t, "degraded", rd.Status)
	require.Equal(t, "off", rd.Checks["postgres"])
	require.NotContains(t, rd.Checks, "partitions")
	require.Len(t, rd.Degraded, 1)
	require.Equal(t, 1, rd.Degraded[0].Partition)
	require.Equal(t, int64(7), rd.Degraded[0].Lag)
	require.Equal(t, "1m0s", rd.Degraded[0].FailingFor)
	require.Contains(t, rd.Checks["persister"], "partition 1 failing for 1m0s: boom")

	c.Ledger = deadPool
	rd = c.Check(t.Context(), time.Now())
	require.Equal(t, 503, rd.Code())
	require.Equal(t, "not ready", rd.Status)
	require.Contains(t, rd.Checks["postgres"], "unreachable")
}

// While partitions are not ready, /readyz shows the rebuilds' progress;
// once every partition is ready it shows none.
func TestReadinessShowsRebuildProgress(t *testing.T) {
	t.Parallel()
	e := world(t)
	st := admin.RebuildStats{Partitions: 2, Items: 1200, Rebuilding: 1, RoundSeconds: 3.25}
	c := admin.Checks{Engine: e, Partitions: true, Rebuild: func() admin.RebuildStats { return st }}
	require.NoError(t, testsupport.RedisClient(t, 0).Del(t.Context(), e.ReadyKey(0), e.ReadyKey(2)).Err())
	rd := c.Check(t.Context(), time.Now())
	require.Equal(t, 503, rd.Code())
	require.Equal(t, &admin.RebuildProgress{NotReady: 2, Rebuilding: 1, Rebuilt: 2, ItemsRestored: 1200, Seconds: 3.25}, rd.Rebuild)
	require.Equal(t, "not ready: [0 2] (rebuilding 1; 2 partitions and 1200 items restored; 3.2s)", rd.Checks["partitions"])

	require.NoError(t, e.MarkReady(t.Context(), 0))
	require.NoError(t, e.MarkReady(t.Context(), 2))
	st.Rebuilding = 0
	rd = c.Check(t.Context(), time.Now())
	require.Equal(t, 200, rd.Code())
	require.Nil(t, rd.Rebuild)
}

func TestPersisterCollector(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	st := admin.PersisterStats{Lag: 5, Persisted: 10, Batches: 2, DeadLetters: 1, Errors: 3, LastBatchSize: 4,
		Partitions: []admin.PersisterPartition{{Partition: 0, Lag: 5, Failing: true, LastSuccess: time.Now()}, {Partition: 1, Lag: -1}}}
	require.NoError(t, admin.Register(reg, admin.PersisterCollector(func() admin.PersisterStats { return st })))
	body := scrape(t, reg)
	for _, want := range []string{
		`inventory_persister_lag_events 5`, `inventory_persister_events_total 10`, `inventory_persister_batches_total 2`,
		`inventory_persister_dead_letters_total 1`, `inventory_persister_errors_total 3`, `inventory_persister_last_batch_size 4`,
		`inventory_persister_partition_lag_events{partition="0"} 5`, `inventory_persister_failing{partition="0"} 1`,
		`inventory_persister_failing{partition="1"} 0`,
	} {
		require.Regexp(t, `(?m)^`+regexp.QuoteMeta(want)+`$`, body)
	}
	require.NotContains(t, body, `inventory_persister_partition_lag_events{partition="1"}`, "not measured yet")
	require.Contains(t, body, `inventory_persister_seconds_since_success{partition="0"}`)
}

func TestReconcilerAndRebuildCollectors(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	last := time.Unix(1700000000, 500e6)
	rs := admin.ReconcilerStats{
		Runs:     map[admin.RunKey]int64{{Mode: "repair", Outcome: "clean"}: 3, {Mode: "check", Outcome: "drift"}: 1},
		Findings: map[string]int64{"redis_behind": 2, "corrupt": 0}, ItemsChecked: 40, LastRun: last,
		Running: true, RunPartitions: 16, RunPartitionsDone: 5, RunItemsChecked: 31000, RunSeconds: 2.5,
	}
	require.NoError(t, admin.Register(reg,
		admin.ReconcilerCollector(func() admin.ReconcilerStats { return rs }),
		admin.RebuildCollector(func() admin.RebuildStats {
			return admin.RebuildStats{Partitions: 2, Items: 30, Reservations: 4, Rebuilding: 1, Seconds: 2.5, RoundSeconds: 1.5}
		})))
	body := scrape(t, reg)
	for _, want := range []string{
		`inventory_reconciler_runs_total{mode="repair",outcome="clean"} 3`,
		`inventory_reconciler_runs_total{mode="check",outcome="drift"} 1`,
		`inventory_reconciler_findings_total{kind="redis_behind"} 2`,
		`inventory_reconciler_findings_total{kind="corrupt"} 0`,
		`inventory_reconciler_items_checked_total 40`,
		`inventory_reconciler_last_run_timestamp_seconds 1.7000000005e+09`,
		`inventory_reconciler_running 1`,
		`inventory_reconciler_run_items_checked 31000`,
		`inventory_reconciler_run_partitions{state="done"} 5`,
		`inventory_reconciler_run_partitions{state="total"} 16`,
		`inventory_reconciler_run_seconds 2.5`,
		`inventory_rebuild_partitions_total 2`,
		`inventory_rebuild_items_restored_total 30`,
		`inventory_rebuild_reservations_restored_total 4`,
		`inventory_rebuild_partitions_in_progress 1`,
		`inventory_rebuild_seconds_total 2.5`,
		`inventory_rebuild_round_seconds 1.5`,
	} {
		require.Regexp(t, `(?m)^`+regexp.QuoteMeta(want)+`$`, body)
	}
}

// Register passes over a collector registered already, so the API and the
// process can share a registry; another conflict is an error.
func TestRegisterTwice(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	f := func() admin.RebuildStats { return admin.RebuildStats{} }
	require.NoError(t, admin.Register(reg, admin.RebuildCollector(f)))
	require.NoError(t, admin.Register(reg, admin.RebuildCollector(f)))
	require.NoError(t, admin.Register(reg, admin.RuntimeCollectors()...))
	require.NoError(t, admin.Register(reg, admin.RuntimeCollectors()...))
	clash := prometheus.NewCounter(prometheus.CounterOpts{Name: "inventory_rebuild_partitions_total", Help: "other", ConstLabels: prometheus.Labels{"x": "y"}})
	require.Error(t, admin.Register(reg, clash))
}

func TestBuildOf(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"go install @v", debug.BuildInfo{Main: debug.Module{Version: "v1.4.2"}}, "v1.4.2"},
		{"checkout with vcs", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"}}}, "(devel) 0123456789ab"},
		{"modified checkout", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}, "(devel) 0123456789ab+dirty"},
		{"pseudo-version", debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20260101000000-0123456789ab+dirty"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}, "v0.0.0-20260101000000-0123456789ab+dirty"},
		{"no vcs", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "(devel)"},
		{"empty", debug.BuildInfo{}, "(devel)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, admin.BuildOf(&c.bi).String())
		})
	}
	require.NotEmpty(t, admin.ReadBuild().GoVersion)
}

func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	url, _ := serve(t, admin.Config{Registry: reg, Checks: admin.Checks{Engine: nopEngine{}}})
	return get(t, url+"/metrics").body
}

// nopEngine stands for an engine where only /metrics is asked.
type nopEngine struct{}

func (nopEngine) Ping(context.Context) error                               { return nil }
func (nopEngine) Partitions() int                                          { return 0 }
func (nopEngine) PartitionsNotReady(context.Context, []int) ([]int, error) { return nil, nil }
