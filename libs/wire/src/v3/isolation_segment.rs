//! Isolation segments (`/v3/isolation_segments`) and the relationships orgs and spaces have to
//! them. Every cell here serves the one `shared` segment every org is entitled to.

use serde::{Deserialize, Serialize};

use super::common::{Guid, Links, Metadata};

/// CC's guid of the shared segment, the same on every Cloud Foundry.
pub const SHARED_GUID: &str = "933b4c58-120b-499a-b85d-4b6fc9e2903b";
pub const SHARED_NAME: &str = "shared";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsolationSegment {
    pub guid: String,
    pub name: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

/// `GET /v3/organizations/:guid/relationships/default_isolation_segment` and
/// `GET /v3/spaces/:guid/relationships/isolation_segment`: `data` is `null` when none is set
/// (apps then run in the shared segment).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsolationSegmentRelationship {
    pub data: Option<Guid>,
    #[serde(default)]
    pub links: Links,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn segments_and_their_relationships_read_as_cc_renders_them() {
        let s: IsolationSegment = round_trip(
            r#"{"guid": "933b4c58-120b-499a-b85d-4b6fc9e2903b", "name": "shared",
                "created_at": "2026-12-05T08:00:00Z", "updated_at": "2026-12-05T08:00:00Z",
                "metadata": {"labels": {}, "annotations": {}},
                "links": {"self": {"href": "https://api.example.com/v3/isolation_segments/933b4c58-120b-499a-b85d-4b6fc9e2903b"}}}"#,
        );
        assert_eq!(s.guid, SHARED_GUID);
        let none: IsolationSegmentRelationship = round_trip(
            r#"{"data": null, "links": {"self": {"href": "https://api.example.com/v3/spaces/s/relationships/isolation_segment"}}}"#,
        );
        assert_eq!(none.data, None);
    }
}
