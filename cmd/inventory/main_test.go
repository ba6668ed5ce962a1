package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/internal/testsupport"
)

func TestConfigEnvAndFlags(t *testing.T) {
	t.Parallel()
	env := map[string]string{"INVENTORY_ADDR": "0.0.0.0:9999", "INVENTORY_PARTITIONS": "8", "INVENTORY_REDIS_URL": "embedded"}
	var c config
	fs := newFlagSet("x", "", io.Discard, func(k string) string { return env[k] })
	c.register(fs)
	c.registerAPI(fs)
	require.NoError(t, parse(fs, []string{"--partitions", "4"}))
	require.Equal(t, "0.0.0.0:9999", c.Addr, "environment")
	require.Equal(t, 4, c.Partitions, "flags over the environment")
	require.Equal(t, "inv", c.RedisPrefix, "default")
	require.Equal(t, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", c.DatabaseURL)
	require.True(t, c.embedded())
	require.NoError(t, c.validate())
	c.Partitions = 0
	require.Error(t, c.validate())
	c.DatabaseURL = "OFF"
	require.True(t, c.ledgerOff())

	// A variable that does not parse is an error naming it.
	env["INVENTORY_PARTITIONS"] = "many"
	fs = newFlagSet("x", "", io.Discard, func(k string) string { return env[k] })
	c.register(fs)
	err := parse(fs, nil)
	require.ErrorContains(t, err, `INVENTORY_PARTITIONS="many"`)
	// Typed flags take their variable too.
	env = map[string]string{"INVENTORY_DRAIN_DELAY": "3s", "INVENTORY_API": "false", "INVENTORY_RATE_LIMIT": "2.5"}
	fs = newFlagSet("x", "", io.Discard, func(k string) string { return env[k] })
	d := fs.Duration("drain-delay", "INVENTORY_DRAIN_DELAY", 0, "")
	a := fs.Bool("api", "INVENTORY_API", true, "")
	r := fs.Float64("rate-limit", "INVENTORY_RATE_LIMIT", 0, "")
	require.NoError(t, parse(fs, []string{"--api"}))
	require.Equal(t, 3*time.Second, *d)
	require.True(t, *a, "the command line wins")
	require.Equal(t, 2.5, *r)
}

func TestParseParts(t *testing.T) {
	t.Parallel()
	p, err := parseParts("0,2,5-7", 16)
	require.NoError(t, err)
	require.Equal(t, []int{0, 2, 5, 6, 7}, p)
	p, err = parseParts("", 16)
	require.NoError(t, err)
	require.Nil(t, p)
	for _, bad := range []string{"16", "-1", "a", "3-1", "0-16"} {
		_, err := parseParts(bad, 16)
		require.Error(t, err, bad)
	}
}

// runCmd runs the command line in-process and returns its exit code and
// output.
func runCmd(t *testing.T, ctx context.Context, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	out, err := os.CreateTemp(t.TempDir(), "out")
	require.NoError(t, err)
	errf, err := os.CreateTemp(t.TempDir(), "err")
	require.NoError(t, err)
	code := run(ctx, args, out, errf)
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errf.Name())
	return code, string(o), string(e)
}

func TestUsage(t *testing.T) {
	ctx := context.Background()
	code, out, _ := runCmd(t, ctx, nil)
	require.Equal(t, 2, code)
	for _, c := range commands() {
		require.Contains(t, out, c.name)
	}
	code, out, _ = runCmd(t, ctx, nil, "version")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(out, "inventory "))
	code, _, errOut := runCmd(t, ctx, nil, "bogus")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "unknown command")
	for _, c := range commands() {
		code, _, help := runCmd(t, ctx, nil, c.name, "--help")
		require.Equal(t, 0, code, c.name)
		if c.name != "version" && c.name != "health" && c.name != "import" { // import talks to a server over HTTP only
			for _, env := range []string{"INVENTORY_REDIS_URL", "INVENTORY_REDIS_CLUSTER_ADDRS", "INVENTORY_REDIS_PREFIX",
				"INVENTORY_PARTITIONS", "INVENTORY_DATABASE_URL", "INVENTORY_LOG_LEVEL"} {
				require.Contains(t, help, env, "%s --help documents %s", c.name, env)
			}
		}
	}
	code, _, _ = runCmd(t, ctx, nil, "serve", "--no-such-flag")
	require.Equal(t, 2, code)
	code, _, _ = runCmd(t, ctx, nil, "seed")
	require.Equal(t, 2, code, "seed needs --demo")
	code, _, errOut = runCmd(t, ctx, map[string]string{"INVENTORY_DATABASE_URL": "off"}, "migrate")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "ledger")
}

