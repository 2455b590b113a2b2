//! Domains: shared (no organization) or private to one.

use serde::{Deserialize, Serialize};

use super::common::{Guid, Links, Metadata, ToMany, ToOne};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    pub name: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub router_group: Option<Guid>,
    #[serde(default)]
    pub supported_protocols: Vec<String>,
    #[serde(default)]
    pub relationships: DomainRelationships,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

impl Domain {
    /// Shared with every organization (no owning organization).
    pub fn is_shared(&self) -> bool {
        self.relationships.organization.data.is_none()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainRelationships {
    #[serde(default)]
    pub organization: ToOne,
    #[serde(default)]
    pub shared_organizations: ToMany,
}

/// `GET /v3/domains/:guid/route_reservations`: whether the route asked about exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteReservation {
    pub matching_route: bool,
}

/// `POST /v3/domains`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainCreate {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal: Option<bool>,
    pub relationships: DomainCreateRelationships,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainCreateRelationships {
    pub organization: ToOne,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn shared_and_private_domains_round_trip() {
        let shared: Domain = round_trip(
            r#"{"guid": "dom-1", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z",
                "name": "apps.example.com", "internal": false, "router_group": null, "supported_protocols": ["http"],
                "relationships": {"organization": {"data": null}, "shared_organizations": {"data": []}},
                "metadata": {"labels": {}, "annotations": {}},
                "links": {"self": {"href": "https://api.example.com/v3/domains/dom-1"},
                          "route_reservations": {"href": "https://api.example.com/v3/domains/dom-1/route_reservations"},
                          "shared_organizations": {"href": "https://api.example.com/v3/domains/dom-1/relationships/shared_organizations"}}}"#,
        );
        assert!(shared.is_shared());
        let private: Domain = round_trip(
            r#"{"guid": "dom-2", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z",
                "name": "acme.example.com", "internal": false, "router_group": null, "supported_protocols": ["http"],
                "relationships": {"organization": {"data": {"guid": "o-1"}}, "shared_organizations": {"data": []}},
                "metadata": {"labels": {}, "annotations": {}},
                "links": {"self": {"href": "https://api.example.com/v3/domains/dom-2"},
                          "organization": {"href": "https://api.example.com/v3/organizations/o-1"}}}"#,
        );
        assert!(!private.is_shared());
    }

    #[test]
    fn a_route_reservation_survives_a_round_trip() {
        let r: RouteReservation = round_trip(r#"{"matching_route": true}"#);
        assert!(r.matching_route);
    }
}
