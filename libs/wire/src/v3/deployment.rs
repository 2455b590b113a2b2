//! Deployments (`/v3/deployments`): a rolling or canary replacement of an app's web instances
//! by a new droplet or revision, with CC's two-level status (`value` and `reason`).

use serde::{Deserialize, Serialize};

use super::common::{Guid, Links, Metadata, ToOne};

states! {
    /// `status.value`.
    DeploymentValue {
        Active = "ACTIVE",
        Finalized = "FINALIZED",
    }
}

states! {
    /// `status.reason`: the first three while ACTIVE, the others once FINALIZED.
    DeploymentReason {
        Deploying = "DEPLOYING",
        Paused = "PAUSED",
        Canceling = "CANCELING",
        Deployed = "DEPLOYED",
        Canceled = "CANCELED",
        Superseded = "SUPERSEDED",
    }
}

impl DeploymentReason {
    /// The `status.value` this reason belongs to.
    pub fn value(self) -> DeploymentValue {
        match self {
            Self::Deploying | Self::Paused | Self::Canceling => DeploymentValue::Active,
            Self::Deployed | Self::Canceled | Self::Superseded => DeploymentValue::Finalized,
        }
    }

    /// The older top-level `state` CC still renders beside `status`.
    pub fn legacy_state(self) -> &'static str {
        match self {
            Self::Deploying | Self::Paused => "DEPLOYING",
            Self::Canceling => "CANCELING",
            Self::Deployed | Self::Superseded => "DEPLOYED",
            Self::Canceled => "CANCELED",
        }
    }
}

/// The reasons a deployment may move to, from `from` (the deployment lifecycle table).
pub fn allows(from: DeploymentReason, to: DeploymentReason) -> bool {
    use DeploymentReason::*;
    matches!(
        (from, to),
        (Deploying, Paused | Canceling | Deployed | Superseded | Canceled)
            | (Paused, Deploying | Canceling | Superseded | Canceled)
            | (Canceling, Canceled | Superseded)
    )
}

/// One deployment as CC renders it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    /// DEPLOYING, DEPLOYED, CANCELING or CANCELED: older clients read this.
    #[serde(default)]
    pub state: String,
    pub status: DeploymentStatus,
    #[serde(default)]
    pub strategy: String,
    #[serde(default)]
    pub options: DeploymentOptions,
    #[serde(default)]
    pub droplet: Option<Guid>,
    #[serde(default)]
    pub previous_droplet: Option<Guid>,
    #[serde(default)]
    pub new_processes: Vec<NewProcess>,
    #[serde(default)]
    pub revision: Option<RevisionRef>,
    #[serde(default)]
    pub relationships: DeploymentRelationships,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

/// `{"value", "reason", "details"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentStatus {
    pub value: DeploymentValue,
    pub reason: DeploymentReason,
    #[serde(default)]
    pub details: StatusDetails,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDetails {
    /// When an instance of the new process was last seen healthy.
    #[serde(default)]
    pub last_successful_healthcheck: Option<String>,
    #[serde(default)]
    pub last_status_change: Option<String>,
    /// Why the rollout does not go on (a new instance crashing), if it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `options` as rendered and as requested (everything optional in a request).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentOptions {
    #[serde(default)]
    pub max_in_flight: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_instances: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_in_mb: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_in_mb: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_rate_limit_in_bytes_per_second: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canary {
    #[serde(default)]
    pub steps: Vec<CanaryStep>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryStep {
    /// Percent of the web instances that run the new version at this step.
    pub instance_weight: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProcess {
    pub guid: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionRef {
    pub guid: String,
    pub version: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRelationships {
    #[serde(default)]
    pub app: ToOne,
}

/// `POST /v3/deployments`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDeployment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub droplet: Option<Guid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<Guid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<DeploymentOptions>,
    pub relationships: DeploymentRelationships,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::{check_spelling, check_table, round_trip};

    #[test]
    fn a_deployment_round_trips() {
        let d: Deployment = round_trip(
            r#"{"guid": "d-1", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:45Z",
                "state": "DEPLOYING",
                "status": {"value": "ACTIVE", "reason": "DEPLOYING",
                           "details": {"last_successful_healthcheck": "2026-11-25T04:41:45Z",
                                       "last_status_change": "2026-11-25T04:41:45Z"}},
                "strategy": "canary",
                "options": {"max_in_flight": 1, "canary": {"steps": [{"instance_weight": 20}]}},
                "droplet": {"guid": "dr-2"}, "previous_droplet": {"guid": "dr-1"},
                "new_processes": [{"guid": "p-1", "type": "web"}],
                "revision": {"guid": "r-1", "version": 2},
                "relationships": {"app": {"data": {"guid": "a-1"}}},
                "metadata": {"labels": {}, "annotations": {}},
                "links": {"self": {"href": "https://api.example.com/v3/deployments/d-1"}}}"#,
        );
        assert_eq!(d.relationships.app.guid(), Some("a-1"));
        assert_eq!(d.status.reason.value(), DeploymentValue::Active);
    }

    #[test]
    fn reasons_and_their_moves() {
        use DeploymentReason::*;
        check_spelling(DeploymentReason::ALL);
        check_spelling(DeploymentValue::ALL);
        let allowed = [
            (Deploying, Paused),
            (Deploying, Canceling),
            (Deploying, Deployed),
            (Deploying, Superseded),
            (Deploying, Canceled),
            (Paused, Deploying),
            (Paused, Canceling),
            (Paused, Superseded),
            (Paused, Canceled),
            (Canceling, Canceled),
            (Canceling, Superseded),
        ];
        check_table(DeploymentReason::ALL, &allowed, allows);
    }
}
