package client_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/client"
	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/httpapi"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

// TestInboxMethods: the client's inbox, operations and low-stock methods
// against a real server with a real ledger.
func TestInboxMethods(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rdb := testsupport.RedisClient(t, 0)
	prefix := testsupport.IsolatedPrefix(t, rdb)
	e, err := engine.New(engine.Config{Client: rdb, Prefix: prefix, Partitions: 4})
	require.NoError(t, err)
	require.NoError(t, e.Init(ctx))
	_, pool := testsupport.LedgerSchema(t, testsupport.MaxConns(4))
	keys, err := httpapi.ParseKeys(tokAdmin + ":admin")
	require.NoError(t, err)
	l := persist.NewLedger(pool)
	s, err := httpapi.New(httpapi.Config{Engine: e, Keys: keys, Ledger: l, LowStock: l,
		Inbox: persist.NewInbox(e, pool), Operations: persist.NewOperations(e, pool, persist.OperationsConfig{})})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx, ln) }()
	t.Cleanup(func() { stop(); <-done })
	testsupport.StartPersister(t, e, pool, persist.PersisterConfig{Linger: -1})
	c := client.New("http://"+ln.Addr().String(), tokAdmin)

	rp := int64(4)
	_, err = c.PutItem(ctx, "s1", "sofa", client.SetItem{OnHand: 4, ReorderPoint: &rp})
	require.NoError(t, err)
	id := testsupport.AddFinding(t, pool, persist.KindCorrupt, "s1", "sofa", 1, map[string]any{"on_hand": 4}, map[string]any{"on_hand": 3})
	fs, err := c.Findings(ctx, "", 0)
	require.NoError(t, err)
	require.Len(t, fs, 1)
	require.Equal(t, id, fs[0].ID)
	f, err := c.Finding(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "corrupt", f.Kind)
	f, err = c.ResolveFinding(ctx, id, -1, "counted 3")
	require.NoError(t, err)
	require.Equal(t, "resolved", f.Status)
	require.Equal(t, int64(2), *f.Resolution.EventVersion)
	_, err = c.DismissFinding(ctx, id, "late")
	require.Equal(t, 409, client.ProblemOf(err).Status)
	_, err = c.Finding(ctx, 424242)
	require.Equal(t, 404, client.ProblemOf(err).Status)

	ov, err := c.Operations(ctx)
	require.NoError(t, err)
	require.Len(t, ov.Partitions, 4)
	require.Len(t, ov.Runs, 1)

	require.Eventually(t, func() bool {
		items, err := c.LowStock(ctx, "s1", 10)
		return err == nil && len(items) == 1 && items[0].SKU == "sofa" && items[0].OnHand == 3
	}, 10*time.Second, 20*time.Millisecond)
}
