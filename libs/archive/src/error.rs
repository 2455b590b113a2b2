//! The one error type of the crate; every variant reads well in front of a user.

use std::path::Path;

/// Why an archive could not be read or written. Callers map `PathEscape`, `Symlink`,
/// `SpecialFile`, `TooLarge`, `TooManyFiles`, `RatioExceeded` and `Corrupt` to a 4xx
/// ("invalid bits", see [`ArchiveError::is_client_error`]) and `Io` to a 5xx.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive entry '{path}' points outside the extraction directory")]
    PathEscape { path: String },
    #[error("archive entry '{path}' is a symlink pointing outside the archive, or is written through a symlink")]
    Symlink { path: String },
    #[error(
        "archive entry '{path}' is a device, fifo or other special file, which is not allowed"
    )]
    SpecialFile { path: String },
    #[error("archive expands to more bytes than allowed (in total or for one file)")]
    TooLarge,
    #[error("archive has more entries than allowed")]
    TooManyFiles,
    #[error("archive expands too many times its compressed size (possible zip bomb)")]
    RatioExceeded,
    #[error("archive is corrupt or not in the expected format: {0}")]
    Corrupt(String),
    #[error("i/o error: {0}")]
    Io(#[source] std::io::Error),
}

impl ArchiveError {
    /// True when the archive itself is at fault (a client error), false for local i/o trouble.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, ArchiveError::Io(_))
    }

    /// Wraps an i/o error with the path it happened on.
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
        move |e| ArchiveError::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }
}
