//! Why an image could not be resolved or fetched; every message reads well in a build error.

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("invalid image reference '{0}': {1}")]
    Reference(String, String),
    #[error("registry {registry} refused the credentials for {image} ({status}); check the user name and the password (CF_DOCKER_PASSWORD)")]
    Unauthorized { registry: String, image: String, status: u16 },
    #[error(
        "image {image} was not found in registry {registry} (no such repository, tag or digest)"
    )]
    NotFound { registry: String, image: String },
    #[error(
        "{what} of image {image} does not match its digest: expected {expected}, got {actual}"
    )]
    DigestMismatch { image: String, what: String, expected: String, actual: String },
    #[error("image {image} has no linux/amd64 variant (it offers {offers})")]
    NoPlatform { image: String, offers: String },
    #[error("image {image}: {message}")]
    Unsupported { image: String, message: String },
    #[error("registry {registry}: {message}")]
    Registry { registry: String, message: String },
    #[error("{0}")]
    Io(String),
}

impl OciError {
    /// Whether the image or the user is at fault (a failed build), not the platform.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Self::Io(_))
    }
}
