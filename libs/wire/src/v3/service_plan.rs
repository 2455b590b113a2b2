//! Service plans of offerings, and who may see them (`/v3/service_plans/:guid/visibility`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{Links, Metadata, ToOne};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServicePlan {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `public`, `admin`, `organization` or `space`.
    #[serde(default)]
    pub visibility_type: String,
    #[serde(default)]
    pub available: bool,
    #[serde(default)]
    pub free: bool,
    #[serde(default)]
    pub costs: Vec<Value>,
    #[serde(default)]
    pub maintenance_info: Value,
    #[serde(default)]
    pub broker_catalog: PlanCatalog,
    #[serde(default)]
    pub schemas: Value,
    #[serde(default)]
    pub relationships: ServicePlanRelationships,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanCatalog {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub metadata: Value,
    #[serde(default)]
    pub maximum_polling_duration: Option<i64>,
    #[serde(default)]
    pub features: PlanFeatures,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanFeatures {
    #[serde(default)]
    pub plan_updateable: bool,
    #[serde(default)]
    pub bindable: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePlanRelationships {
    #[serde(default)]
    pub service_offering: ToOne,
}

/// `GET|PATCH|POST /v3/service_plans/:guid/visibility`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanVisibility {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizations: Option<Vec<VisibleOrg>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<VisibleOrg>,
}

/// An org (or space) a plan is visible in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisibleOrg {
    pub guid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::round_trip;

    #[test]
    fn a_plan_and_its_visibility_survive_a_round_trip() {
        let p: ServicePlan = round_trip(
            r#"{"guid": "p-1", "created_at": "2026-12-05T08:00:00Z", "updated_at": "2026-12-05T08:00:00Z",
                "name": "small", "description": "Small", "visibility_type": "organization",
                "available": true, "free": true, "costs": [], "maintenance_info": {},
                "broker_catalog": {"id": "small-id", "metadata": {}, "maximum_polling_duration": null,
                                   "features": {"plan_updateable": true, "bindable": true}},
                "schemas": {"service_instance": {"create": {}, "update": {}}, "service_binding": {"create": {}}},
                "relationships": {"service_offering": {"data": {"guid": "o-1"}}},
                "metadata": {"labels": {}, "annotations": {}},
                "links": {"self": {"href": "https://api.example.com/v3/service_plans/p-1"}}}"#,
        );
        assert_eq!(p.visibility_type, "organization");
        let v: PlanVisibility = round_trip(
            r#"{"type": "organization", "organizations": [{"guid": "o-1", "name": "org"}]}"#,
        );
        assert_eq!(v.organizations.map(|o| o.len()), Some(1));
        let public: PlanVisibility = round_trip(r#"{"type": "public"}"#);
        assert!(public.organizations.is_none());
    }
}
