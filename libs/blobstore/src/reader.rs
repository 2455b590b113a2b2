//! A blob opened for reading.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use crate::BlobInfo;

/// An open blob: an `AsyncRead` of its content plus its [`BlobInfo`]. HTTP handlers stream it
/// with `tokio_util::io::ReaderStream::new(reader)` and set `Content-Length` from
/// [`BlobReader::info`].
pub struct BlobReader {
    inner: Pin<Box<dyn AsyncRead + Send>>,
    info: BlobInfo,
}

impl BlobReader {
    /// Wraps any reader (used by implementations of [`crate::Blobstore`]).
    pub fn new(inner: impl AsyncRead + Send + 'static, info: BlobInfo) -> Self {
        BlobReader { inner: Box::pin(inner), info }
    }

    /// Size and checksums of the blob being read.
    pub fn info(&self) -> &BlobInfo {
        &self.info
    }
}

impl AsyncRead for BlobReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.inner.as_mut().poll_read(cx, buf)
    }
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader").field("info", &self.info).finish_non_exhaustive()
    }
}
