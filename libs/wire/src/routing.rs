//! gorouter's NATS messages: what cells publish for each running
//! instance and what routers announce.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Body of `router.register` / `router.unregister`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegistryMessage {
    pub host: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_port: Option<u16>,
    /// `http1` (default) or `http2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `host[/path]`, no scheme.
    pub uris: Vec<String>,
    /// App guid: `X-CF-ApplicationID` and `app_id` in the access log.
    #[serde(default)]
    pub app: String,
    /// Instance guid: `X-CF-InstanceID` and the sticky-session cookie value.
    #[serde(default)]
    pub private_instance_id: String,
    /// Instance index as a string: `X-CF-InstanceIndex`.
    #[serde(default)]
    pub private_instance_index: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cert_domain_san: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_service_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation_segment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_updated_at_ns: Option<i64>,
    /// Per-endpoint TTL override in seconds (router default 120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_threshold_in_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<RouteOptions>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteOptions {
    /// `round-robin` or `least-connection`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loadbalancing: Option<String>,
}

/// The `router.unregister` messages that take `a`'s routes off the routers, as its cell sends
/// them on a stop (routers match on address and URI): for when the cell cannot (cut off).
pub fn unregistrations(
    a: &crate::lrp::ActualLrp,
    app: &str,
    routes: &[crate::lrp::Route],
) -> Vec<RegistryMessage> {
    routes
        .iter()
        .filter_map(|r| {
            let mapped = a.ports.iter().find(|p| p.container_port == r.port).or(a.ports.first())?;
            Some(RegistryMessage {
                host: a.address.clone(),
                port: mapped.host_port,
                uris: vec![r.uri.clone()],
                app: app.to_owned(),
                private_instance_id: a.instance_guid.clone(),
                private_instance_index: a.index.to_string(),
                ..Default::default()
            })
        })
        .filter(|m| !m.host.is_empty())
        .collect()
}

/// Body of `router.start` and of the reply to `router.greet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterStart {
    pub id: String,
    #[serde(default)]
    pub hosts: Vec<String>,
    pub minimum_register_interval_in_seconds: u64,
    pub prune_threshold_in_seconds: u64,
}

/// Register every 20 s unless a router says otherwise.
pub const DEFAULT_REGISTER_INTERVAL_SECS: u64 = 20;
/// A registration older than this is pruned.
pub const DEFAULT_PRUNE_THRESHOLD_SECS: u64 = 120;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gorouter_register_message_parses() {
        let m: RegistryMessage = serde_json::from_str(
            r#"{"host":"10.0.1.5","port":61012,"uris":["app.example.com","app.example.com/path"],
                "app":"g","private_instance_id":"i","private_instance_index":"0",
                "tags":{"component":"route-emitter"},"options":{"loadbalancing":"least-connection"}}"#,
        )
        .expect("parse");
        assert_eq!(m.port, 61012);
        assert_eq!(m.options.and_then(|o| o.loadbalancing).as_deref(), Some("least-connection"));
    }

    #[test]
    fn router_start_uses_the_code_spelling() {
        let s = RouterStart {
            id: "0-x".into(),
            hosts: vec![],
            minimum_register_interval_in_seconds: 20,
            prune_threshold_in_seconds: 120,
        };
        let v = serde_json::to_value(&s).expect("serialize");
        assert_eq!(v["minimumRegisterIntervalInSeconds"], 20);
        assert_eq!(v["pruneThresholdInSeconds"], 120);
    }
}
