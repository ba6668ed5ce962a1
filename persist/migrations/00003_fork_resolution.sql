-- Forks after a Redis failover: the persister holds back every event of an
-- item from its first fork on and records each one in drift_findings
-- ('fork': the ledger has another event of that version; 'held_back': a
-- later event of the forked item). The reconciler merges them into the
-- ledger and marks them resolved by its run.

-- +goose Up
ALTER TABLE drift_findings ADD COLUMN resolved_run_id bigint NULL;

-- The unresolved forks of an item: read by the persister for every batch
-- and by the reconciler; small, since forks are rare and resolved soon.
CREATE INDEX drift_findings_open_forks ON drift_findings (store_id, sku)
    WHERE kind IN ('fork', 'held_back') AND resolved_run_id IS NULL;

-- A held-back event re-delivered after a crash is recorded once.
CREATE UNIQUE INDEX drift_findings_held_back ON drift_findings (store_id, sku, version, stream_id)
    WHERE kind = 'held_back';

-- +goose Down
DROP INDEX drift_findings_held_back;
DROP INDEX drift_findings_open_forks;
ALTER TABLE drift_findings DROP COLUMN resolved_run_id;
