-- One-off tasks of an app, numbered per app (`sequence_id`), run by the scheduler once.
CREATE TABLE tasks (
    guid TEXT PRIMARY KEY NOT NULL,
    app_guid TEXT NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    sequence_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    command TEXT NOT NULL,
    state TEXT NOT NULL,
    memory_mb BIGINT NOT NULL,
    disk_mb BIGINT NOT NULL,
    log_rate BIGINT NOT NULL,
    droplet_guid TEXT NOT NULL,
    failure_reason TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (app_guid, sequence_id)
);
CREATE INDEX tasks_state ON tasks (state);
