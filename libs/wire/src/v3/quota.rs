//! Organization quotas (CC's `organization_quota` resource); `null` limits are unlimited.

use serde::{Deserialize, Serialize};

use super::common::{present, Links, ToMany, ToOne};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationQuota {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    pub name: String,
    #[serde(default)]
    pub apps: AppLimits,
    #[serde(default)]
    pub services: ServiceLimits,
    #[serde(default)]
    pub routes: RouteLimits,
    #[serde(default)]
    pub domains: DomainLimits,
    #[serde(default)]
    pub relationships: QuotaRelationships,
    #[serde(default)]
    pub links: Links,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppLimits {
    pub total_memory_in_mb: Option<i64>,
    pub per_process_memory_in_mb: Option<i64>,
    pub total_instances: Option<i64>,
    pub per_app_tasks: Option<i64>,
    pub log_rate_limit_in_bytes_per_second: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceLimits {
    pub paid_services_allowed: bool,
    pub total_service_instances: Option<i64>,
    pub total_service_keys: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteLimits {
    pub total_routes: Option<i64>,
    pub total_reserved_ports: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DomainLimits {
    pub total_domains: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaRelationships {
    #[serde(default)]
    pub organizations: ToMany,
}

/// `POST /v3/organization_quotas` with the limits clients set (`null` = unlimited).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationQuotaCreate {
    pub name: String,
    pub apps: AppLimitsCreate,
    pub routes: RouteLimitsCreate,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppLimitsCreate {
    pub total_memory_in_mb: Option<i64>,
    pub per_process_memory_in_mb: Option<i64>,
    pub total_instances: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteLimitsCreate {
    pub total_routes: Option<i64>,
}

/// `PATCH /v3/organization_quotas/:guid`: only the fields given; a limit of `null` makes it
/// unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationQuotaUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "AppLimitsUpdate::is_empty")]
    pub apps: AppLimitsUpdate,
    #[serde(default, skip_serializing_if = "RouteLimitsUpdate::is_empty")]
    pub routes: RouteLimitsUpdate,
}

impl OrganizationQuotaUpdate {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppLimitsUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub total_memory_in_mb: Option<Option<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub per_process_memory_in_mb: Option<Option<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub total_instances: Option<Option<i64>>,
}

impl AppLimitsUpdate {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteLimitsUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub total_routes: Option<Option<i64>>,
}

impl RouteLimitsUpdate {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A space quota: the org's bounds narrowed for some of its spaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceQuota {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    pub name: String,
    #[serde(default)]
    pub apps: AppLimits,
    #[serde(default)]
    pub services: ServiceLimits,
    #[serde(default)]
    pub routes: RouteLimits,
    #[serde(default)]
    pub relationships: SpaceQuotaRelationships,
    #[serde(default)]
    pub links: Links,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceQuotaRelationships {
    #[serde(default)]
    pub organization: ToOne,
    #[serde(default)]
    pub spaces: ToMany,
}

/// `POST /v3/space_quotas`: limits for spaces of one org (`null` = unlimited).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceQuotaCreate {
    pub name: String,
    pub apps: AppLimitsCreate,
    pub routes: RouteLimitsCreate,
    pub relationships: SpaceQuotaCreateRelationships,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceQuotaCreateRelationships {
    pub organization: ToOne,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn a_quota_survives_a_round_trip() {
        let q: OrganizationQuota = round_trip(
            r#"{"guid": "q-1", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z",
                "name": "small",
                "apps": {"total_memory_in_mb": 512, "per_process_memory_in_mb": 256, "total_instances": null,
                         "per_app_tasks": null, "log_rate_limit_in_bytes_per_second": null},
                "services": {"paid_services_allowed": true, "total_service_instances": null, "total_service_keys": null},
                "routes": {"total_routes": 10, "total_reserved_ports": null},
                "domains": {"total_domains": null},
                "relationships": {"organizations": {"data": []}},
                "links": {"self": {"href": "https://api.example.com/v3/organization_quotas/q-1"}}}"#,
        );
        assert_eq!((q.apps.total_memory_in_mb, q.apps.total_instances), (Some(512), None));
    }

    #[test]
    fn an_update_keeps_absent_limits_apart_from_unlimited_ones() {
        let u: OrganizationQuotaUpdate =
            round_trip(r#"{"name":"big","apps":{"total_memory_in_mb":null,"total_instances":8}}"#);
        assert_eq!(u.apps.total_memory_in_mb, Some(None));
        assert_eq!(u.apps.per_process_memory_in_mb, None);
        assert_eq!(u.apps.total_instances, Some(Some(8)));
        assert!(u.routes.is_empty() && !u.is_empty());
        assert!(OrganizationQuotaUpdate::default().is_empty());
    }

    #[test]
    fn a_space_quota_create_body_names_its_org() {
        let c: SpaceQuotaCreate = round_trip(
            r#"{"name":"sq","apps":{"total_memory_in_mb":512,"per_process_memory_in_mb":null,"total_instances":null},
                "routes":{"total_routes":2},"relationships":{"organization":{"data":{"guid":"o-1"}}}}"#,
        );
        assert_eq!(c.relationships.organization.guid(), Some("o-1"));
    }

    #[test]
    fn a_space_quota_survives_a_round_trip() {
        let q: SpaceQuota = round_trip(
            r#"{"guid": "sq-1", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z",
                "name": "small",
                "apps": {"total_memory_in_mb": 512, "per_process_memory_in_mb": null, "total_instances": null,
                         "per_app_tasks": null, "log_rate_limit_in_bytes_per_second": null},
                "services": {"paid_services_allowed": true, "total_service_instances": null, "total_service_keys": null},
                "routes": {"total_routes": 4, "total_reserved_ports": null},
                "relationships": {"organization": {"data": {"guid": "o-1"}}, "spaces": {"data": [{"guid": "s-1"}]}},
                "links": {"self": {"href": "https://api.example.com/v3/space_quotas/sq-1"}}}"#,
        );
        assert_eq!(q.relationships.organization.guid(), Some("o-1"));
        assert_eq!(q.apps.total_memory_in_mb, Some(512));
    }
}

/// `GET /v3/organizations/:guid/usage_summary` and `/v3/spaces/:guid/usage_summary`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageSummary {
    pub usage_summary: Usage,
    #[serde(default)]
    pub links: super::common::Links,
}

/// What an org or a space uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    pub started_instances: i64,
    pub memory_in_mb: i64,
    pub routes: i64,
    pub service_instances: i64,
    pub reserved_ports: i64,
    pub domains: i64,
    /// Tasks pending or running.
    pub per_app_tasks: i64,
    pub service_keys: i64,
}

#[cfg(test)]
mod usage_tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn usage_summaries_read_as_cc_renders_them() {
        let u: UsageSummary = round_trip(
            r#"{"usage_summary": {"started_instances": 3, "memory_in_mb": 50, "routes": 4,
                "service_instances": 2, "reserved_ports": 0, "domains": 1, "per_app_tasks": 2,
                "service_keys": 0},
                "links": {"self": {"href": "https://api.example.com/v3/organizations/o/usage_summary"},
                          "organization": {"href": "https://api.example.com/v3/organizations/o"}}}"#,
        );
        assert_eq!(u.usage_summary.memory_in_mb, 50);
    }
}
