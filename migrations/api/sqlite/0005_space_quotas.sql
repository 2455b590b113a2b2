-- Space quotas: bounds inside one org, applied to some of its spaces ('' = none).
CREATE TABLE space_quotas (
    guid TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    org_guid TEXT NOT NULL,
    total_memory_mb BIGINT,
    instance_memory_mb BIGINT,
    total_instances BIGINT,
    total_routes BIGINT,
    total_apps BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (org_guid, name)
);
ALTER TABLE spaces ADD COLUMN quota_guid TEXT NOT NULL DEFAULT '';
