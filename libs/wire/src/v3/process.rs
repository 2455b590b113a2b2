//! Processes and their instances' stats.

use serde::{Deserialize, Serialize};

use super::common::{present, Links, Metadata, ToOne};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub version: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub instances: i64,
    #[serde(default)]
    pub memory_in_mb: i64,
    #[serde(default)]
    pub disk_in_mb: i64,
    #[serde(default)]
    pub log_rate_limit_in_bytes_per_second: Option<i64>,
    #[serde(default)]
    pub health_check: HealthCheck,
    #[serde(default)]
    pub readiness_health_check: ReadinessCheck,
    #[serde(default)]
    pub relationships: ProcessRelationships,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

/// `{"type": "port"|"process"|"http", "data": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub data: HealthCheckData,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheckData {
    pub timeout: Option<i64>,
    pub invocation_timeout: Option<i64>,
    pub interval: Option<i64>,
    pub endpoint: Option<String>,
}

/// The readiness check: as the liveness one, without `timeout`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessCheck {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub data: ReadinessCheckData,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReadinessCheckData {
    pub invocation_timeout: Option<i64>,
    pub interval: Option<i64>,
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRelationships {
    #[serde(default)]
    pub app: ToOne,
    #[serde(default)]
    pub revision: ToOne,
}

/// `POST /v3/processes/:guid/actions/scale` (and the app-scoped one): only what changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessScale {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_in_mb: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_in_mb: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_rate_limit_in_bytes_per_second: Option<i64>,
}

impl ProcessScale {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// `PATCH /v3/processes/:guid` changing the health check: its type and the data given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessUpdate {
    pub health_check: HealthCheckChange,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckChange {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub data: HealthCheckChangeData,
}

/// Only what is given; `endpoint` applies to `http` checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckChangeData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_timeout: Option<i64>,
}

/// A sidecar of a process (`GET /v3/processes/:guid/sidecars`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sidecar {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub process_types: Vec<String>,
    #[serde(default)]
    pub memory_in_mb: Option<i64>,
    #[serde(default)]
    pub origin: String,
    #[serde(default)]
    pub relationships: SidecarRelationships,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SidecarRelationships {
    #[serde(default)]
    pub app: ToOne,
}

states! {
    /// An instance as process stats show it.
    InstanceState {
        Running = "RUNNING",
        Crashed = "CRASHED",
        Starting = "STARTING",
        Stopping = "STOPPING",
        Down = "DOWN",
    }
}

/// `GET /v3/processes/:guid/stats`: one entry per desired instance, no pagination.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessStatsList {
    #[serde(default)]
    pub resources: Vec<ProcessStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessStats {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub index: i64,
    #[serde(default)]
    pub instance_guid: String,
    pub state: InstanceState,
    #[serde(default)]
    pub routable: bool,
    #[serde(default)]
    pub usage: Usage,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub instance_internal_ip: String,
    #[serde(default)]
    pub instance_ports: Vec<InstancePort>,
    #[serde(default)]
    pub uptime: i64,
    /// Bytes.
    #[serde(default)]
    pub mem_quota: Option<u64>,
    /// Bytes.
    #[serde(default)]
    pub disk_quota: Option<u64>,
    /// Bytes per second, -1 unlimited.
    #[serde(default)]
    pub log_rate_limit: Option<i64>,
    #[serde(default)]
    pub fds_quota: Option<u64>,
    #[serde(default)]
    pub isolation_segment: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
}

