-- A reconciliation run can be cancelled from any process
-- (POST /v1/admin/reconcile/{run}/cancel): the request is recorded on the
-- run, and the process running it, which polls its run's row, stops.

-- +goose Up
ALTER TABLE reconciliation_runs ADD COLUMN cancel_requested_at timestamptz;

-- +goose Down
ALTER TABLE reconciliation_runs DROP COLUMN cancel_requested_at;
