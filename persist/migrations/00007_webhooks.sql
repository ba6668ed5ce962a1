-- Webhook subscriptions and their delivery log (docs/design.md §18). The
-- delivery workers turn each event of the partition streams into one row per
-- subscription it matches, then acknowledge the entry: the rows are both the
-- per-endpoint queue and the log that GET /v1/webhooks/{id}/deliveries reads.

-- +goose Up
CREATE TABLE webhooks (
    id         text        PRIMARY KEY,
    url        text        NOT NULL,
    events     text[]      NOT NULL,
    -- stores limits the subscription to these stores; NULL: every store.
    stores     text[],
    secret     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    -- seq orders the rows as the workers wrote them.
    seq             bigserial   PRIMARY KEY,
    webhook_id      text        NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- event_id is the Inventory-Event-Id header, the same on every attempt.
    event_id        text        NOT NULL,
    event_type      text        NOT NULL,
    store_id        text        NOT NULL,
    sku             text        NOT NULL,
    version         bigint      NOT NULL,
    body            bytea       NOT NULL,
    -- status: pending (to be sent, or retried at next_attempt_at),
    -- delivered (a 2xx came back), failed (retried for the retry window).
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    status_code     integer,
    last_error      text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- leased_until: a worker is sending the row; another takes it over
    -- only after this time (the first one died mid-delivery).
    leased_until    timestamptz,
    last_attempt_at timestamptz,
    delivered_at    timestamptz,
    UNIQUE (webhook_id, event_id)
);

-- The queue of one endpoint: its pending rows, per item in version order.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, store_id, sku, version, seq)
    WHERE status = 'pending';
-- The log of one endpoint, newest first.
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, seq DESC);

-- +goose Down
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
