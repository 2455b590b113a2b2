//! Droplets: staged apps ready to run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{null_default, Lifecycle, Links, Metadata, ToOne};

states! {
    DropletState {
        AwaitingUpload = "AWAITING_UPLOAD",
        ProcessingUpload = "PROCESSING_UPLOAD",
        Staged = "STAGED",
        Copying = "COPYING",
        Failed = "FAILED",
        Expired = "EXPIRED",
    }
}

/// Whether a droplet may go from `from` to `to`: an upload (from staging, or of a droplet a
/// client made) is processed into STAGED or FAILED — or, refused, back to AWAITING_UPLOAD for
/// another try —, a copy ends the same way, and a STAGED droplet expires when newer ones
/// replace it. FAILED and EXPIRED are final.
pub fn allows(from: DropletState, to: DropletState) -> bool {
    use DropletState::*;
    matches!(
        (from, to),
        (AwaitingUpload, ProcessingUpload | Failed)
            | (ProcessingUpload, Staged | Failed | AwaitingUpload)
            | (Copying, Staged | Failed)
            | (Staged, Expired)
    )
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Droplet {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    pub state: DropletState,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub lifecycle: Lifecycle,
    #[serde(default)]
    pub execution_metadata: String,
    /// `{type: command}`; CC writes `null` before staging has found any.
    #[serde(default, deserialize_with = "null_default")]
    pub process_types: BTreeMap<String, String>,
    #[serde(default)]
    pub checksum: Option<Checksum>,
    #[serde(default)]
    pub buildpacks: Vec<DropletBuildpack>,
    #[serde(default)]
    pub stack: Option<String>,
    /// Docker droplets only.
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub relationships: DropletRelationships,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

impl Droplet {
    /// The guid of the package it was staged from, read from `links.package`.
    pub fn package_guid(&self) -> Option<&str> {
        self.links.get("package").and_then(|l| l.href.rsplit('/').next())
    }
}

/// `{"type": "sha256"|"sha1", "value": ...}` (also a bits package's checksum).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub value: Option<String>,
}

/// A buildpack that took part in staging.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropletBuildpack {
    pub name: String,
    #[serde(default)]
    pub buildpack_name: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub detect_output: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropletRelationships {
    #[serde(default)]
    pub app: ToOne,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::{check_spelling, check_table, round_trip};

    /// `services/api` `Droplet::present` of a staged droplet.
    const DROPLET: &str = r#"{
        "guid": "d-1", "created_at": "2026-11-25T04:42:10Z", "updated_at": "2026-11-25T04:42:10Z",
        "state": "STAGED", "error": null,
        "lifecycle": {"type": "buildpack", "data": {}},
        "execution_metadata": "",
        "process_types": {"web": "python app.py"},
        "checksum": {"type": "sha256", "value": "9f86d081884c7d65"},
        "buildpacks": [{"name": "python_buildpack", "buildpack_name": "python_buildpack", "version": "1.0.0", "detect_output": "python"}],
        "stack": "bookworm", "image": null,
        "relationships": {"app": {"data": {"guid": "a-1"}}},
        "metadata": {"labels": {}, "annotations": {}},
        "links": {
            "self": {"href": "https://api.example.com/v3/droplets/d-1"},
            "package": {"href": "https://api.example.com/v3/packages/p-1"},
            "app": {"href": "https://api.example.com/v3/apps/a-1"},
            "assign_current_droplet": {"href": "https://api.example.com/v3/apps/a-1/relationships/current_droplet", "method": "PATCH"},
            "download": {"href": "https://api.example.com/v3/droplets/d-1/download"}
        }
    }"#;

    #[test]
    fn a_droplet_survives_a_round_trip() {
        let d: Droplet = round_trip(DROPLET);
        assert_eq!(d.package_guid(), Some("p-1"));
        assert_eq!(d.process_types["web"], "python app.py");
        assert_eq!(d.buildpacks[0].name, "python_buildpack");
        let pending: Droplet = serde_json::from_str(
            r#"{"guid":"d","state":"AWAITING_UPLOAD","process_types":null,"checksum":null}"#,
        )
        .expect("lenient");
        assert!(pending.process_types.is_empty());
    }

    #[test]
    fn transition_table() {
        use DropletState::*;
        let allowed = [
            (AwaitingUpload, ProcessingUpload),
            (AwaitingUpload, Failed),
            (ProcessingUpload, Staged),
            (ProcessingUpload, Failed),
            (ProcessingUpload, AwaitingUpload),
            (Copying, Staged),
            (Copying, Failed),
            (Staged, Expired),
        ];
        check_table(DropletState::ALL, &allowed, allows);
        check_spelling(DropletState::ALL);
    }
}

/// `POST /v3/droplets`: a droplet the client will upload, for an app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropletCreate {
    pub relationships: DropletRelationships,
    /// Process types and their commands; none: the uploaded droplet's `staging_info.yml`
    /// start command as `web`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_types: Option<std::collections::BTreeMap<String, String>>,
}

#[cfg(test)]
mod create_tests {
    use super::*;

    #[test]
    fn a_droplet_create_reads_as_cc_takes_it() {
        let c: DropletCreate = serde_json::from_str(
            r#"{"relationships": {"app": {"data": {"guid": "a-1"}}}, "process_types": {"web": "./run"}}"#,
        )
        .expect("parses");
        assert_eq!(c.relationships.app.data.map(|g| g.guid), Some("a-1".into()));
        assert_eq!(c.process_types.expect("types")["web"], "./run");
        assert!(serde_json::from_str::<DropletCreate>(r#"{"process_types": {}}"#).is_err());
    }
}
