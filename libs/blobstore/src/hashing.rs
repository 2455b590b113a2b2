//! Incremental SHA-256 + SHA-1 + size, fed while data is written.

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::BlobInfo;

#[derive(Default)]
pub(crate) struct Hashes {
    sha256: Sha256,
    sha1: Sha1,
    size: u64,
}

impl Hashes {
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.sha256.update(data);
        self.sha1.update(data);
        self.size += data.len() as u64;
    }

    pub(crate) fn finish(self) -> BlobInfo {
        BlobInfo {
            size: self.size,
            sha256: hex::encode(self.sha256.finalize()),
            sha1: hex::encode(self.sha1.finalize()),
        }
    }
}
