//! Audit events.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{Guid, Links};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    /// `audit.app.start`, ...
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub actor: Party,
    #[serde(default)]
    pub target: Party,
    /// Free-form, per event type (`request` holds what was asked).
    #[serde(default)]
    pub data: Value,
    #[serde(default)]
    pub space: Option<Guid>,
    #[serde(default)]
    pub organization: Option<Guid>,
    #[serde(default)]
    pub links: Links,
}

/// The actor or the target of an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    #[serde(default)]
    pub guid: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn an_event_survives_a_round_trip() {
        let e: AuditEvent = round_trip(
            r#"{"guid": "e-1", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z",
                "type": "audit.app.update",
                "actor": {"guid": "u-1", "type": "user", "name": "admin"},
                "target": {"guid": "a-1", "type": "app", "name": "web"},
                "data": {"request": {"name": "web"}},
                "space": {"guid": "s-1"}, "organization": null,
                "links": {"self": {"href": "https://api.example.com/v3/audit_events/e-1"}}}"#,
        );
        assert_eq!(e.actor.name, "admin");
        assert_eq!(e.data["request"]["name"], "web");
    }
}
