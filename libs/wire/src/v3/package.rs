//! Packages: an app's bits or docker image, before staging.

use serde::{Deserialize, Serialize};

use super::common::{Links, Metadata, ToOne};
use super::droplet::Checksum;

states! {
    PackageState {
        AwaitingUpload = "AWAITING_UPLOAD",
        ProcessingUpload = "PROCESSING_UPLOAD",
        Ready = "READY",
        Failed = "FAILED",
        Copying = "COPYING",
        Expired = "EXPIRED",
    }
}

/// Whether a package may go from `from` to `to`: one upload is processed at a time into READY
/// or FAILED, and a rejected upload (a bad zip) leaves the package awaiting another; a copy ends
/// READY or FAILED; a READY package expires when newer ones replace it. FAILED and EXPIRED are
/// final.
pub fn allows(from: PackageState, to: PackageState) -> bool {
    use PackageState::*;
    matches!(
        (from, to),
        (AwaitingUpload, ProcessingUpload)
            | (ProcessingUpload, Ready | Failed | AwaitingUpload)
            | (Copying, Ready | Failed)
            | (Ready, Expired)
    )
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    /// `bits` or `docker`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub data: PackageData,
    pub state: PackageState,
    #[serde(default)]
    pub relationships: PackageRelationships,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

/// Bits: `{checksum, error}`; docker: `{image, username, password}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PackageData {
    Bits {
        checksum: Checksum,
        #[serde(default)]
        error: Option<String>,
    },
    Docker {
        image: String,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<String>,
    },
    #[default]
    Empty,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRelationships {
    #[serde(default)]
    pub app: ToOne,
}

/// `POST /v3/packages` (bits; for docker add `data.image`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageCreate {
    #[serde(rename = "type")]
    pub kind: String,
    pub relationships: PackageRelationships,
}

impl PackageCreate {
    pub fn bits(app: &str) -> Self {
        Self { kind: "bits".into(), relationships: PackageRelationships { app: ToOne::of(app) } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::{check_spelling, check_table, round_trip};

    /// `services/api` `Package::present` of a bits package waiting for its upload.
    const BITS: &str = r#"{
        "guid": "p-1", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z",
        "type": "bits", "data": {"checksum": {"type": "sha256", "value": null}, "error": null},
        "state": "AWAITING_UPLOAD",
        "relationships": {"app": {"data": {"guid": "a-1"}}},
        "metadata": {"labels": {}, "annotations": {}},
        "links": {
            "self": {"href": "https://api.example.com/v3/packages/p-1"},
            "upload": {"href": "https://api.example.com/v3/packages/p-1/upload", "method": "POST"},
            "download": {"href": "https://api.example.com/v3/packages/p-1/download", "method": "GET"},
            "app": {"href": "https://api.example.com/v3/apps/a-1"}
        }
    }"#;

    #[test]
    fn bits_and_docker_packages_round_trip() {
        let p: Package = round_trip(BITS);
        assert!(matches!(p.data, PackageData::Bits { .. }));
        let docker = BITS
            .replace(r#""type": "bits""#, r#""type": "docker""#)
            .replace(
                r#"{"checksum": {"type": "sha256", "value": null}, "error": null}"#,
                r#"{"image": "nginx:1", "username": null, "password": null}"#,
            )
            .replace("AWAITING_UPLOAD", "READY");
        let p: Package = round_trip(&docker);
        assert_eq!(p.state, PackageState::Ready);
        assert!(matches!(p.data, PackageData::Docker { ref image, .. } if image == "nginx:1"));
    }

    #[test]
    fn a_create_body_is_bits_for_an_app() {
        assert_eq!(
            serde_json::to_string(&PackageCreate::bits("a")).expect("json"),
            r#"{"type":"bits","relationships":{"app":{"data":{"guid":"a"}}}}"#
        );
    }

    #[test]
    fn transition_table() {
        use PackageState::*;
        let allowed = [
            (AwaitingUpload, ProcessingUpload),
            (ProcessingUpload, Ready),
            (ProcessingUpload, Failed),
            (ProcessingUpload, AwaitingUpload),
            (Copying, Ready),
            (Copying, Failed),
            (Ready, Expired),
        ];
        check_table(PackageState::ALL, &allowed, allows);
        check_spelling(PackageState::ALL);
    }
}
