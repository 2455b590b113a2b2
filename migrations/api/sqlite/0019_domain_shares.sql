-- Private domains shared with other orgs (`relationships/shared_organizations`,
-- `cf share-private-domain`): those orgs' spaces may make routes on them.
CREATE TABLE domain_shares (
    domain_guid TEXT NOT NULL,
    org_guid TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (domain_guid, org_guid)
);
CREATE INDEX domain_shares_org ON domain_shares (org_guid);
