//! Put/get/info/copy/delete, checksums, key validation.

use blobstore::{resource_key, BlobError, Blobstore};
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncReadExt;

use crate::{store, temp_count};

const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const ABC_SHA1: &str = "a9993e364706816aba3e25717850c26c9cd0d89d";

async fn read_all(store: &dyn Blobstore, key: &str) -> Vec<u8> {
    let mut reader = store.get(key).await.expect("get");
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await.expect("read");
    out
}

#[tokio::test]
async fn put_file_get_info_and_checksums() {
    let (dir, store) = store();
    let src = dir.path().join("abc");
    std::fs::write(&src, b"abc").expect("write");
    let info = store.put_file("packages/p1", &src).await.expect("put");
    assert_eq!((info.size, info.sha256.as_str(), info.sha1.as_str()), (3, ABC_SHA256, ABC_SHA1));
    assert_eq!(store.info("packages/p1").await.expect("info"), info);
    assert_eq!(read_all(&store, "packages/p1").await, b"abc");
    assert_eq!(store.get("packages/p1").await.expect("get").info(), &info);
    assert!(store.exists("packages/p1").await.expect("exists"));
    assert!(!store.exists("packages/p2").await.expect("exists"));
    assert!(matches!(store.get("packages/p2").await, Err(BlobError::NotFound { .. })));
    assert_eq!(temp_count(&store), 0);
}

#[tokio::test]
async fn put_stream_overwrite_and_resource_keys() {
    let (_dir, store) = store();
    let key = resource_key(ABC_SHA1).expect("key");
    let chunks =
        futures::stream::iter(vec![Ok(Bytes::from_static(b"a")), Ok(Bytes::from_static(b"bc"))]);
    let info = store.put_stream(&key, chunks.boxed()).await.expect("put");
    assert_eq!(info.sha1, ABC_SHA1);
    let again = futures::stream::iter(vec![Ok(Bytes::from_static(b"new content"))]);
    let info2 = store.put_stream(&key, again.boxed()).await.expect("overwrite");
    assert_eq!(info2.size, 11);
    assert_eq!(read_all(&store, &key).await, b"new content");
    assert_eq!(store.info(&key).await.expect("info"), info2);
}

#[tokio::test]
async fn copy_and_delete() {
    let (dir, store) = store();
    let src = dir.path().join("abc");
    std::fs::write(&src, b"abc").expect("write");
    let info = store.put_file("droplets/d1", &src).await.expect("put");
    assert_eq!(store.copy("droplets/d1", "droplets/d2").await.expect("copy"), info);
    assert!(store.delete("droplets/d1").await.expect("delete"));
    assert!(!store.delete("droplets/d1").await.expect("delete again"));
    assert!(!store.exists("droplets/d1").await.expect("exists"));
    assert_eq!(read_all(&store, "droplets/d2").await, b"abc");
    assert!(matches!(
        store.copy("droplets/missing", "droplets/x").await,
        Err(BlobError::NotFound { .. })
    ));
    assert!(matches!(store.info("droplets/d1").await, Err(BlobError::NotFound { .. })));
}

#[tokio::test]
async fn verified_reads_and_download_detect_corruption() {
    let (dir, store) = store();
    let src = dir.path().join("abc");
    std::fs::write(&src, b"abc").expect("write");
    store.put_file("buildpacks/b", &src).await.expect("put");
    let dest = dir.path().join("copy");
    store.download("buildpacks/b", &dest).await.expect("download");
    assert_eq!(std::fs::read(&dest).expect("read"), b"abc");
    assert!(store.get_verified("buildpacks/b").await.is_ok());

    // Corrupt the stored content behind the store's back.
    std::fs::write(store.root().join("blobs/buildpacks/b"), b"abd").expect("corrupt");
    assert!(matches!(
        store.get_verified("buildpacks/b").await,
        Err(BlobError::ChecksumMismatch { .. })
    ));
    let dest2 = dir.path().join("copy2");
    assert!(matches!(
        store.download("buildpacks/b", &dest2).await,
        Err(BlobError::ChecksumMismatch { .. })
    ));
    assert!(!dest2.exists());
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).expect("dir").map(|e| e.expect("e").file_name()).collect();
    assert_eq!(names.len(), 3, "no download temp litter: {names:?}");
}

#[tokio::test]
async fn lost_sidecar_is_recomputed() {
    let (dir, store) = store();
    let src = dir.path().join("abc");
    std::fs::write(&src, b"abc").expect("write");
    store.put_file("buildpack_cache/app/bookworm", &src).await.expect("put");
    std::fs::remove_file(store.root().join("blobs/buildpack_cache/app/.bookworm.info"))
        .expect("rm sidecar");
    let info = store.info("buildpack_cache/app/bookworm").await.expect("info");
    assert_eq!(info.sha256, ABC_SHA256);
    assert!(store.root().join("blobs/buildpack_cache/app/.bookworm.info").exists());
}

#[tokio::test]
async fn invalid_keys_are_refused() {
    let (dir, store) = store();
    let src = dir.path().join("abc");
    std::fs::write(&src, b"abc").expect("write");
    for key in ["../escape", "/abs", "a/../../b", "", "a//b", ".hidden", "a/.b.info"] {
        assert!(
            matches!(store.put_file(key, &src).await, Err(BlobError::InvalidKey { .. })),
            "{key}"
        );
        assert!(matches!(store.get(key).await, Err(BlobError::InvalidKey { .. })), "{key}");
        assert!(matches!(store.delete(key).await, Err(BlobError::InvalidKey { .. })), "{key}");
    }
    assert!(!dir.path().join("escape").exists());
}

#[tokio::test]
async fn put_from_a_reader() {
    let (_dir, store) = store();
    let reader = std::io::Cursor::new(b"abc".to_vec());
    let info =
        store.put_stream("packages/r", blobstore::stream_from_reader(reader)).await.expect("put");
    assert_eq!(info.sha1, ABC_SHA1);
    let body = read_all(&store, "packages/r").await;
    assert_eq!(body, b"abc");
}

#[tokio::test]
async fn a_key_prefix_is_not_a_blob() {
    let (dir, store) = store();
    let src = dir.path().join("abc");
    std::fs::write(&src, b"abc").expect("write");
    store.put_file("buildpack_cache/app/bookworm", &src).await.expect("put");
    assert!(!store.exists("buildpack_cache/app").await.expect("exists"));
    assert!(matches!(store.get("buildpack_cache/app").await, Err(BlobError::NotFound { .. })));
    assert!(!store.delete("buildpack_cache/app").await.expect("delete"));
    assert!(store.exists("buildpack_cache/app/bookworm").await.expect("exists"));
}
