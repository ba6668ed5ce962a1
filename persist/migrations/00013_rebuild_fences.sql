-- The rebuild's fence (docs/design.md §7.3): one row per partition, whose
-- epoch every rebuild of the partition raises before it reads the ledger.
-- A persister batch locks the row (FOR SHARE) at the start of its
-- transaction and commits only if the epoch is still the one it read before
-- reading its entries from Redis, so a batch read from a Redis that then
-- lost its data never commits after the rebuild read the ledger.

-- +goose Up
CREATE TABLE rebuild_fences (
    part integer PRIMARY KEY,
    epoch bigint NOT NULL
);

-- +goose Down
DROP TABLE rebuild_fences;
