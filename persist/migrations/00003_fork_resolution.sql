-- Forks after a Redis failover: the persister holds back every event of an
-- item from its first fork on and records each one in drift_findings
-- ('fork': the ledger has another event of that version; 'held_back': a
-- later event of the forked item). The reconciler merges them into the
-- ledger and marks them resolved by its run.

-- +goose Up
ALTER TABLE drift_findings ADD COLUMN resolved_run_id bigint NULL;

-- Forks recorded before this migration were not held back: their item's
-- later events may be in the ledger already, so merging them now would
-- count those twice. They are marked resolved by "run 0" (no run): a
-- person reviews them (SELECT * FROM drift_findings WHERE resolved_run_id = 0).
UPDATE drift_findings SET resolved_run_id = 0 WHERE kind = 'fork' AND run_id IS NULL;

-- The unresolved forks of an item: read by the persister for every batch
-- and by the reconciler; small, since forks are rare and resolved soon.
-- A run's findings (run_id set) are reports, not records of forks: a run
-- reports every item with unresolved forks under kind 'fork' too.
CREATE INDEX drift_findings_open_forks ON drift_findings (store_id, sku)
    WHERE kind IN ('fork', 'held_back') AND run_id IS NULL AND resolved_run_id IS NULL;

-- A fork or held-back event re-delivered after a crash is recorded once;
-- runs may report the same item's fork again and again.
DROP INDEX drift_findings_fork;
CREATE UNIQUE INDEX drift_findings_fork ON drift_findings (store_id, sku, version, stream_id)
    WHERE kind = 'fork' AND run_id IS NULL;
CREATE UNIQUE INDEX drift_findings_held_back ON drift_findings (store_id, sku, version, stream_id)
    WHERE kind = 'held_back' AND run_id IS NULL;

-- +goose Down
DROP INDEX drift_findings_held_back;
DROP INDEX drift_findings_fork;
CREATE UNIQUE INDEX drift_findings_fork ON drift_findings (store_id, sku, version, stream_id)
    WHERE kind = 'fork';
DROP INDEX drift_findings_open_forks;
ALTER TABLE drift_findings DROP COLUMN resolved_run_id;
