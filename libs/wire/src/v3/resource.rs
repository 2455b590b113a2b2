//! Resource matching (`POST /v3/resource_matches`): the files a client
//! need not upload because the platform has them, and the `resources` part of a package upload.

use serde::{Deserialize, Serialize};

/// One file of an app, by content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resource {
    /// Relative to the app's folder.
    pub path: String,
    /// Octal permission bits (`"644"`).
    #[serde(default)]
    pub mode: String,
    pub checksum: ResourceChecksum,
    #[serde(default)]
    pub size_in_bytes: u64,
}

/// `{"value": <SHA-1 hex>}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceChecksum {
    pub value: String,
}

/// The body of the request and of its answer (the matched subset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceMatches {
    #[serde(default)]
    pub resources: Vec<Resource>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn matches_round_trip() {
        let m: ResourceMatches = round_trip(
            r#"{"resources":[{"path":"app.py","mode":"755",
                "checksum":{"value":"6a3f2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a"},"size_in_bytes":65536}]}"#,
        );
        assert_eq!(m.resources[0].size_in_bytes, 65536);
    }
}