// testEnv is the environment of a deployment of the test's own: a key
// prefix on the real Redis and a schema of the test database, removed when
// the test ends.
func testEnv(t *testing.T) map[string]string {
	t.Helper()
	prefix := testsupport.IsolatedPrefix(t, testsupport.RedisClient(t, 0))
	return map[string]string{
		"INVENTORY_REDIS_URL":    testsupport.RedisURL(),
		"INVENTORY_REDIS_PREFIX": prefix,
		"INVENTORY_PARTITIONS":   "4",
		"INVENTORY_DATABASE_URL": testsupport.SchemaURL(t, testsupport.Schema(t), ""),
		"INVENTORY_API_KEYS":     "tok:admin",
		"INVENTORY_ADDR":         testsupport.FreeAddr(t),
		"INVENTORY_ADMIN_ADDR":   testsupport.FreeAddr(t),
		"INVENTORY_LOG_LEVEL":    "warn",
	}
}

func get(t *testing.T, url string, out any) int {
	t.Helper()
	rq, _ := http.NewRequest("GET", url, nil)
	rq.Header.Set("Authorization", "Bearer tok")
	res, err := http.DefaultClient.Do(rq)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil {
		_ = json.Unmarshal(b, out)
	}
	return res.StatusCode
}

// TestCommandsEndToEnd migrates, seeds the demo chain, serves with every
// role on real Redis and PostgreSQL, and reconciles, as `make run` does.
func TestCommandsEndToEnd(t *testing.T) {
	env := testEnv(t)
	ctx := context.Background()
	code, out, errOut := runCmd(t, ctx, env, "migrate")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "applied")

	code, out, errOut = runCmd(t, ctx, env, "seed", "--demo")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "in 32 stores")
	code, out, _ = runCmd(t, ctx, env, "seed", "--demo")
	require.Equal(t, 0, code)
	require.Contains(t, out, "exist already")

	sctx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		c, _, e := runCmd(t, sctx, env, "serve", "--reconcile-interval", "1h")
		if c != 0 {
			t.Log(e)
		}
		done <- c
	}()
	base := "http://" + env["INVENTORY_ADDR"]
	require.Eventually(t, func() bool { return get(t, base+"/readyz", nil) == 200 }, 20*time.Second, 100*time.Millisecond)
	var stores struct{ Stores []string }
	require.Equal(t, 200, get(t, base+"/v1/stores", &stores))
	require.Len(t, stores.Stores, 32)
	var page struct {
		Items []struct{ SKU string } `json:"items"`
	}
	require.Equal(t, 200, get(t, base+"/v1/stores/warehouse/items?limit=1", &page))
	require.Len(t, page.Items, 1)
	sku := page.Items[0].SKU
	// The persister moves the seed's events into the ledger.
	require.Eventually(t, func() bool {
		var h struct{ Events []any }
		return get(t, base+"/v1/stores/warehouse/items/"+sku+"/history", &h) == 200 && len(h.Events) == 1
	}, 20*time.Second, 100*time.Millisecond)

	code, out, errOut = runCmd(t, ctx, env, "reconcile", "--mode", "check")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"items_checked"`)

	stop()
	select {
	case c := <-done:
		require.Equal(t, 0, c, "serve exits cleanly on a signal")
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
}
