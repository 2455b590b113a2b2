//! App and service usage events (`/v3/app_usage_events`, `/v3/service_usage_events`): what
//! billing and metering read — an app's processes and tasks starting and stopping with their
//! size, service instances created, updated and deleted.

use serde::{Deserialize, Serialize};

use super::common::Links;

/// A current value and the one before it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change<T> {
    pub current: Option<T>,
    pub previous: Option<T>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    pub guid: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuidRef {
    pub guid: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typed {
    pub guid: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedTyped {
    pub guid: Option<String>,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// What an app usage event says (STARTED, STOPPED, TASK_STARTED, TASK_STOPPED).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppUsage {
    pub state: Change<String>,
    pub app: Named,
    pub process: Typed,
    pub space: Named,
    pub organization: GuidRef,
    pub buildpack: Named,
    pub task: Named,
    pub memory_in_mb_per_instance: Change<i64>,
    pub instance_count: Change<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppUsageEvent {
    pub guid: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(flatten)]
    pub usage: AppUsage,
    #[serde(default)]
    pub links: Links,
}

/// What a service usage event says (CREATED, UPDATED, DELETED).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceUsage {
    pub state: Option<String>,
    pub space: Named,
    pub organization: GuidRef,
    pub service_instance: NamedTyped,
    pub service_plan: Named,
    pub service_offering: Named,
    pub service_broker: Named,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceUsageEvent {
    pub guid: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(flatten)]
    pub usage: ServiceUsage,
    #[serde(default)]
    pub links: Links,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn usage_events_read_as_cc_renders_them() {
        let a: AppUsageEvent = round_trip(
            r#"{"guid": "e-1", "created_at": "2026-12-05T09:00:00Z", "updated_at": "2026-12-05T09:00:00Z",
                "state": {"current": "STARTED", "previous": "STOPPED"},
                "app": {"guid": "a-1", "name": "web"}, "process": {"guid": "a-1", "type": "web"},
                "space": {"guid": "s-1", "name": "dev"}, "organization": {"guid": "o-1"},
                "buildpack": {"guid": null, "name": "python_buildpack"},
                "task": {"guid": null, "name": null},
                "memory_in_mb_per_instance": {"current": 512, "previous": null},
                "instance_count": {"current": 2, "previous": null},
                "links": {"self": {"href": "https://api.example.com/v3/app_usage_events/e-1"}}}"#,
        );
        assert_eq!(a.usage.instance_count.current, Some(2));
        let s: ServiceUsageEvent = round_trip(
            r#"{"guid": "e-2", "created_at": "2026-12-05T09:00:00Z", "updated_at": "2026-12-05T09:00:00Z",
                "state": "CREATED", "space": {"guid": "s-1", "name": "dev"},
                "organization": {"guid": "o-1"},
                "service_instance": {"guid": "i-1", "name": "db", "type": "managed_service_instance"},
                "service_plan": {"guid": "p-1", "name": "small"},
                "service_offering": {"guid": "so-1", "name": "postgres"},
                "service_broker": {"guid": "b-1", "name": "brokerage"},
                "links": {"self": {"href": "https://api.example.com/v3/service_usage_events/e-2"}}}"#,
        );
        assert_eq!(s.usage.state.as_deref(), Some("CREATED"));
    }
}
