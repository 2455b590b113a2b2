//! Blob storage for everything large the platform keeps: app packages, droplets, admin
//! buildpacks, per-app buildpack caches and the per-file resource cache used by `cf push`
//! resource matching.
//!
//! [`Blobstore`] is shaped after S3-style object stores (flat keys, whole-object writes, no
//! partial updates) so a remote implementation can replace [`FsBlobstore`] later. Every write
//! is atomic: a reader sees the old object, the new object or nothing, never a partial one,
//! and a failed or aborted write leaves no temporary litter. Checksums (SHA-256, SHA-1) and
//! sizes are computed while writing and stored beside the blob so they are never recomputed.
//! This crate must never accept a key that could leave its root (see [`validate_key`]), and
//! never interpret blob contents.

mod fs_store;
mod hashing;
mod keys;
mod reader;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

pub use fs_store::FsBlobstore;
pub use keys::{
    buildpack_cache_key, buildpack_key, droplet_key, package_key, resource_key, validate_key,
};
pub use reader::BlobReader;

/// A shared blobstore handle, as handed to services.
pub type DynBlobstore = Arc<dyn Blobstore>;

/// A stream of bytes to store (e.g. an HTTP request body mapped to `io::Error`).
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Size and checksums of a stored blob.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlobInfo {
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Lower-case hex SHA-1 (the resource-cache key of CF).
    pub sha1: String,
}

/// Errors of a blobstore. `InvalidKey` is a caller bug or hostile input (400), `NotFound`
/// maps to 404, `ChecksumMismatch` and `Io` are server errors (500).
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("invalid blob key '{key}': {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("blob '{key}' not found")]
    NotFound { key: String },
    #[error("blob '{key}' is corrupt: stored checksum does not match its content")]
    ChecksumMismatch { key: String },
    #[error("blobstore i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Result alias of this crate.
pub type Result<T, E = BlobError> = std::result::Result<T, E>;

/// Object storage for large immutable blobs, addressed by `/`-separated keys.
pub trait Blobstore: Send + Sync {
    /// Stores the file at `path` under `key` (streamed; atomic; replaces an existing blob).
    fn put_file<'a>(&'a self, key: &'a str, path: &'a Path) -> BoxFuture<'a, Result<BlobInfo>>;

    /// Stores everything `stream` yields under `key`. If the stream fails or the future is
    /// dropped before completion, nothing is stored and no temporary data remains.
    fn put_stream<'a>(
        &'a self,
        key: &'a str,
        stream: ByteStream,
    ) -> BoxFuture<'a, Result<BlobInfo>>;

    /// Opens a blob for streaming out; the reader carries the blob's [`BlobInfo`].
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<BlobReader>>;

    /// Like [`Blobstore::get`] but first checks the content against the stored SHA-256
    /// (reads the blob twice; use where integrity matters more than latency).
    fn get_verified<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<BlobReader>>;

    /// Copies a blob into the local file `dest` (atomically: temp file then rename) and
    /// verifies its SHA-256 on the way. For consumers that need a path (archive extraction).
    fn download<'a>(&'a self, key: &'a str, dest: &'a Path) -> BoxFuture<'a, Result<BlobInfo>>;

    /// Whether a blob exists under `key`.
    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>>;

    /// Removes a blob; deleting a missing blob is not an error (returns false).
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>>;

    /// Copies blob `from` to `to` (atomic for `to`), keeping its checksums.
    fn copy<'a>(&'a self, from: &'a str, to: &'a str) -> BoxFuture<'a, Result<BlobInfo>>;

    /// Size and checksums of a blob, from the stored sidecar.
    fn info<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<BlobInfo>>;
}

/// Adapts any `AsyncRead` (a file, a decompressor, a request body reader) into the
/// [`ByteStream`] that [`Blobstore::put_stream`] takes, reading 64 KiB at a time.
pub fn stream_from_reader(reader: impl tokio::io::AsyncRead + Send + 'static) -> ByteStream {
    use futures::StreamExt;
    tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024).boxed()
}
