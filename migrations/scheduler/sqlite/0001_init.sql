-- Desired long-running processes, as the api wants them.
CREATE TABLE desired_lrps (
    process_guid TEXT PRIMARY KEY NOT NULL,
    domain TEXT NOT NULL,
    log_guid TEXT NOT NULL,
    instances BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX desired_lrps_domain ON desired_lrps (domain);
CREATE INDEX desired_lrps_log_guid ON desired_lrps (log_guid);

-- One row per instance index and presence (ORDINARY 0, EVACUATING 1, SUSPECT 2).
CREATE TABLE actual_lrps (
    process_guid TEXT NOT NULL,
    instance_index BIGINT NOT NULL,
    presence BIGINT NOT NULL,
    domain TEXT NOT NULL,
    instance_guid TEXT NOT NULL,
    cell_id TEXT NOT NULL,
    state TEXT NOT NULL,
    address TEXT NOT NULL,
    instance_address TEXT NOT NULL,
    ports TEXT NOT NULL,
    crash_count BIGINT NOT NULL,
    crash_reason TEXT NOT NULL,
    placement_error TEXT NOT NULL,
    since BIGINT NOT NULL,
    routable BIGINT NOT NULL,
    PRIMARY KEY (process_guid, instance_index, presence)
);
CREATE INDEX actual_lrps_cell ON actual_lrps (cell_id);

-- Cells and their last heartbeat.
CREATE TABLE cells (
    cell_id TEXT PRIMARY KEY NOT NULL,
    presence TEXT NOT NULL,
    last_seen BIGINT NOT NULL
);
