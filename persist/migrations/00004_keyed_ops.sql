-- +goose Up
-- The rebuild of a partition restores the idempotency records of keyed
-- requests of the last 24 h (persist/keyed.go): this index finds them by
-- store and time without reading each store's whole history. Partial: the
-- engine's generated operation ids (prefix ~g) are never looked up.
CREATE INDEX inventory_events_keyed ON inventory_events (store_id, occurred_at)
    WHERE left(op_id, 2) <> '~g';

-- +goose Down
DROP INDEX inventory_events_keyed;
