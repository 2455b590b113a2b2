//! Droplet images: each droplet is downloaded once per cell, verified against its SHA-256,
//! extracted once into a read-only layer (`<layers>/<sha256>/home/vcap/...`, owned by vcap)
//! and shared by every instance through overlayfs. Starting the 2nd..Nth instance extracts
//! nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("downloading droplet: {0}")]
    Download(String),
    #[error("droplet checksum mismatch: expected {expected}, got {actual}")]
    Checksum { expected: String, actual: String },
    #[error("droplet archive: {0}")]
    Archive(#[from] archive::ArchiveError),
    #[error("droplet layer {path}: {message}")]
    Io { path: String, message: String },
}

/// Fetches droplets (with the component token) into layers.
pub struct Images {
    dir: PathBuf,
    http: reqwest::Client,
    token: Option<Arc<auth::ClientCredentials>>,
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

const COMPLETE: &str = ".complete";

impl Images {
    pub fn new(dir: PathBuf, token: Option<Arc<auth::ClientCredentials>>) -> Self {
        Self { dir, http: kit::http::client(), token, inflight: Mutex::new(HashMap::new()) }
    }

    /// The layer of a droplet, fetched and extracted on first use.
    pub async fn layer(&self, url: &str, sha256: &str) -> Result<PathBuf, ImageError> {
        let sha = sha256.to_ascii_lowercase();
        if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ImageError::Checksum {
                expected: sha256.into(),
                actual: "(not a sha256)".into(),
            });
        }
        let layer = self.dir.join(&sha);
        if layer.join(COMPLETE).exists() {
            return Ok(layer);
        }
        let gate = {
            let mut m = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            m.entry(sha.clone()).or_default().clone()
        };
        let _one = gate.lock().await;
        if layer.join(COMPLETE).exists() {
            return Ok(layer);
        }
        let tgz = self.dir.join(format!(".{sha}.tgz"));
        let fetched = self.download(url, &tgz, &sha).await;
        let built = match fetched {
            Ok(()) => self.extract(&tgz, &layer).await,
            Err(e) => Err(e),
        };
        let _ = tokio::fs::remove_file(&tgz).await;
        built.map(|()| layer)
    }

    async fn download(&self, url: &str, dest: &Path, sha: &str) -> Result<(), ImageError> {
        let io = |e: std::io::Error| ImageError::Io {
            path: dest.display().to_string(),
            message: e.to_string(),
        };
        tokio::fs::create_dir_all(&self.dir).await.map_err(io)?;
        let mut req = self.http.get(url);
        if let Some(t) = &self.token {
            let token = t.token().await.map_err(|e| ImageError::Download(e.to_string()))?;
            req = req.bearer_auth(token);
        }
        let res = req.send().await.map_err(|e| ImageError::Download(e.to_string()))?;
        if !res.status().is_success() {
            return Err(ImageError::Download(format!("{url}: {}", res.status())));
        }
        let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
        let mut hash = Sha256::new();
        let mut body = res.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ImageError::Download(e.to_string()))?;
            hash.update(&chunk);
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        let actual = hex::encode(hash.finalize());
        if actual != sha {
            return Err(ImageError::Checksum { expected: sha.into(), actual });
        }
        Ok(())
    }

    async fn extract(&self, tgz: &Path, layer: &Path) -> Result<(), ImageError> {
        let work = self.dir.join(format!(
            ".{}-extract",
            layer.file_name().and_then(|n| n.to_str()).unwrap_or("x")
        ));
        let _ = tokio::fs::remove_dir_all(&work).await;
        let home = work.join("home/vcap");
        let (src, dest) = (tgz.to_owned(), home.clone());
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dest).map_err(archive::ArchiveError::Io)?;
            let options = archive::ExtractOptions { allow_absolute_symlinks: true };
            archive::extract_tar_gz_with_options(&src, &dest, &archive::Limits::default(), &options)
        })
        .await
        .map_err(|e| ImageError::Io {
            path: tgz.display().to_string(),
            message: e.to_string(),
        })??;
        let vcap = home.clone();
        let owned = tokio::task::spawn_blocking(move || {
            ::container::host::chown_tree(&vcap, stack::VCAP_UID, stack::VCAP_GID)
        })
        .await;
        if !owned.as_ref().is_ok_and(|o| o.is_ok()) {
            tracing::warn!(layer = %layer.display(), "cannot hand the droplet to vcap (not root?)");
        }
        let io = |e: std::io::Error| ImageError::Io {
            path: layer.display().to_string(),
            message: e.to_string(),
        };
        tokio::fs::write(work.join(COMPLETE), b"").await.map_err(io)?;
        let _ = tokio::fs::remove_dir_all(layer).await;
        tokio::fs::rename(&work, layer).await.map_err(io)?;
        Ok(())
    }
}
