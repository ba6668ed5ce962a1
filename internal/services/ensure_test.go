package services

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// TestEnsureCreatesTestDatabase runs ensure.sh while PostgreSQL already runs
// and checks that it creates the tests' database when it is missing.
func TestEnsureCreatesTestDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	db := "ensure_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	require.NoError(t, err, "PostgreSQL must run on 127.0.0.1:5432")
	defer conn.Close(context.Background())
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
	})
	exists := func() bool {
		var n int
		require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", db).Scan(&n))
		return n == 1
	}
	require.False(t, exists())

	for run := 0; run < 2; run++ { // the second run finds it and changes nothing
		cmd := exec.CommandContext(ctx, "bash", "ensure.sh")
		cmd.Env = append(cmd.Environ(), "INVENTORY_TEST_DB_NAME="+db)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "ensure.sh: %s", out)
		require.True(t, exists(), "run %d: ensure.sh did not create %s", run, db)
	}
}
