-- Route services: a route bound to a user-provided service instance with a route_service_url.
-- A route has at most one binding; the URL is read from the instance when the route is sent,
-- so a later change of the instance's URL takes effect. Labels and annotations live in
-- resource_metadata like every resource's.
CREATE TABLE service_route_bindings (
    guid TEXT PRIMARY KEY NOT NULL,
    route_guid TEXT NOT NULL UNIQUE REFERENCES routes (guid) ON DELETE CASCADE,
    service_instance_guid TEXT NOT NULL REFERENCES service_instances (guid),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX service_route_bindings_instance ON service_route_bindings (service_instance_guid);
