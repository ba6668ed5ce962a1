-- Stock states (docs/design.md §10): on_hand splits into reserved, committed
-- (sold, not yet handed over), damaged, quality_control and display (floor
-- models); incoming (on its way, §11) is not part of on_hand. Every event
-- carries every state after the change and a delta for each, so each
-- state's deltas sum to it (conservation per state). Existing rows read 0
-- in every state and no safety stock; adding a column with a constant
-- default rewrites no row.

-- +goose Up
ALTER TABLE inventory_items
    ADD COLUMN committed       bigint NOT NULL DEFAULT 0,
    ADD COLUMN damaged         bigint NOT NULL DEFAULT 0,
    ADD COLUMN quality_control bigint NOT NULL DEFAULT 0,
    ADD COLUMN display         bigint NOT NULL DEFAULT 0,
    ADD COLUMN incoming        bigint NOT NULL DEFAULT 0,
    ADD COLUMN safety_stock    bigint,
    ADD CONSTRAINT inventory_items_states_check CHECK (
        committed >= 0 AND damaged >= 0 AND quality_control >= 0 AND display >= 0 AND incoming >= 0
        AND reserved + committed + damaged + quality_control + display <= on_hand);

ALTER TABLE inventory_events
    ADD COLUMN committed             bigint NOT NULL DEFAULT 0,
    ADD COLUMN damaged               bigint NOT NULL DEFAULT 0,
    ADD COLUMN quality_control       bigint NOT NULL DEFAULT 0,
    ADD COLUMN display               bigint NOT NULL DEFAULT 0,
    ADD COLUMN incoming              bigint NOT NULL DEFAULT 0,
    ADD COLUMN safety_stock          bigint,
    ADD COLUMN delta_committed       bigint NOT NULL DEFAULT 0,
    ADD COLUMN delta_damaged         bigint NOT NULL DEFAULT 0,
    ADD COLUMN delta_quality_control bigint NOT NULL DEFAULT 0,
    ADD COLUMN delta_display         bigint NOT NULL DEFAULT 0,
    ADD COLUMN delta_incoming        bigint NOT NULL DEFAULT 0,
    -- a MOVE's states and units; '' and 0 on other events
    ADD COLUMN move_from             text   NOT NULL DEFAULT '',
    ADD COLUMN move_to               text   NOT NULL DEFAULT '',
    ADD COLUMN move_qty              bigint NOT NULL DEFAULT 0;

-- The event types of the states: MOVE between states, FULFIL of committed
-- units. A later migration that adds types replaces this constraint with a
-- list holding these too.
ALTER TABLE inventory_events DROP CONSTRAINT inventory_events_type_check;
ALTER TABLE inventory_events ADD CONSTRAINT inventory_events_type_check CHECK (type IN
    ('SET', 'ADJUST', 'SALE', 'RESERVE', 'COMMIT', 'RELEASE', 'EXPIRE', 'RECONCILE', 'MOVE', 'FULFIL'));

-- Low stock compares the reorder point with available as §10 defines it.
DROP INDEX IF EXISTS inventory_items_low;
CREATE INDEX inventory_items_low ON inventory_items (store_id, sku)
    WHERE reorder_point IS NOT NULL
      AND on_hand - reserved - committed - damaged - quality_control - display - coalesce(safety_stock, 0) <= reorder_point;

-- +goose Down
DROP INDEX IF EXISTS inventory_items_low;
CREATE INDEX inventory_items_low ON inventory_items (store_id, sku)
    WHERE reorder_point IS NOT NULL AND on_hand - reserved <= reorder_point;
ALTER TABLE inventory_events DROP CONSTRAINT inventory_events_type_check;
ALTER TABLE inventory_events ADD CONSTRAINT inventory_events_type_check CHECK (type IN
    ('SET', 'ADJUST', 'SALE', 'RESERVE', 'COMMIT', 'RELEASE', 'EXPIRE', 'RECONCILE'));
ALTER TABLE inventory_events
    DROP COLUMN committed, DROP COLUMN damaged, DROP COLUMN quality_control, DROP COLUMN display,
    DROP COLUMN incoming, DROP COLUMN safety_stock,
    DROP COLUMN delta_committed, DROP COLUMN delta_damaged, DROP COLUMN delta_quality_control,
    DROP COLUMN delta_display, DROP COLUMN delta_incoming,
    DROP COLUMN move_from, DROP COLUMN move_to, DROP COLUMN move_qty;
ALTER TABLE inventory_items
    DROP CONSTRAINT inventory_items_states_check,
    DROP COLUMN committed, DROP COLUMN damaged, DROP COLUMN quality_control, DROP COLUMN display,
    DROP COLUMN incoming, DROP COLUMN safety_stock;
