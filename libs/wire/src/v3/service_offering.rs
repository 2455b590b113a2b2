//! Service offerings: the services of brokers' catalogs.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{Links, Metadata, ToOne};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceOffering {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub available: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub requires: Vec<String>,
    #[serde(default)]
    pub shareable: bool,
    #[serde(default)]
    pub documentation_url: Option<String>,
    #[serde(default)]
    pub broker_catalog: OfferingCatalog,
    #[serde(default)]
    pub relationships: ServiceOfferingRelationships,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

/// What the broker's catalog says of the service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OfferingCatalog {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub metadata: Value,
    #[serde(default)]
    pub features: OfferingFeatures,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferingFeatures {
    #[serde(default)]
    pub plan_updateable: bool,
    #[serde(default)]
    pub bindable: bool,
    #[serde(default)]
    pub instances_retrievable: bool,
    #[serde(default)]
    pub bindings_retrievable: bool,
    #[serde(default)]
    pub allow_context_updates: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceOfferingRelationships {
    #[serde(default)]
    pub service_broker: ToOne,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn an_offering_survives_a_round_trip() {
        let o: ServiceOffering = round_trip(
            r#"{"guid": "o-1", "created_at": "2026-12-05T08:00:00Z", "updated_at": "2026-12-05T08:00:00Z",
                "name": "db", "description": "A database", "available": true, "tags": ["sql"],
                "requires": [], "shareable": false, "documentation_url": null,
                "broker_catalog": {"id": "db-id", "metadata": {"displayName": "DB"},
                                   "features": {"plan_updateable": true, "bindable": true,
                                                "instances_retrievable": false, "bindings_retrievable": false,
                                                "allow_context_updates": false}},
                "relationships": {"service_broker": {"data": {"guid": "b-1"}}},
                "metadata": {"labels": {}, "annotations": {}},
                "links": {"self": {"href": "https://api.example.com/v3/service_offerings/o-1"}}}"#,
        );
        assert!(o.broker_catalog.features.bindable);
        assert_eq!(o.relationships.service_broker.guid(), Some("b-1"));
    }
}
