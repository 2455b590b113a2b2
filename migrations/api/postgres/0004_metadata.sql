-- Labels and annotations of every v3 resource, by resource guid.
CREATE TABLE resource_metadata (
    resource_guid TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (resource_guid, kind, key)
);
CREATE INDEX resource_metadata_label ON resource_metadata (kind, key, value);
