//! Apps: the resource, its requested state, the environment
//! documents, and the bodies that change them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{Guid, Lifecycle, Links, Metadata, ToOne};

states! {
    /// What the developer asked for; instances follow it.
    AppState {
        Started = "STARTED",
        Stopped = "STOPPED",
    }
}

/// Whether an app may go from `from` to `to`. Start, stop and restart are idempotent in CC
/// (starting a started app answers 200), so every change is allowed, staying put included.
pub fn allows(from: AppState, to: AppState) -> bool {
    use AppState::{Started, Stopped};
    match (from, to) {
        (Stopped, Started) | (Started, Stopped) => true,
        (Stopped, Stopped) | (Started, Started) => true,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct App {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    pub name: String,
    pub state: AppState,
    #[serde(default)]
    pub lifecycle: Lifecycle,
    #[serde(default)]
    pub relationships: AppRelationships,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRelationships {
    #[serde(default)]
    pub space: ToOne,
    #[serde(default)]
    pub current_droplet: ToOne,
}

/// `POST /v3/apps`: a name in a space, with a lifecycle type when not the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppCreate {
    pub name: String,
    pub relationships: AppCreateRelationships,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppCreateRelationships {
    pub space: ToOne,
}

/// `GET /v3/apps/:guid/environment_variables`, and the body of its `PATCH` (`null` removes a
/// variable).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentVariables {
    #[serde(default)]
    pub var: BTreeMap<String, Option<String>>,
    #[serde(default, skip_serializing_if = "Links::is_empty")]
    pub links: Links,
}

/// `GET /v3/apps/:guid/env`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppEnv {
    pub staging_env_json: BTreeMap<String, Value>,
    pub running_env_json: BTreeMap<String, Value>,
    pub environment_variables: BTreeMap<String, Value>,
    pub system_env_json: BTreeMap<String, Value>,
    pub application_env_json: BTreeMap<String, Value>,
}

/// `PATCH /v3/apps/:guid/relationships/current_droplet`, and its answer (with `links`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentDroplet {
    #[serde(default)]
    pub data: Option<Guid>,
    #[serde(default, skip_serializing_if = "Links::is_empty")]
    pub links: Links,
}

impl CurrentDroplet {
    pub fn set(droplet: &str) -> Self {
        Self { data: Some(Guid::new(droplet)), links: Links::new() }
    }
}

/// `GET /v3/apps/:guid/ssh_enabled`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshEnabled {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub reason: String,
}

/// `GET|PATCH /v3/apps/:guid/features/:name` and `/v3/spaces/:guid/features/:name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feature {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub enabled: bool,
}

