-- User-provided service instances and their bindings to apps (credentials as JSON text).
CREATE TABLE service_instances (
    guid TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    space_guid TEXT NOT NULL,
    credentials TEXT NOT NULL DEFAULT '{}',
    tags TEXT NOT NULL DEFAULT '[]',
    syslog_drain_url TEXT NOT NULL DEFAULT '',
    route_service_url TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (space_guid, name)
);
CREATE TABLE service_bindings (
    guid TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    app_guid TEXT NOT NULL,
    instance_guid TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (app_guid, instance_guid)
);
CREATE INDEX service_bindings_instance ON service_bindings (instance_guid);
