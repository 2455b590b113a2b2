//! Downloads from the api (package, buildpacks) with the component token, and the buildpack
//! cache keyed by `BuildpackRef::key` (verified by SHA-256 before it is cached).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use wire::staging::BuildpackRef;

use crate::error::StageError;

/// HTTP access to the api's internal blob URLs.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub token: Arc<auth::ClientCredentials>,
}

impl Api {
    pub async fn bearer(&self) -> Result<String, StageError> {
        let t = self.token.token().await.map_err(|e| StageError::platform(e.to_string()))?;
        Ok(format!("bearer {t}"))
    }

    /// Streams `url` into `dest`; returns the hex SHA-256 of what was written.
    pub async fn download(&self, url: &str, dest: &Path) -> Result<String, StageError> {
        let fail = |m: String| StageError::platform(format!("download {url}: {m}"));
        let res = self
            .http
            .get(url)
            .header(reqwest::header::AUTHORIZATION, self.bearer().await?)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if res.status() == reqwest::StatusCode::UNAUTHORIZED {
            self.token.invalidate().await;
        }
        if !res.status().is_success() {
            return Err(fail(format!("status {}", res.status())));
        }
        let mut file = tokio::fs::File::create(dest).await.map_err(|e| fail(e.to_string()))?;
        let mut hash = Sha256::new();
        let mut body = res.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| fail(e.to_string()))?;
            hash.update(&chunk);
            file.write_all(&chunk).await.map_err(|e| fail(e.to_string()))?;
        }
        file.flush().await.map_err(|e| fail(e.to_string()))?;
        Ok(hex::encode(hash.finalize()))
    }
}

/// A file-system cache of extracted buildpacks under `<work_dir>/buildpacks/<key>`.
pub struct BuildpackCache {
    dir: PathBuf,
}

impl BuildpackCache {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The extracted buildpack directory, downloading and verifying it when not cached.
    pub async fn get(&self, api: &Api, bp: &BuildpackRef) -> Result<PathBuf, StageError> {
        let dest = self.dir.join(safe_key(&bp.key, &bp.sha256));
        if dest.is_dir() {
            return Ok(dest);
        }
        let io = |e: std::io::Error| StageError::platform(format!("buildpack cache: {e}"));
        tokio::fs::create_dir_all(&self.dir).await.map_err(io)?;
        let nonce = uuid::Uuid::new_v4();
        let zip = self.dir.join(format!(".{nonce}.zip"));
        let tmp = self.dir.join(format!(".{nonce}.d"));
        let got = api.download(&bp.url, &zip).await;
        let result = match got {
            Ok(sum) if !bp.sha256.is_empty() && !sum.eq_ignore_ascii_case(&bp.sha256) => {
                Err(StageError::platform(format!(
                    "buildpack {} checksum mismatch: expected {}, got {sum}",
                    bp.name, bp.sha256
                )))
            }
            Ok(_) => extract(&zip, &tmp).await,
            Err(e) => Err(e),
        };
        let _ = tokio::fs::remove_file(&zip).await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
            return Err(e);
        }
        // Another staging may have won the race; theirs is identical.
        if tokio::fs::rename(&tmp, &dest).await.is_err() {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
        }
        Ok(dest)
    }
}

/// Extract a zip with the archive library's limits (blocking work off the runtime).
pub async fn extract(zip: &Path, dest: &Path) -> Result<(), StageError> {
    let (zip, dest) = (zip.to_owned(), dest.to_owned());
    let name = zip.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dest)?;
        archive::extract_zip(&zip, &dest, &archive::Limits::default())
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()))
    })
    .await
    .map_err(|e| StageError::platform(e.to_string()))?
    .map_err(|e| StageError::Staging(format!("cannot extract {name}: {e}")))
}

/// A directory name for a cache key: only `[A-Za-z0-9._-]`, plus the checksum.
fn safe_key(key: &str, sha: &str) -> String {
    let clean: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    let clean = clean.trim_start_matches('.');
    format!("{clean}-{}", &sha.get(..16).unwrap_or(sha))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_cannot_escape() {
        assert_eq!(safe_key("../../etc", "abcd"), "_.._etc-abcd");
        assert_eq!(
            safe_key("python_buildpack", "0123456789abcdef0123"),
            "python_buildpack-0123456789abcdef"
        );
    }
}
