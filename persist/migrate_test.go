package persist_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfline/inventory/engine"
	"github.com/shelfline/inventory/internal/testsupport"
	"github.com/shelfline/inventory/persist"
)

func TestMigrateIsIdempotentAndSchemaLocal(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	ctx := context.Background()
	require.NoError(t, persist.Migrate(ctx, v.pool), "second run is a no-op")
	st, err := persist.MigrationStatus(ctx, v.pool)
	require.NoError(t, err)
	require.NotEmpty(t, st)
	for _, s := range st {
		require.True(t, s.Applied, "migration %d applied", s.Version)
	}
	for _, table := range []string{"inventory_items", "inventory_events", "reconciliation_runs", "drift_findings", "goose_db_version"} {
		n := testsupport.Count(t, v.pool, `SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = $2`, v.schema, table)
		require.Equal(t, int64(1), n, "%s lives in the test's schema", table)
	}
	n := testsupport.Count(t, v.pool, `SELECT count(*) FROM pg_partitioned_table pt JOIN pg_class c ON c.oid = pt.partrelid
		JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE ns.nspname = $1`, v.schema)
	require.Equal(t, int64(2), n, "items and events are partitioned")
}

func TestLedgerHistoryNewestFirst(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	ctx := context.Background()
	l := persist.NewLedger(v.pool)
	require.NoError(t, l.Ping(ctx))
	evs, err := l.History(ctx, "s1", "none", 10)
	require.NoError(t, err)
	require.Empty(t, evs)
	_, err = l.History(ctx, "s1", "x", 0)
	require.ErrorIs(t, err, persist.ErrInvalidLimit)
}

func TestLedgerLowStock(t *testing.T) {
	t.Parallel()
	v := newEnv(t, envOpt{partitions: 1})
	ctx := context.Background()
	rp := int64(5)
	for sku, n := range map[string]int64{"low": 5, "ok": 6, "none": 1} {
		req := engine.SetRequest{Store: "s1", SKU: sku, OnHand: n}
		if sku != "none" {
			req.ReorderPoint = &rp
		}
		_, err := v.e.Set(ctx, req, engine.Op{})
		require.NoError(t, err)
	}
	// A hold makes "ok" low too: available counts, not on_hand.
	_, err := v.e.Reserve(ctx, engine.ReserveRequest{Store: "s1", Lines: []engine.Line{{SKU: "ok", Qty: 1}}}, engine.Op{})
	require.NoError(t, err)
	_, _ = v.startPersister(t, persist.PersisterConfig{})
	testsupport.WaitFor(t, 10*time.Second, "catch up", func() bool { return testsupport.LedgerCaughtUp(t, v.pool, v.e) })
	items, err := persist.NewLedger(v.pool).LowStock(ctx, "s1", 10)
	require.NoError(t, err)
	require.Len(t, items, 2)
	require.Equal(t, "low", items[0].SKU)
	require.Equal(t, "ok", items[1].SKU)
	require.Equal(t, int64(5), items[1].Available)
	require.Equal(t, int64(1), testsupport.Count(t, v.pool, `SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'inventory_items_low'`, v.schema))
}
