package persist

import (
	"context"
	"embed"
	"fmt"
	"hash/crc32"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLockBase is the base of the PostgreSQL advisory lock id that
// serializes concurrent migrations of one schema ("inv" + crc32(schema)).
const migrationLockBase int64 = 0x696e76 << 32

// provider returns a goose provider over pool. The migrations and goose's
// version table live in the connection's current schema (search_path).
func provider(ctx context.Context, pool *pgxpool.Pool) (*goose.Provider, func() error, error) {
	var schema string
	if err := pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return nil, nil, fmt.Errorf("migrate: current schema: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(migrationLockBase|int64(crc32.ChecksumIEEE([]byte(schema)))),
		lock.WithLockTimeout(1, 120),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("migrate: %w", err)
	}
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, nil, err
	}
	db := stdlib.OpenDBFromPool(pool)
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub,
		goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("migrate: %w", err)
	}
	return p, db.Close, nil
}

// Migrate applies every pending migration to the pool's current schema (its
// search_path), under an advisory lock so concurrent starts are safe. It is a
// no-op when the schema is up to date.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	p, closeDB, err := provider(ctx, pool)
	if err != nil {
		return err
	}
	defer closeDB()
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// MigrationState is one migration and whether the schema has it.
type MigrationState struct {
	Version   int64     `json:"version"`
	Name      string    `json:"name"`
	Applied   bool      `json:"applied"`
	AppliedAt time.Time `json:"applied_at,omitempty"`
}

// MigrationStatus lists every known migration, oldest first, with whether it
// is applied to the pool's current schema (for `inventory migrate status`).
func MigrationStatus(ctx context.Context, pool *pgxpool.Pool) ([]MigrationState, error) {
	p, closeDB, err := provider(ctx, pool)
	if err != nil {
		return nil, err
	}
	defer closeDB()
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	out := make([]MigrationState, len(st))
	for i, s := range st {
		out[i] = MigrationState{Version: s.Source.Version, Name: s.Source.Path,
			Applied: s.State == goose.StateApplied, AppliedAt: s.AppliedAt}
	}
	return out, nil
}
