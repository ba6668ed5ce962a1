-- Transfers (docs/design.md §20): the events of a transfer's steps carry its
-- id, and the transfers table keeps each transfer's last known record, one
-- side at a time: the source's outbound marker (src_*) from the events of
-- the steps at the source, the destination's record (status, lines) from
-- those at the destination. The rebuild restores open transfers from it;
-- the reconciler checks DESIGN §11's invariant against the events.

-- +goose Up
ALTER TABLE inventory_events ADD COLUMN transfer_id text NOT NULL DEFAULT '';
CREATE INDEX inventory_events_transfer ON inventory_events (store_id, transfer_id) WHERE transfer_id <> '';

-- Every event type so far, the stock states' (00006) included.
ALTER TABLE inventory_events DROP CONSTRAINT inventory_events_type_check;
ALTER TABLE inventory_events ADD CONSTRAINT inventory_events_type_check CHECK (type IN
    ('SET', 'ADJUST', 'SALE', 'RESERVE', 'COMMIT', 'RELEASE', 'EXPIRE', 'RECONCILE', 'MOVE', 'FULFIL',
     'TRANSFER_OUT', 'TRANSFER_EXPECTED', 'TRANSFER_IN', 'TRANSFER_LOSS', 'TRANSFER_CANCEL'));

CREATE TABLE transfers (
    id          text        PRIMARY KEY,
    -- '' for a supplier's delivery
    from_store  text        NOT NULL DEFAULT '',
    to_store    text        NOT NULL,
    expected_at timestamptz,
    reference   text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL,
    -- the destination's record: NULL status until its expect step is in
    -- the ledger; lines [[sku, qty, received, damaged, missing], …]
    status      text        CHECK (status IN ('in_transit', 'received', 'cancelled')),
    lines       jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL,
    dst_stream  text        NOT NULL DEFAULT '',
    -- the source's marker: shipped or returned; '' for a supplier's delivery
    -- or until its ship step is in the ledger
    src_state   text        NOT NULL DEFAULT '' CHECK (src_state IN ('', 'shipped', 'returned')),
    src_stream  text        NOT NULL DEFAULT ''
);
CREATE INDEX transfers_to ON transfers (to_store);

-- transfer_stream_after reports whether stream id a ("<ms>-<seq>") comes
-- after b; '' comes before every id.
-- +goose StatementBegin
CREATE FUNCTION transfer_stream_after(a text, b text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT a <> '' AND (b = '' OR
        (split_part(a, '-', 1)::numeric, split_part(a, '-', 2)::numeric) >
        (split_part(b, '-', 1)::numeric, split_part(b, '-', 2)::numeric))
$$;
-- +goose StatementEnd
CREATE INDEX transfers_from ON transfers (from_store) WHERE from_store <> '';

-- +goose Down
DROP FUNCTION transfer_stream_after(text, text);
DROP TABLE transfers;
DROP INDEX IF EXISTS inventory_events_transfer;
ALTER TABLE inventory_events DROP COLUMN transfer_id;
ALTER TABLE inventory_events DROP CONSTRAINT inventory_events_type_check;
ALTER TABLE inventory_events ADD CONSTRAINT inventory_events_type_check CHECK (type IN
    ('SET', 'ADJUST', 'SALE', 'RESERVE', 'COMMIT', 'RELEASE', 'EXPIRE', 'RECONCILE', 'MOVE', 'FULFIL'));
