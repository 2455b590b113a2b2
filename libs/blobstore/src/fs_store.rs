//! [`FsBlobstore`]: blobs as files under a root directory.
//!
//! Layout: `<root>/blobs/<key>` holds the content, `<root>/blobs/<key dir>/.<name>.info` its
//! [`BlobInfo`] as JSON, `<root>/tmp/` the in-flight writes. A write streams into `tmp/`
//! (same filesystem), then renames the sidecar and the blob into place under a short
//! exclusive lock, so readers (who open blob and sidecar under the shared lock) always see a
//! matching pair. Temporary files are removed when a write fails or its future is dropped.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::fs::{self, File};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::RwLock;

use crate::hashing::Hashes;
use crate::{validate_key, BlobError, BlobInfo, BlobReader, Blobstore, ByteStream, Result};

/// A [`Blobstore`] on the local filesystem.
#[derive(Debug)]
pub struct FsBlobstore {
    root: PathBuf,
    blobs: PathBuf,
    tmp: PathBuf,
    commit: RwLock<()>,
}

/// A temporary file removed on drop unless committed.
struct TempFile {
    path: PathBuf,
    committed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl FsBlobstore {
    /// Opens (creating if needed) a blobstore rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let blobs = root.join("blobs");
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&blobs)?;
        std::fs::create_dir_all(&tmp)?;
        Ok(FsBlobstore { root, blobs, tmp, commit: RwLock::new(()) })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes temporary files older than `age` (left by a crashed process); returns how
    /// many were removed. Call at start-up with an age longer than any upload.
    pub async fn remove_stale_temp(&self, age: Duration) -> Result<u64> {
        let mut removed = 0;
        let mut dir = fs::read_dir(&self.tmp).await?;
        let now = SystemTime::now();
        while let Some(entry) = dir.next_entry().await? {
            let modified = entry.metadata().await?.modified()?;
            if now.duration_since(modified).unwrap_or_default() > age {
                fs::remove_file(entry.path()).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn blob_path(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.blobs.join(key))
    }

    fn temp(&self) -> TempFile {
        TempFile { path: self.tmp.join(uuid::Uuid::new_v4().to_string()), committed: false }
    }

    async fn write_stream(&self, mut stream: ByteStream) -> Result<(TempFile, BlobInfo)> {
        let temp = self.temp();
        let mut file = File::create(&temp.path).await?;
        let mut hashes = Hashes::default();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hashes.update(&chunk);
            file.write_all(&chunk).await?;
        }
        file.sync_all().await?;
        Ok((temp, hashes.finish()))
    }

    /// Moves a finished temp file (and its sidecar) into place under `key`.
    async fn commit(&self, key: &str, mut temp: TempFile, info: &BlobInfo) -> Result<()> {
        let path = self.blob_path(key)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).await?;
        }
        let mut sidecar = self.temp();
        fs::write(&sidecar.path, serde_json::to_vec(info).map_err(std::io::Error::other)?).await?;
        let _guard = self.commit.write().await;
        fs::rename(&sidecar.path, sidecar_path(&path)).await?;
        sidecar.committed = true;
        fs::rename(&temp.path, &path).await?;
        temp.committed = true;
        Ok(())
    }

    /// Opens a blob and its info as one consistent pair.
    async fn open(&self, key: &str) -> Result<(File, BlobInfo)> {
        let path = self.blob_path(key)?;
        let (mut file, stored) = {
            let _guard = self.commit.read().await;
            let file = File::open(&path).await.map_err(|e| not_found(key, e))?;
            if !file.metadata().await?.is_file() {
                return Err(BlobError::NotFound { key: key.to_string() });
            }
            (file, read_sidecar(&path).await)
        };
        let info = match stored {
            Some(info) => info,
            None => {
                // Sidecar lost (crash between renames): recompute once and store it.
                let info = hash_file(&mut file).await?;
                file.rewind().await?;
                self.rewrite_sidecar(&path, &info).await?;
                info
            }
        };
        Ok((file, info))
    }

    async fn rewrite_sidecar(&self, path: &Path, info: &BlobInfo) -> Result<()> {
        let mut temp = self.temp();
        fs::write(&temp.path, serde_json::to_vec(info).map_err(std::io::Error::other)?).await?;
        fs::rename(&temp.path, sidecar_path(path)).await?;
        temp.committed = true;
        Ok(())
    }

    async fn verified(&self, key: &str) -> Result<(File, BlobInfo)> {
        let (mut file, info) = self.open(key).await?;
        let actual = hash_file(&mut file).await?;
        if actual.sha256 != info.sha256 || actual.size != info.size {
            return Err(BlobError::ChecksumMismatch { key: key.to_string() });
        }
        file.rewind().await?;
        Ok((file, info))
    }

    async fn download_impl(&self, key: &str, dest: &Path) -> Result<BlobInfo> {
        let (mut file, info) = self.open(key).await?;
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut temp = TempFile {
            path: dest.with_file_name(format!(".{name}.tmp-{}", uuid::Uuid::new_v4())),
            committed: false,
        };
        let mut out = File::create(&temp.path).await?;
        let mut hashes = Hashes::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            hashes.update(&buf[..n]);
            out.write_all(&buf[..n]).await?;
        }
        out.sync_all().await?;
        if hashes.finish().sha256 != info.sha256 {
            return Err(BlobError::ChecksumMismatch { key: key.to_string() });
        }
        fs::rename(&temp.path, dest).await?;
        temp.committed = true;
        Ok(info)
    }

    async fn copy_impl(&self, from: &str, to: &str) -> Result<BlobInfo> {
        let source = self.blob_path(from)?;
        self.blob_path(to)?;
        let temp = self.temp();
        let info = {
            let _guard = self.commit.read().await;
            if fs::hard_link(&source, &temp.path).await.is_err() {
                fs::copy(&source, &temp.path).await.map_err(|e| not_found(from, e))?;
            }
            read_sidecar(&source).await
        };
        let info = match info {
            Some(info) => info,
            None => hash_file(&mut File::open(&temp.path).await?).await?,
        };
        self.commit(to, temp, &info).await?;
        Ok(info)
    }

    async fn delete_impl(&self, key: &str) -> Result<bool> {
        let path = self.blob_path(key)?;
        let _guard = self.commit.write().await;
        if fs::symlink_metadata(&path).await.is_ok_and(|m| m.is_dir()) {
            return Ok(false);
        }
        let existed = match fs::remove_file(&path).await {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(e.into()),
        };
        let _ = fs::remove_file(sidecar_path(&path)).await;
        Ok(existed)
    }
}

