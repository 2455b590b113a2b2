//! Revisions (`/v3/revisions`, `/v3/apps/:guid/revisions`): what an app ran at a deployment —
//! droplet, process commands and environment — numbered per app, for rollback.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{Guid, Links, Metadata, ToOne};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    pub guid: String,
    pub version: i64,
    pub droplet: Guid,
    #[serde(default)]
    pub processes: BTreeMap<String, RevisionProcess>,
    #[serde(default)]
    pub sidecars: Vec<Value>,
    #[serde(default)]
    pub description: String,
    /// Whether its droplet is still there to deploy.
    #[serde(default)]
    pub deployable: bool,
    #[serde(default)]
    pub relationships: RevisionRelationships,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionProcess {
    #[serde(default)]
    pub command: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionRelationships {
    #[serde(default)]
    pub app: ToOne,
}

/// `GET /v3/revisions/:guid/environment_variables`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionEnv {
    #[serde(default)]
    pub var: BTreeMap<String, String>,
    #[serde(default)]
    pub links: Links,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn a_revision_round_trips() {
        let r: Revision = round_trip(
            r#"{"guid": "r-1", "version": 3, "droplet": {"guid": "dr-1"},
                "processes": {"web": {"command": "python app.py"}, "worker": {"command": null}},
                "sidecars": [], "description": "Rolled back to revision 1.", "deployable": true,
                "relationships": {"app": {"data": {"guid": "a-1"}}},
                "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z",
                "metadata": {"labels": {}, "annotations": {}},
                "links": {"self": {"href": "https://api.example.com/v3/revisions/r-1"}}}"#,
        );
        assert_eq!(r.processes["web"].command.as_deref(), Some("python app.py"));
    }
}
