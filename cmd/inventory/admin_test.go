package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
)

// sample returns the value of the metric line `name{labels} value` (labels
// as written, "" for none) in a /metrics body.
func sample(body, name, labels string) (float64, bool) {
	if labels != "" {
		labels = `\{` + regexp.QuoteMeta(labels) + `\}`
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + labels + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

// processEnv is testEnv for a process of the built binary: its own Redis
// prefix and ledger schema, and free ports.
func processEnv(t *testing.T) map[string]string {
	t.Helper()
	return testEnv(t)
}

// `inventory persist` serves /metrics, /healthz and /readyz on its admin
// address: the persister's lag per partition, failing partitions, dead
// letters and the build; it drains what the engine writes.
func TestPersistServesAdminAddress(t *testing.T) {
	t.Parallel()
	env := processEnv(t)
	admin := "http://" + env["INVENTORY_ADMIN_ADDR"]
	// The partitions are made ready the way serve does without a rebuilder
	// at hand: the ledger is empty.
	code, out := execBinary(t, env, "migrate")
	require.Equal(t, 0, code, out)

	p := startProcess(t, env, "persist")
	p.waitFor(30*time.Second, "ready on the admin address", func() bool {
		c, _ := fetch(admin + "/readyz")
		return c == 200
	})
	c, body := fetch(admin + "/healthz")
	require.Equal(t, 200, c)
	require.Contains(t, body, `"status":"ok"`)

	// Events written through an engine of the same deployment reach the
	// ledger, and the metrics say so.
	rdb := testsupport.RedisClient(t, 0)
	e, err := engine.New(engine.Config{Client: rdb, Prefix: env["INVENTORY_REDIS_PREFIX"], Partitions: 4})
	require.NoError(t, err)
	require.NoError(t, e.Init(t.Context()))
	for i := range 5 {
		_, err := e.Set(t.Context(), engine.SetRequest{Store: "s" + strconv.Itoa(i), SKU: "lamp", OnHand: 3}, engine.Op{})
		require.NoError(t, err)
	}
	var metrics string
	p.waitFor(20*time.Second, "the events persisted, no lag left", func() bool {
		_, metrics = fetch(admin + "/metrics")
		v, ok := sample(metrics, "inventory_persister_events_total", "")
		if !ok || v != 5 {
			return false
		}
		for part := range 4 {
			if lag, ok := sample(metrics, "inventory_persister_partition_lag_events", `partition="`+strconv.Itoa(part)+`"`); !ok || lag != 0 {
				return false
			}
		}
		return true
	})
	for part := range 4 {
		v, ok := sample(metrics, "inventory_persister_failing", `partition="`+strconv.Itoa(part)+`"`)
		require.True(t, ok)
		require.Zero(t, v)
	}
	for _, name := range []string{"inventory_persister_dead_letters_total", "inventory_persister_lag_events", "go_goroutines", "process_resident_memory_bytes"} {
		_, ok := sample(metrics, name, "")
		require.True(t, ok, name)
	}
	require.Regexp(t, `(?m)^inventory_build_info\{goversion="go[^"]+",revision="[^"]*",version="[^"]+"\} 1$`, metrics)
	require.Regexp(t, `(?m)^inventory_stream_length\{partition="0"\} \d+$`, metrics)

	// `inventory health` asks the admin address.
	code, out = execBinary(t, map[string]string{"INVENTORY_ADMIN_ADDR": env["INVENTORY_ADMIN_ADDR"]}, "health")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "200 OK")

	p.signal()
	require.NoError(t, p.wait(20*time.Second), "persist exits cleanly on SIGTERM")
	code, out = execBinary(t, map[string]string{"INVENTORY_ADMIN_ADDR": env["INVENTORY_ADMIN_ADDR"]}, "health")
	require.Equal(t, 1, code, "nothing answers any more: %s", out)
}

// serve answers 503 on /readyz, on the API and the admin address, as soon
// as SIGTERM arrives, and serves requests through --drain-delay before it
// drains and exits. The API's /metrics and the admin address's show the
// same registry.
func TestServeReadyzTurns503BeforeTheDrain(t *testing.T) {
	t.Parallel()
	env := processEnv(t)
	api, admin := "http://"+env["INVENTORY_ADDR"], "http://"+env["INVENTORY_ADMIN_ADDR"]
	p := startProcess(t, env, "serve", "--drain-delay", "3s", "--reconcile-interval", "1h")
	p.waitFor(30*time.Second, "ready", func() bool {
		a, _ := fetch(api + "/readyz")
		b, _ := fetch(admin + "/readyz")
		return a == 200 && b == 200
	})
	for _, base := range []string{api, admin} {
		p.waitFor(10*time.Second, "the persister's lag measured", func() bool {
			_, body := fetch(base + "/metrics")
			_, ok := sample(body, "inventory_persister_partition_lag_events", `partition="3"`)
			return ok
		})
		_, body := fetch(base + "/metrics")
		require.Contains(t, body, "inventory_build_info{")
		require.Contains(t, body, `inventory_reconciler_findings_total{kind="redis_behind"} 0`)
		require.Contains(t, body, "inventory_rebuild_partitions_total ")
		require.Contains(t, body, "inventory_http_request_duration_seconds", "one registry for the process")
	}

	p.signal()
	p.waitFor(2*time.Second, "503 on both /readyz", func() bool {
		a, _ := fetch(api + "/readyz")
		b, _ := fetch(admin + "/readyz")
		return a == 503 && b == 503
	})
	start := time.Now()
	_, body := fetch(api + "/readyz")
	require.Contains(t, body, "shutting down")
	// Still serving during the delay: the drain has not begun.
	c, _ := fetch(api+"/v1/stores", "tok")
	require.Equal(t, 200, c, "requests are served until the drain")
	c, _ = fetch(admin + "/healthz")
	require.Equal(t, 200, c)
	require.Less(t, time.Since(start), 2*time.Second, "checked within the delay")
	require.NoError(t, p.wait(30*time.Second), "serve exits cleanly")
}

// serve with every role but the API (a worker) has the admin address:
// its rebuilder's and reconciler's runs are counted there.
func TestServeWorkersOnlyAdminAddress(t *testing.T) {
	t.Parallel()
	env := processEnv(t)
	admin := "http://" + env["INVENTORY_ADMIN_ADDR"]
	p := startProcess(t, env, "serve", "--api=false", "--reconcile-interval", "1s")
	var metrics string
	// The persister measures a partition's lag at its first trim, a read
	// (up to its 1 s block) after the rebuild made the partition's group
	// again: the wait covers it too.
	p.waitFor(30*time.Second, "a reconciliation run, the rebuilds and the persister's lag counted", func() bool {
		c, _ := fetch(admin + "/readyz")
		_, metrics = fetch(admin + "/metrics")
		runs, ok := sample(metrics, "inventory_reconciler_runs_total", `mode="repair",outcome="clean"`)
		rebuilt, _ := sample(metrics, "inventory_rebuild_partitions_total", "")
		return c == 200 && ok && runs >= 1 && rebuilt == 4 && strings.Contains(metrics, "inventory_persister_partition_lag_events{")
	})
	v, ok := sample(metrics, "inventory_reconciler_findings_total", `kind="partition_not_ready"`)
	require.True(t, ok)
	require.Zero(t, v)
	_, ok = sample(metrics, "inventory_reconciler_last_run_timestamp_seconds", "")
	require.True(t, ok)
	require.Contains(t, metrics, "inventory_persister_partition_lag_events{")
	c, _ := fetch("http://" + env["INVENTORY_ADDR"] + "/healthz")
	require.Zero(t, c, "no API")
	p.signal()
	require.NoError(t, p.wait(20*time.Second))
}

// The admin address is bound first: a taken one stops the process before
// it connects to anything, and `off` turns it off.
func TestAdminAddressTakenOrOff(t *testing.T) {
	t.Parallel()
	env := processEnv(t)
	p := startProcess(t, env, "persist")
	p.waitFor(30*time.Second, "ready", func() bool {
		c, _ := fetch("http://" + env["INVENTORY_ADMIN_ADDR"] + "/readyz")
		return c == 200
	})
	q := startProcess(t, env, "persist")
	err := q.wait(20 * time.Second)
	require.Error(t, err)
	require.Contains(t, q.out.String(), "INVENTORY_ADMIN_ADDR")
	require.Contains(t, q.out.String(), "address already in use")

	env["INVENTORY_ADMIN_ADDR"] = "off"
	env["INVENTORY_LOG_LEVEL"] = "info"
	r := startProcess(t, env, "persist")
	r.waitFor(30*time.Second, "started", func() bool {
		return strings.Contains(r.out.String(), "admin address off") && strings.Contains(r.out.String(), "persister started")
	})
	r.signal()
	require.NoError(t, r.wait(20*time.Second))
}
