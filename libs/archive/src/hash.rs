//! Streaming SHA-1 / SHA-256 of files and a hashing writer.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::ArchiveError;

/// Lower-case hex SHA-1 of a file (the CF resource-cache key), read in 64 KiB chunks.
pub fn sha1_file(path: &Path) -> Result<String, ArchiveError> {
    digest_file::<Sha1>(path)
}

/// Lower-case hex SHA-256 of a file, read in 64 KiB chunks.
pub fn sha256_file(path: &Path) -> Result<String, ArchiveError> {
    digest_file::<Sha256>(path)
}

fn digest_file<D: Digest>(path: &Path) -> Result<String, ArchiveError> {
    let mut file = File::open(path).map_err(ArchiveError::io(path))?;
    let mut hasher = D::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(ArchiveError::io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// A writer that hashes (SHA-256) and counts what passes through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), size: 0 }
    }

    /// The inner writer, the hex SHA-256 and the byte count.
    pub(crate) fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.size)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
