//! The documents clients discover the platform from, without a token: `GET /` (where the
//! v3 API, the token issuer and the log services are), `GET /v3` (a link per resource) and
//! `GET /v3/info`.

use serde::{Deserialize, Serialize};

use super::common::{Link, Links};

/// `GET /`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    #[serde(default)]
    pub links: RootLinks,
}

/// The root's links; services the platform does not offer are `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RootLinks {
    #[serde(rename = "self")]
    pub this: Option<Link>,
    pub cloud_controller_v3: Option<VersionedLink>,
    pub network_policy_v0: Option<Link>,
    pub network_policy_v1: Option<Link>,
    pub login: Option<Link>,
    pub uaa: Option<Link>,
    pub credhub: Option<Link>,
    pub routing: Option<Link>,
    pub logging: Option<Link>,
    pub log_cache: Option<Link>,
    pub log_stream: Option<Link>,
    pub app_ssh: Option<SshLink>,
}

/// `links.app_ssh`: where the SSH endpoint listens (`host:port`, no scheme), its host key's
/// fingerprint and the client id to ask the token issuer for a one-time code with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshLink {
    #[serde(default)]
    pub href: String,
    #[serde(default)]
    pub meta: SshMeta,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshMeta {
    /// `SHA256:<base64 without padding>`, as OpenSSH prints it.
    #[serde(default)]
    pub host_key_fingerprint: String,
    #[serde(default)]
    pub oauth_client: String,
}

/// A link with the version of what it leads to (`cloud_controller_v3`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionedLink {
    #[serde(default)]
    pub href: String,
    #[serde(default)]
    pub meta: Version,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    #[serde(default)]
    pub version: String,
}

/// `GET /v3`: a link per resource collection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct V3Root {
    #[serde(default)]
    pub links: Links,
}

/// `GET /v3/info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Info {
    pub build: String,
    pub cli_version: CliVersion,
    pub custom: serde_json::Map<String, serde_json::Value>,
    pub description: String,
    pub name: String,
    pub version: i64,
    pub osbapi_version: String,
    pub links: Links,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CliVersion {
    pub minimum: String,
    pub recommended: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn the_root_documents_survive_a_round_trip() {
        let root: Root = round_trip(
            r#"{"links": {"self": {"href": "https://api.example.com"},
                "cloud_controller_v3": {"href": "https://api.example.com/v3", "meta": {"version": "3.180.0"}},
                "network_policy_v0": null, "network_policy_v1": null,
                "login": {"href": "https://api.example.com"}, "uaa": {"href": "https://api.example.com"},
                "credhub": null, "routing": null, "logging": {"href": "wss://logs.example.com"},
                "log_cache": {"href": "https://logs.example.com"}, "log_stream": {"href": "https://logs.example.com"},
                "app_ssh": null}}"#,
        );
        let with_ssh: Root = round_trip(
            r#"{"links": {"self": null, "cloud_controller_v3": null, "network_policy_v0": null,
                "network_policy_v1": null, "login": null, "uaa": null, "credhub": null,
                "routing": null, "logging": null, "log_cache": null, "log_stream": null,
                "app_ssh": {"href": "ssh.example.com:2222", "meta": {
                    "host_key_fingerprint": "SHA256:abc", "oauth_client": "ssh-proxy"}}}}"#,
        );
        assert_eq!(
            with_ssh.links.app_ssh.map(|l| l.meta.oauth_client).as_deref(),
            Some("ssh-proxy")
        );
        assert_eq!(
            root.links.cloud_controller_v3.map(|l| l.meta.version).as_deref(),
            Some("3.180.0")
        );
        round_trip::<V3Root>(
            r#"{"links": {"self": {"href": "https://api/v3"}, "apps": {"href": "https://api/v3/apps"}}}"#,
        );
        round_trip::<Info>(
            r#"{"build": "", "cli_version": {"minimum": "", "recommended": ""}, "custom": {},
                "description": "paas", "name": "paas", "version": 0, "osbapi_version": "",
                "links": {"self": {"href": "https://api/v3/info"}, "support": {"href": ""}}}"#,
        );
    }
}
