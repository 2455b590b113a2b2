//! The Cloud Foundry application manifest (`manifest.yml`, version 1), shared by the API
//! (`apply_manifest`, `manifest_diff`, `GET /v3/apps/:guid/manifest`) and the CLI (`push`).
//!
//! [`parse`] turns YAML into typed [`Manifest`]s (hyphen and underscore spellings accepted,
//! unknown keys kept in `extra` so the CLI can write them back), [`Manifest::validate`]
//! reports every problem at once in Cloud Controller's words, [`AppManifest::process_specs`]
//! gives the per-process settings with sizes converted, [`diff`] computes `manifest_diff`
//! operations and [`Manifest::to_yaml`] renders a manifest. This crate must never touch the
//! network, the disk or a database, and never expands YAML anchors or aliases (refused, as
//! CC does).

mod diff;
mod model;
mod parse;
mod resolve;
mod route;
mod size;
mod validate;

pub use diff::{diff, DiffKind, DiffOp};
pub use model::{
    AppManifest, DockerManifest, Extra, HealthChecks, Manifest, Metadata, ProcessManifest,
    RouteEntry, ServiceBinding, ServiceEntry, SidecarManifest,
};
pub use parse::{parse, parse_with_vars};
pub use resolve::ProcessSpec;
pub use route::{parse_route, RouteError, RouteSpec};
pub use size::{
    format_log_rate, format_mb, parse_log_rate, parse_size_bytes, parse_size_mb, SizeError,
};
pub use validate::ValidationError;

/// Why a manifest could not be read. `Syntax` and `Anchors` are 400 in CC; `Structure`
/// (a key of the wrong shape) and `MissingVars` are 422-class problems of the content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("Request invalid due to parse error: {0}")]
    Syntax(String),
    #[error("Manifest does not support Anchors and Aliases")]
    Anchors,
    #[error("{0}")]
    Structure(String),
    #[error("Expected to find variables: {}", .0.join(", "))]
    MissingVars(Vec<String>),
    #[error("could not render manifest: {0}")]
    Render(String),
}

impl Manifest {
    /// Renders the manifest as YAML (starting with `---`), known keys in CC's spelling.
    pub fn to_yaml(&self) -> Result<String, ManifestError> {
        let body = serde_yaml::to_string(self).map_err(|e| ManifestError::Render(e.to_string()))?;
        Ok(format!("---\n{body}"))
    }
}
