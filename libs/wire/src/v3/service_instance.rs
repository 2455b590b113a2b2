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
    /// Managed instances only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    /// Managed instances only: the plan version (`{"version": ...}`) the instance runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_info: Option<Value>,
    /// Managed instances only: whether its plan has a newer `maintenance_info` version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_available: Option<bool>,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastOperation {
    #[serde(rename = "type")]
    pub kind: OperationType,
    pub state: OperationState,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
}

impl LastOperation {
    /// A finished operation of `kind`.
    pub fn succeeded(
        kind: OperationType,
        description: Option<&str>,
        created_at: String,
        updated_at: String,
    ) -> Self {
        Self {
            kind,
            state: OperationState::Succeeded,
            description: description.map(str::to_owned),
            created_at,
            updated_at,
        }
    }
}

/// What a last operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationType {
    Create,
    Update,
    Delete,
}

impl OperationType {
    pub const ALL: &'static [Self] = &[Self::Create, Self::Update, Self::Delete];

    /// The type as CC writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }

    /// The type CC writes as `text`, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == text)
    }
}

impl std::fmt::Display for OperationType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a last operation is (CC writes these in lower case, `in progress` with a space).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OperationState {
    #[serde(rename = "initial")]
    Initial,
    #[serde(rename = "in progress")]
    InProgress,
    #[serde(rename = "succeeded")]
    Succeeded,
    #[serde(rename = "failed")]
    Failed,
}

impl OperationState {
    pub const ALL: &'static [Self] =
        &[Self::Initial, Self::InProgress, Self::Succeeded, Self::Failed];

    /// The state as CC writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::InProgress => "in progress",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// The state CC writes as `text`, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for OperationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
        let op = si.last_operation.expect("last operation");
        assert_eq!((op.kind, op.state), (OperationType::Create, OperationState::Succeeded));
        assert_eq!(si.syslog_drain_url.as_deref(), Some("syslog://logs.example.com:514"));
    }

    #[test]
    fn operation_types_and_states_are_spelled_as_cc_does() {
        crate::v3::testing::check_spelling(OperationType::ALL);
        crate::v3::testing::check_spelling(OperationState::ALL);
        for t in OperationType::ALL {
            assert_eq!(OperationType::parse(t.as_str()), Some(*t));
        }
        for s in OperationState::ALL {
            assert_eq!(OperationState::parse(s.as_str()), Some(*s));
        }
        assert_eq!(OperationState::InProgress.as_str(), "in progress");
        assert_eq!(OperationState::parse("SUCCEEDED"), None);
        let op: LastOperation = round_trip(
            r#"{"type": "delete", "state": "in progress", "description": null,
                "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z"}"#,
        );
        assert_eq!(op.state, OperationState::InProgress);
        assert!(serde_json::from_str::<LastOperation>(r#"{"type": "create", "state": "done"}"#)
            .is_err());
    }

    #[test]
    fn a_change_names_only_what_is_given() {
        let c = UserProvidedChange { tags: Some(vec!["a".into()]), ..Default::default() };
        assert_eq!(serde_json::to_string(&c).expect("json"), r#"{"tags":["a"]}"#);
        assert!(UserProvidedChange::default().is_empty());
    }
}
