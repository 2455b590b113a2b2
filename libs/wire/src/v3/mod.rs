//! Cloud Controller v3 resources as the public API renders them: one
//! module per resource, with the request bodies clients send, the closed sets of states as
//! enums and, for resources with a life (app, package, build, droplet, job), the allowed state
//! changes as one table each.
//!
//! Serialization gives CC's JSON: same field names and nesting, `null` where CC writes `null`,
//! absent where CC leaves a field out, timestamps as `YYYY-MM-DDThh:mm:ssZ` strings.
//! Deserialization is lenient where CC may omit a field (`#[serde(default)]`), so clients read
//! real CC answers as well as ours.

/// A closed set of CC states: the enum, its CC spelling (`as_str`, `Display`) and `ALL`.
macro_rules! states {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every state, in CC's documented order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The state as CC writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// The state CC writes as `text`, if it is one.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod app;
pub mod build;
pub mod common;
pub mod deployment;
pub mod domain;
pub mod droplet;
pub mod env_group;
pub mod error;
pub mod event;
pub mod feature_flag;
pub mod isolation_segment;
pub mod job;
pub mod org;
pub mod package;
pub mod process;
pub mod quota;
pub mod resource;
pub mod revision;
pub mod role;
pub mod root;
pub mod route;
pub mod service_binding;
pub mod service_broker;
pub mod service_instance;
pub mod service_offering;
pub mod service_plan;
pub mod space;
pub mod stack;
pub mod task;
pub mod usage_event;

pub use app::{App, AppState};
pub use build::{Build, BuildState};
pub use common::{
    timestamp, Guid, Included, LabelsUpdate, Lifecycle, LifecycleData, Link, Links, Metadata, Page,
    Pagination, Rename, ToMany, ToOne,
};
pub use deployment::{Deployment, DeploymentReason, DeploymentValue};
pub use domain::{Domain, RouteReservation};
pub use droplet::{Droplet, DropletState};
pub use error::{ErrorEntry, Errors};
pub use feature_flag::{FeatureFlag, FeatureFlagUpdate};
pub use job::{Job, JobState};
pub use org::Organization;
pub use package::{Package, PackageState};
pub use process::{InstanceState, Process, ProcessStats, Sidecar};
pub use revision::Revision;
pub use role::{Role, User};
pub use route::{Destination, Route, RouteDestinations};
pub use service_binding::{CredentialBinding, CredentialBindingDetails, RouteBinding};
pub use service_broker::ServiceBroker;
pub use service_instance::{LastOperation, OperationState, OperationType, ServiceInstance};
pub use service_offering::ServiceOffering;
pub use service_plan::{PlanVisibility, ServicePlan};
pub use space::Space;
pub use task::{Task, TaskState};

#[cfg(test)]
pub(crate) mod testing {
    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use serde_json::Value;

    /// Parse `json` as `T`, serialize it back, and require the same JSON value.
    pub fn round_trip<T: Serialize + DeserializeOwned>(json: &str) -> T {
        let want: Value = serde_json::from_str(json).expect("example is JSON");
        let typed: T = serde_json::from_value(want.clone()).expect("example parses");
        let back = serde_json::to_value(&typed).expect("serializes");
        assert_eq!(back, want, "round trip changed the JSON");
        typed
    }

    /// Require `allows` to answer the table for the listed pairs and `false` for every other.
    pub fn check_table<S: Copy + PartialEq + std::fmt::Debug>(
        all: &[S],
        allowed: &[(S, S)],
        allows: fn(S, S) -> bool,
    ) {
        for &from in all {
            for &to in all {
                let want = allowed.contains(&(from, to));
                assert_eq!(allows(from, to), want, "{from:?} -> {to:?}");
            }
        }
    }

    /// Require `as_str` to be the serde spelling of every state.
    pub fn check_spelling<S: Serialize + Copy + std::fmt::Display>(all: &[S]) {
        for s in all {
            assert_eq!(serde_json::to_value(s).expect("state"), Value::from(s.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_parses_back_from_its_spelling_and_nothing_else_does() {
        for s in AppState::ALL {
            assert_eq!(AppState::parse(s.as_str()), Some(*s));
        }
        for s in BuildState::ALL {
            assert_eq!(BuildState::parse(s.as_str()), Some(*s));
        }
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(*s));
        }
        assert_eq!(AppState::parse("started"), None);
        assert_eq!(PackageState::parse(""), None);
    }
}
