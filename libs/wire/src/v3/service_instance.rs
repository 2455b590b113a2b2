//! Service instances; this platform has user-provided ones.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{Links, Metadata, ToOne};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInstance {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    pub name: String,
    /// `user-provided` or `managed`.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub syslog_drain_url: Option<String>,
    #[serde(default)]
    pub route_service_url: Option<String>,
    #[serde(default)]
    pub last_operation: Option<LastOperation>,
    #[serde(default)]
    pub relationships: ServiceInstanceRelationships,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

/// The last create, update or delete of an instance or binding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastOperation {
    /// `create`, `update` or `delete`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// `initial`, `in progress`, `succeeded` or `failed`.
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInstanceRelationships {
    #[serde(default)]
    pub space: ToOne,
    /// Managed instances only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_plan: Option<ToOne>,
}

/// `POST /v3/service_instances` (with `type`, `name`, `relationships`) and `PATCH` (without):
/// the user-provided fields given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserProvidedChange {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syslog_drain_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_service_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationships: Option<ServiceInstanceRelationships>,
}

impl UserProvidedChange {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn a_user_provided_instance_survives_a_round_trip() {
        let si: ServiceInstance = round_trip(
            r#"{"guid": "si-1", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z",
                "name": "my-ups", "type": "user-provided", "tags": ["sql"],
                "syslog_drain_url": "syslog://logs.example.com:514", "route_service_url": null,
                "last_operation": {"type": "create", "state": "succeeded", "description": "Operation succeeded",
                                   "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z"},
                "relationships": {"space": {"data": {"guid": "s-1"}}},
                "metadata": {"labels": {}, "annotations": {}},
                "links": {"self": {"href": "https://api.example.com/v3/service_instances/si-1"},
                          "space": {"href": "https://api.example.com/v3/spaces/s-1"},
                          "credentials": {"href": "https://api.example.com/v3/service_instances/si-1/credentials"},
                          "service_credential_bindings": {"href": "https://api.example.com/v3/service_credential_bindings?service_instance_guids=si-1"},
                          "service_route_bindings": {"href": "https://api.example.com/v3/service_route_bindings?service_instance_guids=si-1"}}}"#,
        );
        assert_eq!(si.route_service_url, None);
        assert_eq!(si.syslog_drain_url.as_deref(), Some("syslog://logs.example.com:514"));
    }

    #[test]
    fn a_change_names_only_what_is_given() {
        let c = UserProvidedChange { tags: Some(vec!["a".into()]), ..Default::default() };
        assert_eq!(serde_json::to_string(&c).expect("json"), r#"{"tags":["a"]}"#);
        assert!(UserProvidedChange::default().is_empty());
    }
}
