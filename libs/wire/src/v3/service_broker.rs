//! Service brokers: where managed services come from (OSBAPI v2), global or space-scoped.

use serde::{Deserialize, Serialize};

use super::common::{Links, Metadata, ToOne};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceBroker {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub relationships: ServiceBrokerRelationships,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

/// `{}` for a global broker, `{"space": {...}}` for a space-scoped one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceBrokerRelationships {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<ToOne>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn a_broker_survives_a_round_trip() {
        let b: ServiceBroker = round_trip(
            r#"{"guid": "b-1", "created_at": "2026-12-05T08:00:00Z", "updated_at": "2026-12-05T08:00:00Z",
                "name": "db", "url": "http://broker.example.com", "relationships": {},
                "metadata": {"labels": {}, "annotations": {}},
                "links": {"self": {"href": "https://api.example.com/v3/service_brokers/b-1"},
                          "service_offerings": {"href": "https://api.example.com/v3/service_offerings?service_broker_guids=b-1"}}}"#,
        );
        assert!(b.relationships.space.is_none());
        let scoped: ServiceBroker = round_trip(
            r#"{"guid": "b-2", "created_at": "", "updated_at": "", "name": "s", "url": "http://x",
                "relationships": {"space": {"data": {"guid": "s-1"}}},
                "metadata": {"labels": {}, "annotations": {}}, "links": {}}"#,
        );
        assert_eq!(
            scoped.relationships.space.and_then(|s| s.data).map(|d| d.guid).as_deref(),
            Some("s-1")
        );
    }
}
