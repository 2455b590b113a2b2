//! Spaces.

use serde::{Deserialize, Serialize};

use super::common::{Links, Metadata, ToOne};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Space {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    pub name: String,
    #[serde(default)]
    pub suspended: bool,
    #[serde(default)]
    pub relationships: SpaceRelationships,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceRelationships {
    #[serde(default)]
    pub organization: ToOne,
    #[serde(default)]
    pub quota: ToOne,
}

/// `POST /v3/spaces`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceCreate {
    pub name: String,
    pub relationships: SpaceCreateRelationships,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceCreateRelationships {
    pub organization: ToOne,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn a_space_survives_a_round_trip() {
        let s: Space = round_trip(
            r#"{"guid": "s-1", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z",
                "name": "dev", "suspended": false,
                "relationships": {"organization": {"data": {"guid": "o-1"}}, "quota": {"data": null}},
                "metadata": {"labels": {}, "annotations": {}},
                "links": {"self": {"href": "https://api.example.com/v3/spaces/s-1"},
                          "features": {"href": "https://api.example.com/v3/spaces/s-1/features"},
                          "organization": {"href": "https://api.example.com/v3/organizations/o-1"},
                          "apply_manifest": {"href": "https://api.example.com/v3/spaces/s-1/actions/apply_manifest", "method": "POST"}}}"#,
        );
        assert_eq!(s.relationships.organization.guid(), Some("o-1"));
        let create = SpaceCreate {
            name: "dev".into(),
            relationships: SpaceCreateRelationships { organization: ToOne::of("o-1") },
        };
        assert_eq!(
            serde_json::to_string(&create).expect("json"),
            r#"{"name":"dev","relationships":{"organization":{"data":{"guid":"o-1"}}}}"#
        );
    }
}
