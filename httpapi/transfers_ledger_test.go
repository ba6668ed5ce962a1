package httpapi

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// TestTransfersFromTheLedger: finished transfers leave Redis after their
// retention; GET and the lists still answer them, from the ledger, in the
// same order and pages as before.
func TestTransfersFromTheLedger(t *testing.T) {
	t.Parallel()
	_, pool := testsupport.LedgerSchema(t, testsupport.MaxConns(4))
	ts := newTestServerWith(t, func(c *engine.Config) { c.TransferRetention = time.Second }, func(c *Config) {
		l := persist.NewLedger(pool)
		c.Ledger, c.TransferLedger = l, l
	})
	testsupport.StartPersister(t, ts.e, pool, persist.PersisterConfig{Linger: -1})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- engine.NewTransferWorker(ts.e, engine.TransferWorkerConfig{Interval: 50 * time.Millisecond}).Run(ctx)
	}()
	t.Cleanup(func() { stop(); <-done })
	ts.put("s1", "sofa", 10)

	create := func() string {
		time.Sleep(2 * time.Millisecond) // distinct created ms: the lists' order is known
		r := ts.req("POST", "/v1/transfers", tokS1, `{"from":"s1","to":"s2","lines":[{"sku":"sofa","qty":2}]}`)
		require.Equal(t, 201, r.Status, "%s", r.Body)
		return r.json(t)["id"].(string)
	}
	received, cancelled, open := create(), create(), create()
	r := ts.req("POST", "/v1/transfers/"+received+"/receive", tokS2, `{"lines":[{"sku":"sofa","received":2}]}`)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	r = ts.req("POST", "/v1/transfers/"+cancelled+"/cancel", tokS1, "")
	require.Equal(t, 200, r.Status, "%s", r.Body)

	require.Eventually(t, func() bool {
		_, e1 := ts.e.GetTransfer(context.Background(), received)
		_, e2 := ts.e.GetTransfer(context.Background(), cancelled)
		return errors.Is(e1, engine.ErrNotFound) && errors.Is(e2, engine.ErrNotFound)
	}, 15*time.Second, 50*time.Millisecond, "the finished transfers leave Redis")
	_, err := ts.e.GetTransfer(context.Background(), open)
	require.NoError(t, err, "the open one stays")

	for id, status := range map[string]string{received: "received", cancelled: "cancelled", open: "in_transit"} {
		r := ts.req("GET", "/v1/transfers/"+id, tokS2, "")
		require.Equal(t, 200, r.Status, "%s: %s", id, r.Body)
		require.Equal(t, status, r.json(t)["status"])
		require.Equal(t, "s1", r.json(t)["from"])
	}
	requireProblem(t, ts.req("GET", "/v1/transfers/0-00000000000000000000000000000000", tokAdmin, ""), 404)

	ids := func(path, tok string) []string {
		var out []string
		r := ts.req("GET", path, tok, "")
		require.Equal(t, 200, r.Status, "%s", r.Body)
		for _, x := range r.json(t)["transfers"].([]any) {
			out = append(out, x.(map[string]any)["id"].(string))
		}
		return out
	}
	all := []string{received, cancelled, open}
	require.Equal(t, all, ids("/v1/transfers?store=s2", tokS2))
	require.Equal(t, all, ids("/v1/transfers?store=s1", tokS1))
	require.Equal(t, all, ids("/v1/transfers", tokAdmin), "every store's list, from the ledger")
	require.Equal(t, []string{open}, ids("/v1/transfers?store=s2&status=in_transit", tokS2))
	require.Equal(t, []string{received}, ids("/v1/transfers?status=received", tokAdmin))
	for _, path := range []string{"/v1/transfers?store=s2&limit=1", "/v1/transfers?limit=1"} {
		var got []string
		cursor := ""
		for i := 0; i < 10; i++ {
			p := path
			if cursor != "" {
				p += "&cursor=" + cursor
			}
			r := ts.req("GET", p, tokAdmin, "")
			require.Equal(t, 200, r.Status, "%s", r.Body)
			m := r.json(t)
			for _, x := range m["transfers"].([]any) {
				got = append(got, x.(map[string]any)["id"].(string))
			}
			if m["next_cursor"] == nil {
				break
			}
			cursor = m["next_cursor"].(string)
		}
		require.Equal(t, all, got, "pages of %s", path)
	}
}
