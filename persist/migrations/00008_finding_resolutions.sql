-- The conflict inbox (persist/inbox.go): what a person decided about a
-- finding that needs one (oversold after a fork, corruption, a ledger gap).
-- A resolution covers every report of the same kind, item and version (runs
-- report an unrepaired finding again and again).

-- +goose Up
CREATE TABLE finding_resolutions (
    finding_id    bigint      PRIMARY KEY REFERENCES drift_findings (id) ON DELETE CASCADE,
    outcome       text        NOT NULL CHECK (outcome IN ('resolved', 'dismissed')),
    note          text        NOT NULL,
    -- delta is the correcting adjustment of on_hand (resolved only), and
    -- event_version the version of the ADJUST event it wrote in the ledger.
    delta         bigint,
    event_version bigint,
    principal     text        NOT NULL,
    resolved_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((outcome = 'resolved') = (delta IS NOT NULL AND event_version IS NOT NULL))
);

-- The inbox's findings, grouped by what they are about.
CREATE INDEX drift_findings_inbox ON drift_findings (kind, store_id, sku, version, id DESC)
    WHERE kind IN ('oversold', 'corrupt', 'ledger_gap');

-- +goose Down
DROP INDEX drift_findings_inbox;
DROP TABLE finding_resolutions;
