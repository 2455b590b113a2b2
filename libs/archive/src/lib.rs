//! Safe handling of the archives a PaaS receives from users and produces itself: application
//! bits (zip, from `cf push`), droplets and buildpack caches (tar.gz), buildpacks (zip).
//!
//! Extraction ([`extract_zip`], [`extract_tar_gz`]) treats every archive as hostile: it writes
//! nothing outside the destination directory (no `..`, no absolute paths, no symlink pointing
//! out, no write through a symlink, no device files), counts bytes and files while streaming
//! against [`Limits`] (header sizes are never trusted), keeps permission bits but strips
//! setuid/setgid/sticky, and removes whatever it wrote when it fails. Image layers
//! ([`apply_layer`]) follow the same rules plus whiteouts and replacement of earlier layers'
//! entries. Creation
//! ([`write_tar_gz`], [`write_zip`], [`zip_dir`]) is deterministic so equal trees give equal
//! bytes. This crate must never follow a symlink found in an archive while extracting, and
//! never leave a half-written output file behind.
//!
//! See `docs/adr/0800-safe-archives.md` for the rules and their reasons.

mod error;
mod extract;
mod hash;
mod layer;
mod tar_read;
mod tar_write;
mod zip_read;
mod zip_write;

pub use error::ArchiveError;
pub use hash::{sha1_file, sha256_file};
pub use layer::{apply_layer, LayerOptions, OPAQUE_WHITEOUT, WHITEOUT_PREFIX};
pub use tar_read::{extract_tar_gz, extract_tar_gz_with_options};
pub use tar_write::{write_tar_gz, TAR_GID, TAR_MTIME, TAR_UID};
pub use zip_read::extract_zip;
pub use zip_write::{write_zip, zip_dir, ZipEntry, ZipEntryKind};

/// Bounds applied while extracting. Every bound is checked against the bytes actually
/// produced by the decompressor, never against sizes declared in archive headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum sum of the sizes of all extracted files, in bytes.
    pub max_total_bytes: u64,
    /// Maximum number of entries (files, directories and links).
    pub max_files: u64,
    /// Maximum expansion ratio (extracted bytes / archive size). Only enforced once more than
    /// [`RATIO_FLOOR_BYTES`] have been extracted, so tiny archives of tiny files always pass.
    pub max_ratio: u64,
    /// Maximum size of any single extracted file, in bytes.
    pub max_file_bytes: u64,
}

/// Extracted size under which [`Limits::max_ratio`] is not enforced (1 MiB).
pub const RATIO_FLOOR_BYTES: u64 = 1 << 20;

impl Default for Limits {
    /// 1 GiB in total, 100 000 entries, ratio 100, 1 GiB per file.
    fn default() -> Self {
        Limits {
            max_total_bytes: 1 << 30,
            max_files: 100_000,
            max_ratio: 100,
            max_file_bytes: 1 << 30,
        }
    }
}

/// Extraction switches beyond [`Limits`]. The default is the strictest setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtractOptions {
    /// Create symlinks whose target is absolute (e.g. `/home/vcap/deps/0/bin`) instead of
    /// refusing them. Safe for extraction itself (nothing is ever written through a symlink),
    /// but only for trees used inside a container whose root is the intended `/`: droplets.
    /// Relative targets climbing out of the destination stay refused.
    pub allow_absolute_symlinks: bool,
}

/// What an extraction produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extracted {
    /// Entries created (files, directories, links).
    pub files: u64,
    /// Bytes written to regular files.
    pub bytes: u64,
}

/// What an archive writer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Lower-case hex SHA-256 of the archive file.
    pub sha256: String,
    /// Size of the archive file in bytes.
    pub size: u64,
}
