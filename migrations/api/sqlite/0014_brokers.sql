-- Managed services: service brokers (OSBAPI v2) with the offerings and plans of their
-- catalogs, plan visibility, managed service instances with their last operation, and
-- bindings of two kinds: `app` and `key` (service keys), whose credentials come from the
-- broker (empty: the instance's, for user-provided instances).
CREATE TABLE service_brokers (
    guid TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    username TEXT NOT NULL,
    password TEXT NOT NULL,
    -- '' for a global broker; else the space whose developers own it.
    space_guid TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE service_offerings (
    guid TEXT PRIMARY KEY NOT NULL,
    broker_guid TEXT NOT NULL REFERENCES service_brokers (guid),
    catalog_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    bindable BIGINT NOT NULL DEFAULT 1,
    plan_updateable BIGINT NOT NULL DEFAULT 0,
    instances_retrievable BIGINT NOT NULL DEFAULT 0,
    bindings_retrievable BIGINT NOT NULL DEFAULT 0,
    shareable BIGINT NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '[]',
    requires TEXT NOT NULL DEFAULT '[]',
    -- The catalog's `metadata` object.
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (broker_guid, catalog_id)
);
CREATE TABLE service_plans (
    guid TEXT PRIMARY KEY NOT NULL,
    offering_guid TEXT NOT NULL REFERENCES service_offerings (guid),
    catalog_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    free BIGINT NOT NULL DEFAULT 1,
    bindable BIGINT NOT NULL DEFAULT 1,
    plan_updateable BIGINT NOT NULL DEFAULT 1,
    extra TEXT NOT NULL DEFAULT '{}',
    -- admin | public | organization | space (plans of space-scoped brokers).
    visibility TEXT NOT NULL DEFAULT 'admin',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (offering_guid, catalog_id)
);
CREATE TABLE service_plan_orgs (
    plan_guid TEXT NOT NULL REFERENCES service_plans (guid) ON DELETE CASCADE,
    org_guid TEXT NOT NULL,
    PRIMARY KEY (plan_guid, org_guid)
);
ALTER TABLE service_instances ADD COLUMN kind TEXT NOT NULL DEFAULT 'user-provided';
ALTER TABLE service_instances ADD COLUMN plan_guid TEXT NOT NULL DEFAULT '';
ALTER TABLE service_instances ADD COLUMN parameters TEXT NOT NULL DEFAULT '{}';
ALTER TABLE service_instances ADD COLUMN dashboard_url TEXT NOT NULL DEFAULT '';
-- The last operation of a managed instance: type, state, description, the broker's
-- operation to poll with, and when it last changed ('' type: none).
ALTER TABLE service_instances ADD COLUMN op_type TEXT NOT NULL DEFAULT '';
ALTER TABLE service_instances ADD COLUMN op_state TEXT NOT NULL DEFAULT '';
ALTER TABLE service_instances ADD COLUMN op_description TEXT NOT NULL DEFAULT '';
ALTER TABLE service_instances ADD COLUMN op_broker TEXT NOT NULL DEFAULT '';
ALTER TABLE service_instances ADD COLUMN op_updated_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX service_instances_plan ON service_instances (plan_guid);

CREATE TABLE service_bindings_v2 (
    guid TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL DEFAULT 'app',
    name TEXT NOT NULL DEFAULT '',
    app_guid TEXT NOT NULL DEFAULT '',
    instance_guid TEXT NOT NULL,
    credentials TEXT NOT NULL DEFAULT '',
    parameters TEXT NOT NULL DEFAULT '{}',
    op_type TEXT NOT NULL DEFAULT 'create',
    op_state TEXT NOT NULL DEFAULT 'succeeded',
    op_description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO service_bindings_v2 (guid, name, app_guid, instance_guid, created_at, updated_at)
    SELECT guid, name, app_guid, instance_guid, created_at, updated_at FROM service_bindings;
DROP TABLE service_bindings;
ALTER TABLE service_bindings_v2 RENAME TO service_bindings;
CREATE INDEX service_bindings_instance ON service_bindings (instance_guid);
CREATE UNIQUE INDEX service_bindings_app ON service_bindings (app_guid, instance_guid) WHERE kind = 'app';
CREATE UNIQUE INDEX service_bindings_key ON service_bindings (instance_guid, name) WHERE kind = 'key';
