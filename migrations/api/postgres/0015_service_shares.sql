-- Managed service instances shared into other spaces (`relationships/shared_spaces`): apps
-- of those spaces may bind them, their users see them.
CREATE TABLE service_instance_shares (
    instance_guid TEXT NOT NULL,
    space_guid TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (instance_guid, space_guid)
);
CREATE INDEX service_instance_shares_space ON service_instance_shares (space_guid);
