//! Organizations.

use serde::{Deserialize, Serialize};

use super::common::{Links, Metadata, ToOne};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    pub name: String,
    #[serde(default)]
    pub suspended: bool,
    #[serde(default)]
    pub relationships: OrganizationRelationships,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationRelationships {
    #[serde(default)]
    pub quota: ToOne,
}

/// `POST /v3/organizations`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationCreate {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn an_organization_survives_a_round_trip() {
        let o: Organization = round_trip(
            r#"{"guid": "o-1", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z",
                "name": "acme", "suspended": false,
                "relationships": {"quota": {"data": {"guid": "q-1"}}},
                "metadata": {"labels": {}, "annotations": {}},
                "links": {"self": {"href": "https://api.example.com/v3/organizations/o-1"},
                          "domains": {"href": "https://api.example.com/v3/organizations/o-1/domains"},
                          "default_domain": {"href": "https://api.example.com/v3/organizations/o-1/domains/default"},
                          "quota": {"href": "https://api.example.com/v3/organization_quotas/q-1"}}}"#,
        );
        assert_eq!(o.relationships.quota.guid(), Some("q-1"));
    }
}