/// The body of a feature's `PATCH`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureUpdate {
    pub enabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::{check_spelling, check_table, round_trip};

    /// `services/api` `App::present` for a buildpack app without a droplet.
    const APP: &str = r#"{
        "guid": "1cb006ee-fb05-47e1-b541-c34179ddc446",
        "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:46Z",
        "name": "web", "state": "STOPPED",
        "lifecycle": {"type": "buildpack", "data": {"buildpacks": ["python_buildpack"], "stack": "bookworm"}},
        "relationships": {"space": {"data": {"guid": "s-1"}}, "current_droplet": {"data": null}},
        "metadata": {"labels": {}, "annotations": {}},
        "links": {
            "self": {"href": "https://api.example.com/v3/apps/1cb0"},
            "space": {"href": "https://api.example.com/v3/spaces/s-1"},
            "processes": {"href": "https://api.example.com/v3/apps/1cb0/processes"},
            "packages": {"href": "https://api.example.com/v3/apps/1cb0/packages"},
            "environment_variables": {"href": "https://api.example.com/v3/apps/1cb0/environment_variables"},
            "current_droplet": {"href": "https://api.example.com/v3/apps/1cb0/droplets/current"},
            "droplets": {"href": "https://api.example.com/v3/apps/1cb0/droplets"},
            "tasks": {"href": "https://api.example.com/v3/apps/1cb0/tasks"},
            "start": {"href": "https://api.example.com/v3/apps/1cb0/actions/start", "method": "POST"},
            "stop": {"href": "https://api.example.com/v3/apps/1cb0/actions/stop", "method": "POST"},
            "revisions": {"href": "https://api.example.com/v3/apps/1cb0/revisions"},
            "deployed_revisions": {"href": "https://api.example.com/v3/apps/1cb0/revisions/deployed"},
            "features": {"href": "https://api.example.com/v3/apps/1cb0/features"}
        }
    }"#;

    #[test]
    fn an_app_survives_a_round_trip() {
        let app: App = round_trip(APP);
        assert_eq!(app.state, AppState::Stopped);
        assert_eq!(app.relationships.space.guid(), Some("s-1"));
        assert_eq!(app.relationships.current_droplet.guid(), None);
        assert_eq!(app.lifecycle.data.stack.as_deref(), Some("bookworm"));
    }

    #[test]
    fn a_create_body_names_the_space_and_the_lifecycle_only_when_given() {
        let c: AppCreate = round_trip(
            r#"{"name":"web","relationships":{"space":{"data":{"guid":"s-1"}}},
                "lifecycle":{"type":"docker","data":{}}}"#,
        );
        assert_eq!(c.lifecycle.map(|l| l.kind).as_deref(), Some("docker"));
        let plain = AppCreate {
            name: "web".into(),
            relationships: AppCreateRelationships { space: ToOne::of("s-1") },
            lifecycle: None,
        };
        assert_eq!(
            serde_json::to_string(&plain).expect("json"),
            r#"{"name":"web","relationships":{"space":{"data":{"guid":"s-1"}}}}"#
        );
    }

    #[test]
    fn a_docker_app_has_empty_lifecycle_data() {
        let docker =
            APP.replace(r#"{"buildpacks": ["python_buildpack"], "stack": "bookworm"}"#, "{}");
        let app: App = round_trip(&docker);
        assert_eq!(app.lifecycle.data, Default::default());
    }

    #[test]
    fn a_minimal_app_is_read() {
        let app: App =
            serde_json::from_str(r#"{"guid":"g","name":"n","state":"STARTED"}"#).expect("app");
        assert_eq!(app.state.as_str(), "STARTED");
    }

    #[test]
    fn environment_documents_round_trip() {
        round_trip::<EnvironmentVariables>(
            r#"{"var":{"A":"b"},"links":{"self":{"href":"x"},"app":{"href":"y"}}}"#,
        );
        let patch = EnvironmentVariables {
            var: [("A".to_owned(), None)].into_iter().collect(),
            links: Links::new(),
        };
        assert_eq!(serde_json::to_string(&patch).expect("json"), r#"{"var":{"A":null}}"#);
        round_trip::<AppEnv>(
            r#"{"staging_env_json":{},"running_env_json":{},"environment_variables":{"A":"b"},
                "system_env_json":{"VCAP_SERVICES":{}},"application_env_json":{"VCAP_APPLICATION":{"name":"web"}}}"#,
        );
        assert_eq!(
            serde_json::to_string(&CurrentDroplet::set("d")).expect("json"),
            r#"{"data":{"guid":"d"}}"#
        );
    }

    #[test]
    fn ssh_enabled_round_trips() {
        round_trip::<SshEnabled>(r#"{"enabled": false, "reason": "SSH is not offered"}"#);
    }

    #[test]
    fn transition_table() {
        use AppState::*;
        let allowed =
            [(Stopped, Started), (Started, Stopped), (Stopped, Stopped), (Started, Started)];
        check_table(AppState::ALL, &allowed, allows);
        check_spelling(AppState::ALL);
    }
}

/// `GET /v3/apps/:guid/permissions`: what the caller may read of the app.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppPermissions {
    pub read_basic_data: bool,
    /// Environment variables and service credentials.
    pub read_sensitive_data: bool,
}
