-- Rolling and canary deployments of an app's web process, and the revisions they deploy.
-- A deployment's new instances run as the web process's current version; the versions it
-- replaces are listed in `retiring` (JSON: [{"lrp_guid", "instances"}], oldest first) with the
-- instances each still has, until the rollout finalizes.
CREATE TABLE deployments (
    guid TEXT PRIMARY KEY NOT NULL,
    app_guid TEXT NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    status_value TEXT NOT NULL,
    status_reason TEXT NOT NULL,
    strategy TEXT NOT NULL,
    droplet_guid TEXT NOT NULL,
    previous_droplet_guid TEXT NOT NULL,
    revision_guid TEXT NOT NULL,
    previous_revision_guid TEXT NOT NULL,
    process_guid TEXT NOT NULL,
    previous_version TEXT NOT NULL,
    options TEXT NOT NULL,
    target_instances BIGINT NOT NULL,
    new_instances BIGINT NOT NULL,
    canary_step BIGINT NOT NULL,
    retiring TEXT NOT NULL,
    last_healthy BIGINT NOT NULL,
    last_status_change BIGINT NOT NULL,
    error TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX deployments_app ON deployments (app_guid);
CREATE INDEX deployments_status ON deployments (status_value);

-- What an app ran at a deployment: droplet, process commands (JSON {type: command|null}) and
-- environment (JSON object), numbered per app from 1.
CREATE TABLE revisions (
    guid TEXT PRIMARY KEY NOT NULL,
    app_guid TEXT NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    droplet_guid TEXT NOT NULL,
    processes TEXT NOT NULL,
    env TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (app_guid, version)
);
