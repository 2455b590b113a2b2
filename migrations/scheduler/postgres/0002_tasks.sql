-- One-off tasks: PENDING until placed on a cell, RUNNING there, COMPLETED when it reported
-- (or was lost or cancelled); a COMPLETED task stays until the api took its callback.
CREATE TABLE tasks (
    task_guid TEXT PRIMARY KEY NOT NULL,
    domain TEXT NOT NULL,
    state TEXT NOT NULL,
    cell_id TEXT NOT NULL,
    failed BIGINT NOT NULL,
    failure_reason TEXT NOT NULL,
    placement_error TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX tasks_state ON tasks (state);
