-- Transfers read from the ledger in (created_at, id) order (docs/design.md
-- §20.8): every transfer's page, and one store's (either end), each a range
-- of an index instead of a sort of all the store's transfers.

-- +goose Up
CREATE INDEX transfers_created ON transfers (created_at, id);
CREATE INDEX transfers_to_created ON transfers (to_store, created_at, id);
CREATE INDEX transfers_from_created ON transfers (from_store, created_at, id) WHERE from_store <> '';

-- +goose Down
DROP INDEX transfers_from_created;
DROP INDEX transfers_to_created;
DROP INDEX transfers_created;
