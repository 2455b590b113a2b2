//! Stacks and admin buildpacks.

use serde::{Deserialize, Serialize};

use super::common::{Links, Metadata};

states! {
    /// An admin buildpack's state: created without its zip, then READY once one is stored.
    BuildpackState {
        AwaitingUpload = "AWAITING_UPLOAD",
        Ready = "READY",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stack {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_rootfs_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_rootfs_image: Option<String>,
    #[serde(default)]
    pub default: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buildpack {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    pub name: String,
    /// `null`: any stack.
    #[serde(default)]
    pub stack: Option<String>,
    /// `AWAITING_UPLOAD` or `READY` ([`BuildpackState`]); a string, so an answer of a CC with
    /// other states still reads.
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub position: i64,
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub locked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

/// `POST /v3/buildpacks` and `PATCH /v3/buildpacks/:guid`: only what is given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn stacks_and_buildpacks_round_trip() {
        round_trip::<Stack>(
            r#"{"guid": "bookworm", "created_at": "1970-01-01T00:00:00Z", "updated_at": "1970-01-01T00:00:00Z",
                "name": "bookworm", "description": "Debian 12 (bookworm) with runtimes from Debian packages",
                "build_rootfs_image": "bookworm", "run_rootfs_image": "bookworm", "default": true, "state": "ACTIVE",
                "metadata": {"labels": {}, "annotations": {}},
                "links": {"self": {"href": "https://api.example.com/v3/stacks/bookworm"}}}"#,
        );
        let b: Buildpack = round_trip(
            r#"{"guid": "bp-1", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z",
                "name": "python_buildpack", "stack": null, "state": "READY", "filename": "python_buildpack.zip",
                "position": 1, "enabled": true, "locked": false, "lifecycle": "buildpack",
                "metadata": {"labels": {}, "annotations": {}},
                "links": {"self": {"href": "https://api.example.com/v3/buildpacks/bp-1"},
                          "upload": {"href": "https://api.example.com/v3/buildpacks/bp-1/upload", "method": "POST"}}}"#,
        );
        assert_eq!((b.position, b.enabled, b.locked), (1, true, false));
        assert_eq!(BuildpackState::parse(&b.state), Some(BuildpackState::Ready));
        crate::v3::testing::check_spelling(BuildpackState::ALL);
        let patch = BuildpackChange { enabled: Some(false), ..Default::default() };
        assert_eq!(serde_json::to_string(&patch).expect("json"), r#"{"enabled":false}"#);
    }
}
