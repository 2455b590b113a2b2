//! Builds: staging a package into a droplet.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{Guid, Lifecycle, Links, Metadata, ToOne};

states! {
    BuildState {
        Staging = "STAGING",
        Staged = "STAGED",
        Failed = "FAILED",
    }
}

/// Whether a build may go from `from` to `to`: staging ends once, either way; a staged or failed
/// build never changes again.
pub fn allows(from: BuildState, to: BuildState) -> bool {
    use BuildState::{Failed, Staged, Staging};
    match (from, to) {
        (Staging, Staged | Failed) => true,
        (Staging, Staging) => false,
        (Staged | Failed, _) => false,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Build {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    pub state: BuildState,
    #[serde(default)]
    pub staging_memory_in_mb: i64,
    #[serde(default)]
    pub staging_disk_in_mb: i64,
    #[serde(default)]
    pub staging_log_rate_limit_bytes_per_second: Option<i64>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub lifecycle: Lifecycle,
    #[serde(default)]
    pub package: Guid,
    /// `null` until STAGED.
    #[serde(default)]
    pub droplet: Option<Guid>,
    /// `{guid, name, email}` of the user who staged it.
    #[serde(default)]
    pub created_by: Value,
    #[serde(default)]
    pub relationships: BuildRelationships,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRelationships {
    #[serde(default)]
    pub app: ToOne,
}

/// `POST /v3/builds`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildCreate {
    pub package: Guid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging_memory_in_mb: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging_disk_in_mb: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::{check_spelling, check_table, round_trip};

    /// `services/api` `Build::present` once staged.
    const STAGED: &str = r#"{
        "guid": "b-1", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:42:10Z",
        "state": "STAGED", "staging_memory_in_mb": 1024, "staging_disk_in_mb": 4096,
        "staging_log_rate_limit_bytes_per_second": -1, "error": null,
        "lifecycle": {"type": "buildpack", "data": {"buildpacks": [], "stack": "bookworm"}},
        "package": {"guid": "p-1"}, "droplet": {"guid": "d-1"},
        "created_by": {"guid": "u-1", "name": "admin", "email": "admin"},
        "relationships": {"app": {"data": {"guid": "a-1"}}},
        "metadata": {"labels": {}, "annotations": {}},
        "links": {
            "self": {"href": "https://api.example.com/v3/builds/b-1"},
            "app": {"href": "https://api.example.com/v3/apps/a-1"},
            "droplet": {"href": "https://api.example.com/v3/droplets/d-1"}
        }
    }"#;

    #[test]
    fn builds_round_trip_staged_and_failed() {
        let b: Build = round_trip(STAGED);
        assert_eq!(b.droplet, Some(Guid::new("d-1")));
        let failed = STAGED
            .replace(r#""state": "STAGED""#, r#""state": "FAILED""#)
            .replace(r#""error": null"#, r#""error": "NoAppDetectedError - An app was not successfully detected by any available buildpack""#)
            .replace(r#""droplet": {"guid": "d-1"}"#, r#""droplet": null"#);
        let b: Build = round_trip(&failed);
        assert_eq!(b.state, BuildState::Failed);
        assert!(b.error.as_deref().is_some_and(|e| e.starts_with("NoAppDetectedError")));
    }

    #[test]
    fn a_create_body_names_the_package() {
        let c = BuildCreate { package: Guid::new("p"), ..Default::default() };
        assert_eq!(serde_json::to_string(&c).expect("json"), r#"{"package":{"guid":"p"}}"#);
    }

    #[test]
    fn transition_table() {
        use BuildState::*;
        check_table(BuildState::ALL, &[(Staging, Staged), (Staging, Failed)], allows);
        check_spelling(BuildState::ALL);
    }
}
