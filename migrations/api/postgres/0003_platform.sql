-- Tenancy, apps and everything a push creates. Times are Unix milliseconds; flags are 0/1;
-- JSON documents are TEXT. Empty string, not NULL, marks "none" in unique keys.
CREATE TABLE org_quotas (
    guid TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    total_memory_mb BIGINT,
    instance_memory_mb BIGINT,
    total_instances BIGINT,
    total_routes BIGINT,
    total_apps BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE organizations (
    guid TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    suspended BIGINT NOT NULL,
    quota_guid TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE spaces (
    guid TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    org_guid TEXT NOT NULL REFERENCES organizations (guid),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (org_guid, name)
);
CREATE TABLE roles (
    guid TEXT PRIMARY KEY NOT NULL,
    type TEXT NOT NULL,
    user_guid TEXT NOT NULL,
    org_guid TEXT NOT NULL,
    space_guid TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (type, user_guid, org_guid, space_guid)
);
CREATE INDEX roles_user ON roles (user_guid);
CREATE TABLE domains (
    guid TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    internal BIGINT NOT NULL,
    org_guid TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE apps (
    guid TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    space_guid TEXT NOT NULL REFERENCES spaces (guid),
    state TEXT NOT NULL,
    lifecycle_type TEXT NOT NULL,
    buildpacks TEXT NOT NULL,
    stack TEXT NOT NULL,
    image TEXT NOT NULL,
    droplet_guid TEXT NOT NULL,
    env TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (space_guid, name_key)
);
CREATE INDEX apps_created ON apps (created_at, guid);
CREATE TABLE processes (
    guid TEXT PRIMARY KEY NOT NULL,
    app_guid TEXT NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    type TEXT NOT NULL,
    command TEXT,
    instances BIGINT NOT NULL,
    memory_mb BIGINT NOT NULL,
    disk_mb BIGINT NOT NULL,
    log_rate BIGINT NOT NULL,
    health_check TEXT NOT NULL,
    version TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (app_guid, type)
);
CREATE TABLE packages (
    guid TEXT PRIMARY KEY NOT NULL,
    app_guid TEXT NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    type TEXT NOT NULL,
    state TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    error TEXT NOT NULL,
    image TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX packages_app ON packages (app_guid);
CREATE TABLE builds (
    guid TEXT PRIMARY KEY NOT NULL,
    app_guid TEXT NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    package_guid TEXT NOT NULL,
    droplet_guid TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT NOT NULL,
    buildpacks TEXT NOT NULL,
    stack TEXT NOT NULL,
    staging_memory_mb BIGINT NOT NULL,
    staging_disk_mb BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    deadline BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX builds_app ON builds (app_guid);
CREATE INDEX builds_state ON builds (state, deadline);
CREATE TABLE droplets (
    guid TEXT PRIMARY KEY NOT NULL,
    app_guid TEXT NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    package_guid TEXT NOT NULL,
    build_guid TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    buildpacks TEXT NOT NULL,
    process_types TEXT NOT NULL,
    execution_metadata TEXT NOT NULL,
    stack TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX droplets_app ON droplets (app_guid);
CREATE TABLE routes (
    guid TEXT PRIMARY KEY NOT NULL,
    host TEXT NOT NULL,
    path TEXT NOT NULL,
    port BIGINT NOT NULL,
    domain_guid TEXT NOT NULL REFERENCES domains (guid),
    space_guid TEXT NOT NULL REFERENCES spaces (guid),
    loadbalancing TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (host, domain_guid, path, port)
);
CREATE TABLE route_destinations (
    guid TEXT PRIMARY KEY NOT NULL,
    route_guid TEXT NOT NULL REFERENCES routes (guid) ON DELETE CASCADE,
    app_guid TEXT NOT NULL REFERENCES apps (guid) ON DELETE CASCADE,
    process_type TEXT NOT NULL,
    port BIGINT NOT NULL,
    protocol TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (route_guid, app_guid, process_type, port)
);
CREATE INDEX route_destinations_app ON route_destinations (app_guid);
CREATE TABLE buildpacks (
    guid TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    stack TEXT NOT NULL,
    position BIGINT NOT NULL,
    enabled BIGINT NOT NULL,
    locked BIGINT NOT NULL,
    filename TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (name, stack)
);
CREATE TABLE jobs (
    guid TEXT PRIMARY KEY NOT NULL,
    operation TEXT NOT NULL,
    state TEXT NOT NULL,
    errors TEXT NOT NULL,
    warnings TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_guid TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE audit_events (
    guid TEXT PRIMARY KEY NOT NULL,
    type TEXT NOT NULL,
    actor_guid TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    target_guid TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_name TEXT NOT NULL,
    data TEXT NOT NULL,
    space_guid TEXT NOT NULL,
    org_guid TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_events_target ON audit_events (target_guid, created_at);
CREATE INDEX audit_events_created ON audit_events (created_at);