fn sidecar_path(blob: &Path) -> PathBuf {
    let name = blob.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    blob.with_file_name(format!(".{name}.info"))
}

async fn read_sidecar(blob: &Path) -> Option<BlobInfo> {
    let bytes = fs::read(sidecar_path(blob)).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

async fn hash_file(file: &mut File) -> Result<BlobInfo> {
    let mut hashes = Hashes::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(hashes.finish());
        }
        hashes.update(&buf[..n]);
    }
}

fn not_found(key: &str, e: std::io::Error) -> BlobError {
    if e.kind() == std::io::ErrorKind::NotFound {
        BlobError::NotFound { key: key.to_string() }
    } else {
        BlobError::Io(e)
    }
}

impl Blobstore for FsBlobstore {
    fn put_file<'a>(&'a self, key: &'a str, path: &'a Path) -> BoxFuture<'a, Result<BlobInfo>> {
        async move {
            validate_key(key)?;
            let file = File::open(path).await?;
            let (temp, info) = self.write_stream(crate::stream_from_reader(file)).await?;
            self.commit(key, temp, &info).await?;
            Ok(info)
        }
        .boxed()
    }

    fn put_stream<'a>(
        &'a self,
        key: &'a str,
        stream: ByteStream,
    ) -> BoxFuture<'a, Result<BlobInfo>> {
        async move {
            validate_key(key)?;
            let (temp, info) = self.write_stream(stream).await?;
            self.commit(key, temp, &info).await?;
            Ok(info)
        }
        .boxed()
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<BlobReader>> {
        async move {
            let (file, info) = self.open(key).await?;
            Ok(BlobReader::new(file, info))
        }
        .boxed()
    }

    fn get_verified<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<BlobReader>> {
        async move {
            let (file, info) = self.verified(key).await?;
            Ok(BlobReader::new(file, info))
        }
        .boxed()
    }

    fn download<'a>(&'a self, key: &'a str, dest: &'a Path) -> BoxFuture<'a, Result<BlobInfo>> {
        self.download_impl(key, dest).boxed()
    }

    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        async move {
            let path = self.blob_path(key)?;
            match fs::metadata(&path).await {
                Ok(meta) => Ok(meta.is_file()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
        .boxed()
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        self.delete_impl(key).boxed()
    }

    fn copy<'a>(&'a self, from: &'a str, to: &'a str) -> BoxFuture<'a, Result<BlobInfo>> {
        self.copy_impl(from, to).boxed()
    }

    fn info<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<BlobInfo>> {
        async move { Ok(self.open(key).await?.1) }.boxed()
    }
}
