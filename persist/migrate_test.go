package persist_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

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
		n := v.count(t, `SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = $2`, v.schema, table)
		require.Equal(t, int64(1), n, "%s lives in the test's schema", table)
	}
	n := v.count(t, `SELECT count(*) FROM pg_partitioned_table pt JOIN pg_class c ON c.oid = pt.partrelid
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
