//! Bindings of service instances: credential bindings to apps and
//! route bindings (route services).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{Links, Metadata, ToOne};
use super::service_instance::LastOperation;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialBinding {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub name: Option<String>,
    /// `app` or `key`.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub last_operation: Option<LastOperation>,
    #[serde(default)]
    pub relationships: CredentialBindingRelationships,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialBindingRelationships {
    /// Absent for keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<ToOne>,
    #[serde(default)]
    pub service_instance: ToOne,
}

/// `POST /v3/service_credential_bindings` for an app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialBindingCreate {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub relationships: CredentialBindingRelationships,
}

/// `GET /v3/service_credential_bindings/:guid/details`: what the app is given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CredentialBindingDetails {
    /// The instance's credentials as the user gave them (an object).
    #[serde(default)]
    pub credentials: Value,
    #[serde(default)]
    pub syslog_drain_url: Option<String>,
    #[serde(default)]
    pub volume_mounts: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteBinding {
    pub guid: String,
    #[serde(default)]
    pub route_service_url: Option<String>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub last_operation: Option<LastOperation>,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub relationships: RouteBindingRelationships,
    #[serde(default)]
    pub links: Links,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteBindingRelationships {
    #[serde(default)]
    pub service_instance: ToOne,
    #[serde(default)]
    pub route: ToOne,
}

/// `POST /v3/service_route_bindings`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteBindingCreate {
    pub relationships: RouteBindingRelationships,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Map<String, Value>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn a_credential_binding_survives_a_round_trip() {
        let b: CredentialBinding = round_trip(
            r#"{"guid": "b-1", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z",
                "name": null, "type": "app",
                "last_operation": {"type": "create", "state": "succeeded", "description": "Operation succeeded",
                                   "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z"},
                "relationships": {"app": {"data": {"guid": "a-1"}}, "service_instance": {"data": {"guid": "si-1"}}},
                "metadata": {"labels": {}, "annotations": {}},
                "links": {"self": {"href": "https://api.example.com/v3/service_credential_bindings/b-1"},
                          "details": {"href": "https://api.example.com/v3/service_credential_bindings/b-1/details"},
                          "service_instance": {"href": "https://api.example.com/v3/service_instances/si-1"},
                          "app": {"href": "https://api.example.com/v3/apps/a-1"}}}"#,
        );
        assert_eq!(b.relationships.app.as_ref().and_then(ToOne::guid), Some("a-1"));
    }

    #[test]
    fn binding_details_survive_a_round_trip() {
        let d: CredentialBindingDetails = round_trip(
            r#"{"credentials": {"user": "u", "port": 5432}, "syslog_drain_url": null, "volume_mounts": []}"#,
        );
        assert_eq!(d.credentials["user"], "u");
        let drained: CredentialBindingDetails = round_trip(
            r#"{"credentials": {}, "syslog_drain_url": "syslog://logs.example.com:514", "volume_mounts": []}"#,
        );
        assert_eq!(drained.syslog_drain_url.as_deref(), Some("syslog://logs.example.com:514"));
    }

    #[test]
    fn a_route_binding_survives_a_round_trip() {
        let b: RouteBinding = round_trip(
            r#"{"guid": "rb-1", "route_service_url": "https://rs.example.com",
                "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z",
                "last_operation": {"type": "create", "state": "succeeded", "description": null,
                                   "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z"},
                "metadata": {"labels": {}, "annotations": {}},
                "relationships": {"service_instance": {"data": {"guid": "si-1"}}, "route": {"data": {"guid": "r-1"}}},
                "links": {"self": {"href": "https://api.example.com/v3/service_route_bindings/rb-1"},
                          "service_instance": {"href": "https://api.example.com/v3/service_instances/si-1"},
                          "route": {"href": "https://api.example.com/v3/routes/r-1"}}}"#,
        );
        assert_eq!(b.relationships.route.guid(), Some("r-1"));
        let body = RouteBindingCreate {
            relationships: RouteBindingRelationships {
                service_instance: ToOne::of("si-1"),
                route: ToOne::of("r-1"),
            },
            parameters: None,
        };
        assert_eq!(
            serde_json::to_string(&body).expect("json"),
            r#"{"relationships":{"service_instance":{"data":{"guid":"si-1"}},"route":{"data":{"guid":"r-1"}}}}"#
        );
    }
}
