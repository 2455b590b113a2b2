//! Errors: how a staging failed (reported to the api) and why the service could not start.

use wire::staging::StagingFailure;

/// Why one staging failed; becomes the build's `"<error_id> - <message>"`.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A failure the lifecycle or a limit named (`NoAppDetectedError`, `BuildpackCompileFailed`,
    /// `BuildpackReleaseFailed`, `StagingTimeExpired`, `InsufficientResources`).
    #[error("{error_id} - {message}")]
    Failed { error_id: String, message: String },
    /// Anything else: downloads, uploads, the container runtime.
    #[error("StagingError - Staging error: {0}")]
    Staging(String),
}

impl StageError {
    pub fn platform(message: impl Into<String>) -> Self {
        Self::Staging(message.into())
    }

    pub fn failed(error_id: &str, message: impl Into<String>) -> Self {
        Self::Failed { error_id: error_id.into(), message: message.into() }
    }

    pub fn to_failure(&self) -> StagingFailure {
        match self {
            Self::Failed { error_id, message } => {
                StagingFailure { error_id: error_id.clone(), message: message.clone() }
            }
            Self::Staging(m) => StagingFailure {
                error_id: "StagingError".into(),
                message: format!("Staging error: {m}"),
            },
        }
    }
}

/// Why the service could not be built or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config: {0}")]
    Config(String),
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("work dir {path}: {source}")]
    WorkDir { path: String, source: std::io::Error },
    #[error("bus: {0}")]
    Bus(#[from] bus::BusError),
    #[error("serve: {0}")]
    Serve(String),
}
