//! Serde types of a version-1 manifest. Every known key accepts its hyphen and underscore
//! spelling; output uses the spelling of CC's manifest presenter (`disk_quota`,
//! `health-check-type`, ...). Unknown keys land in `extra` and are written back unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_yaml::Value;

/// Unknown keys, preserved for round trips.
pub type Extra = BTreeMap<String, Value>;

/// A whole manifest file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Value>,
    #[serde(default)]
    pub applications: Vec<AppManifest>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One entry of `applications`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppManifest {
    #[serde(default)]
    pub name: String,
    /// CLI only: the directory or zip to push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, deserialize_with = "scalar", skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(
        rename = "disk_quota",
        alias = "disk-quota",
        default,
        deserialize_with = "scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub disk_quota: Option<String>,
    #[serde(
        rename = "log-rate-limit-per-second",
        alias = "log_rate_limit_per_second",
        default,
        deserialize_with = "scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub log_rate_limit_per_second: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<i64>,
    /// Deprecated single buildpack (`default`/`null` mean auto-detect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildpack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildpacks: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<String>,
    /// `Some(None)` is an explicit `command: null` (reset to the detected command).
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub command: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<RouteEntry>>,
    #[serde(
        rename = "default-route",
        alias = "default_route",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub default_route: Option<bool>,
    #[serde(
        rename = "random-route",
        alias = "random_route",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub random_route: Option<bool>,
    #[serde(
        rename = "no-route",
        alias = "no_route",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub no_route: Option<bool>,
    #[serde(flatten)]
    pub health: HealthChecks,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<ProcessManifest>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<ServiceEntry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecars: Option<Vec<SidecarManifest>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerManifest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<BTreeMap<String, bool>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Health-check keys shared by the app level (web process) and `processes[]` entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthChecks {
    #[serde(
        rename = "health-check-type",
        alias = "health_check_type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub health_check_type: Option<String>,
    #[serde(
        rename = "health-check-http-endpoint",
        alias = "health_check_http_endpoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub health_check_http_endpoint: Option<String>,
    #[serde(
        rename = "health-check-invocation-timeout",
        alias = "health_check_invocation_timeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub health_check_invocation_timeout: Option<i64>,
    #[serde(
        rename = "health-check-interval",
        alias = "health_check_interval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub health_check_interval: Option<i64>,
    #[serde(
        rename = "readiness-health-check-type",
        alias = "readiness_health_check_type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub readiness_health_check_type: Option<String>,
    #[serde(
        rename = "readiness-health-check-http-endpoint",
        alias = "readiness_health_check_http_endpoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub readiness_health_check_http_endpoint: Option<String>,
    #[serde(
        rename = "readiness-health-check-invocation-timeout",
        alias = "readiness_health_check_invocation_timeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub readiness_health_check_invocation_timeout: Option<i64>,
    #[serde(
        rename = "readiness-health-check-interval",
        alias = "readiness_health_check_interval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub readiness_health_check_interval: Option<i64>,
    /// Seconds allowed to become healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

/// One entry of `processes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessManifest {
    #[serde(rename = "type", default)]
    pub process_type: String,
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub command: Option<Option<String>>,
    #[serde(
        rename = "disk_quota",
        alias = "disk-quota",
        default,
        deserialize_with = "scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub disk_quota: Option<String>,
    #[serde(default, deserialize_with = "scalar", skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(
        rename = "log-rate-limit-per-second",
        alias = "log_rate_limit_per_second",
        default,
        deserialize_with = "scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub log_rate_limit_per_second: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(flatten)]
    pub health: HealthChecks,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One entry of `routes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteEntry {
    #[serde(default)]
    pub route: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, Value>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `services` entry: a bare instance name or a binding description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServiceEntry {
    Name(String),
    Binding(ServiceBinding),
}

impl ServiceEntry {
    /// The service instance name.
    pub fn name(&self) -> &str {
        match self {
            ServiceEntry::Name(name) => name,
            ServiceEntry::Binding(binding) => &binding.name,
        }
    }
}

/// `{name, binding_name?, parameters?}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceBinding {
    #[serde(default)]
    pub name: String,
    #[serde(
        rename = "binding_name",
        alias = "binding-name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub binding_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<BTreeMap<String, Value>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One entry of `sidecars`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SidecarManifest {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(rename = "process_types", alias = "process-types", default)]
    pub process_types: Vec<String>,
    #[serde(default, deserialize_with = "scalar", skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `docker: {image, username?}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerManifest {
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `metadata: {labels, annotations}` (a `null` value deletes the key on apply).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, Option<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, Option<String>>,
}

/// Accepts a string or a number (e.g. `memory: 1024`) as its text, so the unit check
/// reports CF's message instead of a type error.
fn scalar<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(de)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!("expected a string, found {other:?}"))),
    }
}

/// Distinguishes an absent key (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::<String>::deserialize(de)?))
}
