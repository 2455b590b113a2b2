//! Integration tests for `blobstore::FsBlobstore`.

mod atomicity;
mod basics;

use blobstore::FsBlobstore;

pub fn store() -> (tempfile::TempDir, FsBlobstore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FsBlobstore::new(dir.path().join("store")).expect("store");
    (dir, store)
}

pub fn temp_count(store: &FsBlobstore) -> usize {
    std::fs::read_dir(store.root().join("tmp")).expect("tmp").count()
}