/// An instance's newest usage; `{}` when none is known.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Fraction of one core (0.5 = 50%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub cpu_entitlement: Option<Option<f64>>,
    /// Bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<u64>,
    /// Bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_rate: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstancePort {
    pub external: u16,
    pub internal: u16,
    #[serde(default)]
    pub external_tls_proxy_port: Option<u16>,
    #[serde(default)]
    pub internal_tls_proxy_port: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::{check_spelling, round_trip};

    /// `services/api` `Process::present` for a web process.
    const PROCESS: &str = r#"{
        "guid": "a-1", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z",
        "version": "v-1", "type": "web", "command": "python app.py", "user": "vcap",
        "instances": 2, "memory_in_mb": 256, "disk_in_mb": 1024,
        "log_rate_limit_in_bytes_per_second": -1,
        "health_check": {"type": "http", "data": {"timeout": 60, "invocation_timeout": null, "interval": null, "endpoint": "/health"}},
        "readiness_health_check": {"type": "process", "data": {"invocation_timeout": null, "interval": null, "endpoint": null}},
        "relationships": {"app": {"data": {"guid": "a-1"}}, "revision": {"data": null}},
        "metadata": {"labels": {}, "annotations": {}},
        "links": {
            "self": {"href": "https://api.example.com/v3/processes/a-1"},
            "scale": {"href": "https://api.example.com/v3/processes/a-1/actions/scale", "method": "POST"},
            "app": {"href": "https://api.example.com/v3/apps/a-1"},
            "space": {"href": "https://api.example.com/v3/spaces/s-1"},
            "stats": {"href": "https://api.example.com/v3/processes/a-1/stats"},
            "process_instances": {"href": "https://api.example.com/v3/processes/a-1/process_instances"}
        }
    }"#;

    #[test]
    fn a_process_survives_a_round_trip() {
        let p: Process = round_trip(PROCESS);
        assert_eq!((p.kind.as_str(), p.instances, p.memory_in_mb), ("web", 2, 256));
        assert_eq!(p.health_check.data.endpoint.as_deref(), Some("/health"));
        round_trip::<Process>(&PROCESS.replace(r#""python app.py""#, "null"));
    }

    #[test]
    fn stats_round_trip_with_and_without_usage() {
        let running = r#"{"resources": [{
            "type": "web", "index": 0, "instance_guid": "i-0", "state": "RUNNING", "routable": true,
            "usage": {"time": "2026-11-25T04:41:45.5Z", "cpu": 0.0004, "cpu_entitlement": null, "mem": 19177472, "disk": 69705728, "log_rate": 0},
            "host": "10.0.0.5", "instance_internal_ip": "10.229.1.2",
            "instance_ports": [{"external": 63600, "internal": 8080, "external_tls_proxy_port": null, "internal_tls_proxy_port": null}],
            "uptime": 9042, "mem_quota": 268435456, "disk_quota": 1073741824, "log_rate_limit": -1,
            "fds_quota": 16384, "isolation_segment": null, "details": null
        }, {
            "type": "web", "index": 1, "instance_guid": "", "state": "DOWN", "routable": false,
            "usage": {}, "host": "", "instance_internal_ip": "", "instance_ports": [],
            "uptime": 0, "mem_quota": 268435456, "disk_quota": 1073741824, "log_rate_limit": -1,
            "fds_quota": 16384, "isolation_segment": null, "details": "insufficient resources"
        }]}"#;
        let stats: ProcessStatsList = round_trip(running);
        assert_eq!(stats.resources[0].state, InstanceState::Running);
        assert_eq!(stats.resources[0].usage.mem, Some(19_177_472));
        assert_eq!(stats.resources[1].usage, Usage::default());
        check_spelling(InstanceState::ALL);
    }

    #[test]
    fn a_sidecar_round_trips() {
        let s: Sidecar = round_trip(
            r#"{"guid": "sc-1", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z",
                "name": "auth", "command": "./auth", "process_types": ["web"], "memory_in_mb": null,
                "origin": "user", "relationships": {"app": {"data": {"guid": "a-1"}}}}"#,
        );
        assert_eq!(s.process_types, ["web"]);
    }

    #[test]
    fn a_health_check_change_names_only_what_is_given() {
        let u: ProcessUpdate = round_trip(
            r#"{"health_check":{"type":"http","data":{"endpoint":"/ready","invocation_timeout":5}}}"#,
        );
        assert_eq!(u.health_check.data.invocation_timeout, Some(5));
        let port = ProcessUpdate {
            health_check: HealthCheckChange { kind: "port".into(), ..Default::default() },
        };
        assert_eq!(
            serde_json::to_string(&port).expect("json"),
            r#"{"health_check":{"type":"port","data":{}}}"#
        );
    }

    #[test]
    fn a_scale_body_names_only_what_changes() {
        let s = ProcessScale { instances: Some(3), ..Default::default() };
        assert_eq!(serde_json::to_string(&s).expect("json"), r#"{"instances":3}"#);
        assert!(ProcessScale::default().is_empty());
    }
}
