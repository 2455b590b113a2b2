//! The stager: turns an uploaded package into a droplet (and an OCI image of it) by running
//! buildpacks with the Cloud Foundry lifecycle contract inside a runc container on the stack,
//! streaming every line as `STG` logs and reporting the result to the api over HTTP.
//! It owns nothing durable (scratch dirs, the buildpack cache, app caches, the image layout);
//! it must never run buildpack code as root or outside the staging container (except with
//! the explicit `process` backend), never leave a build without a reported result, and never
//! trust archive contents (extraction goes through the `archive` limits).

pub mod buildpacks;
mod config;
mod container;
mod droplet;
mod error;
mod fetch;
mod logs;
mod report;
mod service;
mod stage;

pub use config::{Backend, Config, CA_BUNDLE};
pub use error::{Error, StageError};
pub use oci::layout::ImageStore;
pub use service::{build, Service};
pub use stage::BUILDER;

/// Shared handles given by `paasd`.
pub struct Deps {
    pub bus: bus::DynBus,
}
