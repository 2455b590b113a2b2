//! Routes and their destinations.

use serde::{Deserialize, Serialize};

use super::common::{Guid, Links, Metadata, ToOne};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    /// `http` or `tcp`.
    #[serde(default)]
    pub protocol: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub port: Option<i64>,
    /// `host.domain/path`, without a scheme.
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub destinations: Vec<Destination>,
    #[serde(default)]
    pub options: RouteOptions,
    #[serde(default)]
    pub relationships: RouteRelationships,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

/// Where a route sends traffic: an app's process on a port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    #[serde(default)]
    pub guid: String,
    pub app: DestinationApp,
    #[serde(default)]
    pub weight: Option<i64>,
    #[serde(default)]
    pub port: Option<i64>,
    /// `http1`, `http2`, `tcp`, or `null`.
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationApp {
    pub guid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessType>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessType {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteOptions {
    /// `round-robin`, `least-connection` or `hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loadbalancing: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRelationships {
    #[serde(default)]
    pub space: ToOne,
    #[serde(default)]
    pub domain: ToOne,
}

/// `GET /v3/routes/:guid/destinations`, and the answer to adding or replacing them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteDestinations {
    #[serde(default)]
    pub destinations: Vec<Destination>,
    #[serde(default)]
    pub links: Links,
}

/// `POST /v3/routes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteCreate {
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub path: String,
    /// `loadbalancing` and whatever else a client sends (the api says which keys it knows).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub options: serde_json::Map<String, serde_json::Value>,
    pub relationships: RouteRelationships,
}

/// `POST /v3/routes/:guid/destinations` (adds) and `PATCH` (replaces).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destinations {
    pub destinations: Vec<NewDestination>,
}

/// A destination to add: the app, and optionally its process, port and protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDestination {
    pub app: Guid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    /// `services/api` `routes::present` of a route mapped to one app.
    const ROUTE: &str = r#"{
        "guid": "r-1", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z",
        "protocol": "http", "host": "web", "path": "", "port": null, "url": "web.apps.example.com",
        "destinations": [{"guid": "dst-1", "app": {"guid": "a-1", "process": {"type": "web"}},
            "weight": null, "port": 8080, "protocol": "http1",
            "created_at": "2026-11-25T04:41:46Z", "updated_at": "2026-11-25T04:41:46Z"}],
        "options": {},
        "relationships": {"space": {"data": {"guid": "s-1"}}, "domain": {"data": {"guid": "dom-1"}}},
        "metadata": {"labels": {}, "annotations": {}},
        "links": {
            "self": {"href": "https://api.example.com/v3/routes/r-1"},
            "space": {"href": "https://api.example.com/v3/spaces/s-1"},
            "domain": {"href": "https://api.example.com/v3/domains/dom-1"},
            "destinations": {"href": "https://api.example.com/v3/routes/r-1/destinations"}
        }
    }"#;

    #[test]
    fn a_route_survives_a_round_trip() {
        let r: Route = round_trip(ROUTE);
        assert_eq!(r.destinations[0].app.guid, "a-1");
        let balanced: Route = round_trip(
            &ROUTE
                .replace(r#""options": {}"#, r#""options": {"loadbalancing": "least-connection"}"#),
        );
        assert_eq!(balanced.options.loadbalancing.as_deref(), Some("least-connection"));
    }

    #[test]
    fn a_destination_list_survives_a_round_trip() {
        let list: RouteDestinations = round_trip(
            r#"{"destinations": [{"guid": "dst-1", "app": {"guid": "a-1", "process": {"type": "web"}},
                    "weight": null, "port": 8080, "protocol": "http2",
                    "created_at": "2026-11-25T04:41:46Z", "updated_at": "2026-11-25T04:41:46Z"}],
                "links": {"self": {"href": "https://api.example.com/v3/routes/r-1/destinations"},
                          "route": {"href": "https://api.example.com/v3/routes/r-1"}}}"#,
        );
        assert_eq!(list.destinations[0].protocol.as_deref(), Some("http2"));
        let empty: RouteDestinations = round_trip(r#"{"destinations": [], "links": {}}"#);
        assert!(empty.destinations.is_empty());
    }

    #[test]
    fn request_bodies_name_only_what_is_given() {
        let body = Destinations {
            destinations: vec![NewDestination { app: Guid::new("a"), ..Default::default() }],
        };
        assert_eq!(
            serde_json::to_string(&body).expect("json"),
            r#"{"destinations":[{"app":{"guid":"a"}}]}"#
        );
        let create = RouteCreate {
            host: "h".into(),
            path: String::new(),
            options: serde_json::Map::new(),
            relationships: RouteRelationships { space: ToOne::of("s"), domain: ToOne::of("d") },
        };
        assert_eq!(
            serde_json::to_string(&create).expect("json"),
            r#"{"host":"h","path":"","relationships":{"space":{"data":{"guid":"s"}},"domain":{"data":{"guid":"d"}}}}"#
        );
    }
}
