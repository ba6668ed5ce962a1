-- +goose Up
-- Generated operation ids start with "·g" (a client's key is printable
-- ASCII, so no key can look generated and lose its record after a Redis
-- loss). The partial index of keyed requests follows the new prefix. Rows
-- written with the old prefix "~g" are now indexed too; the rebuild only
-- reads the last 24 h, so they drop out of its reach a day after the upgrade.
DROP INDEX IF EXISTS inventory_events_keyed;
CREATE INDEX inventory_events_keyed ON inventory_events (store_id, occurred_at)
    WHERE left(op_id, 2) <> '·g';

-- +goose Down
DROP INDEX IF EXISTS inventory_events_keyed;
CREATE INDEX inventory_events_keyed ON inventory_events (store_id, occurred_at)
    WHERE left(op_id, 2) <> '~g';
