-- ledger_gaps holds version ranges of an item that the persister saw
-- skipped: it wrote a version while lower ones were missing from the ledger.
-- Most close by themselves (another worker persists the missing versions a
-- moment later); the reconciler clears those and repairs the rest.

-- +goose Up
CREATE TABLE ledger_gaps (
    store_id     text        NOT NULL,
    sku          text        NOT NULL,
    from_version bigint      NOT NULL,
    to_version   bigint      NOT NULL CHECK (to_version >= from_version),
    found_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, sku, from_version)
);

-- +goose Down
DROP TABLE ledger_gaps;
