//! Docker and OCI images as the platform reads them: image references (`nginx`,
//! `registry:5000/team/app:1.2`, `...@sha256:…`, Docker Hub defaults), and a client of the
//! Docker Registry HTTP API v2 / OCI distribution API that resolves a reference to one
//! linux/amd64 image (manifest lists and OCI indexes included, OCI and Docker schema 2 media
//! types) and downloads its blobs. Anonymous, basic and Bearer-token auth (from the
//! registry's `WWW-Authenticate` challenge); plain HTTP only for loopback registries and those
//! configured as insecure.
//!
//! Every byte this crate hands out is verified: a manifest, config or layer whose SHA-256
//! differs from its digest is an error, never a result. It never runs or unpacks anything
//! (unpacking layers is `archive::apply_layer`). [`layout`] writes droplets as OCI images
//! (stack + droplet + launcher) into an image layout, and exports one as a tar.

mod auth;
mod client;
mod error;
pub mod layout;
mod manifest;
mod reference;

pub use client::{Credentials, Registry};
pub use error::OciError;
pub use manifest::{Descriptor, ImageConfig, Resolved};
pub use reference::Reference;

/// The platform this crate picks from a manifest list.
pub const OS: &str = "linux";
/// The architecture this crate picks from a manifest list.
pub const ARCH: &str = "amd64";
