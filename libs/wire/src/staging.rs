//! Staging: the request the api publishes on `staging.request`, the claim a stager makes (and
//! repeats as its heartbeat) before and while it stages, and the result it reports back, over
//! the api's internal HTTP API.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagingRequest {
    pub build_guid: String,
    pub app_guid: String,
    pub package_guid: String,
    /// Internal URL to download the package zip.
    pub package_url: String,
    /// Buildpacks in order. With `skip_detect` they all run (supply..., final); otherwise each
    /// one's `bin/detect` runs in this order and the first that passes is used alone.
    pub buildpacks: Vec<BuildpackRef>,
    pub skip_detect: bool,
    pub stack: String,
    pub memory_mb: u64,
    pub disk_mb: u64,
    pub timeout_secs: u64,
    /// User env vars, VCAP_APPLICATION, VCAP_SERVICES, MEMORY_LIMIT and the staging group.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Internal URL to `PUT` the droplet `.tgz` to.
    pub droplet_upload_url: String,
    /// Internal URL to `POST` the [`StagingResult`] to.
    pub completion_url: String,
    /// Internal URL to `POST` a [`StagingClaim`] to: before staging (the first claim wins, a
    /// 409 means another stager has the build or it is no longer wanted) and every heartbeat
    /// while staging (a 409 means stop). Empty from an api without claims: stage unclaimed.
    #[serde(default)]
    pub claim_url: String,
}

/// Body of `POST /internal/v1/builds/:g/claim`: the stager claiming (or heartbeating) a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagingClaim {
    /// The claiming stager process (a guid it takes at start).
    pub stager_id: String,
}

/// Body of `staging.cache.delete`: the buildpack cache every stager keeps for an app, or, with
/// no app, all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackCacheDelete {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_guid: Option<String>,
}

/// An admin buildpack as the stager downloads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackRef {
    /// Buildpack name (`staticfile_buildpack`, `python_buildpack`, ...).
    pub name: String,
    /// Stable key for caches: name plus content checksum.
    pub key: String,
    /// Internal URL of the buildpack zip.
    pub url: String,
    /// Hex SHA-256 of that zip.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagingResult {
    pub build_guid: String,
    #[serde(flatten)]
    pub outcome: StagingOutcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StagingOutcome {
    Staged(Staged),
    Failed(StagingFailure),
}

/// What a successful staging produced (the droplet itself was uploaded before this is sent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Staged {
    pub droplet_sha256: String,
    pub droplet_size: u64,
    pub detected_buildpack: String,
    pub buildpacks: Vec<StagedBuildpack>,
    /// `{web: "<command>"}` from the Procfile or the buildpack's `bin/release`.
    pub process_types: BTreeMap<String, String>,
    #[serde(default)]
    pub execution_metadata: String,
    /// Digest of the OCI image manifest recorded for this droplet, when one was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedBuildpack {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub detect_output: String,
}

/// Why staging failed; `error_id` is the CF error name (`NoAppDetectedError`,
/// `BuildpackCompileFailed`, `BuildpackReleaseFailed`, `StagingTimeExpired`,
/// `InsufficientResources`, `StagingError`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagingFailure {
    pub error_id: String,
    pub message: String,
}

impl StagingFailure {
    /// The build's `error` string as CF shows it: `"<error_id> - <message>"`.
    pub fn build_error(&self) -> String {
        format!("{} - {}", self.error_id, self.message)
    }
}

/// The api's answer to a droplet upload: what it stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropletStored {
    pub sha256: String,
    pub size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_is_tagged_by_status() {
        let r = StagingResult {
            build_guid: "b".into(),
            outcome: StagingOutcome::Failed(StagingFailure {
                error_id: "NoAppDetectedError".into(),
                message: "An app was not successfully detected by any available buildpack".into(),
            }),
        };
        let v = serde_json::to_value(&r).expect("serialize");
        assert_eq!(v["status"], "failed");
        assert_eq!(v["error_id"], "NoAppDetectedError");
        let back: StagingResult = serde_json::from_value(v).expect("parse");
        assert_eq!(back, r);
    }
}
