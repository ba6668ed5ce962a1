-- The ledger schema. Every table is keyed by store_id first and the two big
-- ones are hash-partitioned by store_id; see persist/doc.go for why.
-- Unqualified names: the schema is the connection's search_path.

-- +goose Up
CREATE TABLE inventory_items (
    store_id         text        NOT NULL,
    sku              text        NOT NULL,
    on_hand          bigint      NOT NULL CHECK (on_hand >= 0),
    reserved         bigint      NOT NULL CHECK (reserved >= 0 AND reserved <= on_hand),
    version          bigint      NOT NULL CHECK (version >= 1),
    reorder_point    bigint,
    max_per_customer bigint,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (store_id, sku)
) PARTITION BY HASH (store_id);

CREATE TABLE inventory_items_p0 PARTITION OF inventory_items FOR VALUES WITH (MODULUS 8, REMAINDER 0);
CREATE TABLE inventory_items_p1 PARTITION OF inventory_items FOR VALUES WITH (MODULUS 8, REMAINDER 1);
CREATE TABLE inventory_items_p2 PARTITION OF inventory_items FOR VALUES WITH (MODULUS 8, REMAINDER 2);
CREATE TABLE inventory_items_p3 PARTITION OF inventory_items FOR VALUES WITH (MODULUS 8, REMAINDER 3);
CREATE TABLE inventory_items_p4 PARTITION OF inventory_items FOR VALUES WITH (MODULUS 8, REMAINDER 4);
CREATE TABLE inventory_items_p5 PARTITION OF inventory_items FOR VALUES WITH (MODULUS 8, REMAINDER 5);
CREATE TABLE inventory_items_p6 PARTITION OF inventory_items FOR VALUES WITH (MODULUS 8, REMAINDER 6);
CREATE TABLE inventory_items_p7 PARTITION OF inventory_items FOR VALUES WITH (MODULUS 8, REMAINDER 7);

-- Items at or below their reorder point (available = on_hand - reserved), for
-- the replenishment report; small because few items are low at once.
CREATE INDEX inventory_items_low ON inventory_items (store_id, sku)
    WHERE reorder_point IS NOT NULL AND on_hand - reserved <= reorder_point;

CREATE TABLE inventory_events (
    store_id         text        NOT NULL,
    sku              text        NOT NULL,
    version          bigint      NOT NULL CHECK (version >= 1),
    type             text        NOT NULL CHECK (type IN ('SET', 'ADJUST', 'SALE', 'RESERVE', 'COMMIT', 'RELEASE', 'EXPIRE', 'RECONCILE')),
    delta_on_hand    bigint      NOT NULL,
    delta_reserved   bigint      NOT NULL,
    on_hand          bigint      NOT NULL,
    reserved         bigint      NOT NULL,
    reorder_point    bigint,
    max_per_customer bigint,
    reservation_id   text        NOT NULL DEFAULT '',
    customer         text        NOT NULL DEFAULT '',
    op_id            text        NOT NULL DEFAULT '',
    reason           text        NOT NULL DEFAULT '',
    principal        text        NOT NULL DEFAULT '',
    occurred_at      timestamptz NOT NULL,
    expires_at       timestamptz,
    -- stream_id is the entry id in the partition's Redis stream; empty for
    -- RECONCILE rows the reconciler wrote itself.
    stream_id        text        NOT NULL DEFAULT '',
    persisted_at     timestamptz NOT NULL DEFAULT now(),
    -- The primary key also serves the history of one item newest first (a
    -- backward index scan), so there is no separate history index.
    PRIMARY KEY (store_id, sku, version)
) PARTITION BY HASH (store_id);

CREATE TABLE inventory_events_p0 PARTITION OF inventory_events FOR VALUES WITH (MODULUS 8, REMAINDER 0);
CREATE TABLE inventory_events_p1 PARTITION OF inventory_events FOR VALUES WITH (MODULUS 8, REMAINDER 1);
CREATE TABLE inventory_events_p2 PARTITION OF inventory_events FOR VALUES WITH (MODULUS 8, REMAINDER 2);
CREATE TABLE inventory_events_p3 PARTITION OF inventory_events FOR VALUES WITH (MODULUS 8, REMAINDER 3);
CREATE TABLE inventory_events_p4 PARTITION OF inventory_events FOR VALUES WITH (MODULUS 8, REMAINDER 4);
CREATE TABLE inventory_events_p5 PARTITION OF inventory_events FOR VALUES WITH (MODULUS 8, REMAINDER 5);
CREATE TABLE inventory_events_p6 PARTITION OF inventory_events FOR VALUES WITH (MODULUS 8, REMAINDER 6);
CREATE TABLE inventory_events_p7 PARTITION OF inventory_events FOR VALUES WITH (MODULUS 8, REMAINDER 7);

-- Reservation lifecycle lookups (open holds for a rebuild): only the rows
-- that carry a reservation id.
CREATE INDEX inventory_events_reservation ON inventory_events (store_id, reservation_id)
    WHERE reservation_id <> '';

CREATE TABLE reconciliation_runs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mode          text        NOT NULL CHECK (mode IN ('check', 'repair')),
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    items_checked bigint      NOT NULL DEFAULT 0,
    lagging       bigint      NOT NULL DEFAULT 0,
    findings      bigint      NOT NULL DEFAULT 0,
    error         text        NOT NULL DEFAULT ''
);

-- drift_findings holds what a reconciliation run found, and the forks the
-- persister met (run_id NULL): what (kind), on which item, the state before
-- and after, and the action taken.
CREATE TABLE drift_findings (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      bigint REFERENCES reconciliation_runs (id) ON DELETE CASCADE,
    kind        text        NOT NULL,
    store_id    text        NOT NULL,
    sku         text        NOT NULL,
    version     bigint      NOT NULL DEFAULT 0,
    stream_id   text        NOT NULL DEFAULT '',
    before      jsonb,
    after       jsonb,
    action      text        NOT NULL,
    detail      text        NOT NULL DEFAULT '',
    found_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX drift_findings_item ON drift_findings (store_id, sku, found_at DESC);
CREATE INDEX drift_findings_run ON drift_findings (run_id) WHERE run_id IS NOT NULL;
-- A fork re-delivered after a crash is recorded once.
CREATE UNIQUE INDEX drift_findings_fork ON drift_findings (store_id, sku, version, stream_id)
    WHERE kind = 'fork';

-- +goose Down
DROP TABLE drift_findings;
DROP TABLE reconciliation_runs;
DROP TABLE inventory_events;
DROP TABLE inventory_items;
