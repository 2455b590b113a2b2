//! Turning an upload into a package (docs/api.md, "Push"): the `bits` zip is streamed to a
//! temporary file under a size bound, extracted with the archive library's guards (paths
//! escaping the app folder, symlinks pointing out, zip bombs, too many files), the cached
//! `resources` the client did not send are added from the resource cache, every file is put in
//! the cache for the next push, and the tree is zipped into the package blob. Nothing is ever
//! written outside the upload's own scratch directory, which is removed in every outcome.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// A file the client did not send because the platform has it (by SHA-1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub path: String,
    pub sha1: String,
    pub mode: u32,
    pub size: u64,
}

/// Parse `resources` in the v3 shape (`path, mode, checksum.value, size_in_bytes`) or the v2
/// one (`fn, sha1, size, mode`).
pub fn parse_resources(v: &Value) -> ApiResult<Vec<Resource>> {
    let bad = |why: String| ApiError::AppBitsUploadInvalid(format!("resources: {why}"));
    let list = v.as_array().ok_or_else(|| bad("must be a JSON array".into()))?;
    list.iter()
        .map(|r| {
            let path = r
                .get("path")
                .or_else(|| r.get("fn"))
                .and_then(Value::as_str)
                .ok_or_else(|| bad("every entry needs a path".into()))?;
            let sha1 = r
                .pointer("/checksum/value")
                .or_else(|| r.get("sha1"))
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("'{path}' has no checksum")))?;
            if sha1.len() != 40 || !sha1.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad(format!("'{path}' has an invalid SHA-1 '{sha1}'")));
            }
            let mode = match r.get("mode") {
                Some(Value::String(m)) => u32::from_str_radix(m, 8)
                    .map_err(|_| bad(format!("'{path}' has an invalid mode '{m}'")))?,
                Some(Value::Number(n)) => {
                    n.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0o644)
                }
                _ => 0o644,
            };
            let size = r
                .get("size_in_bytes")
                .or_else(|| r.get("size"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            safe_relative(path)
                .map_err(|_| bad(format!("'{path}' is not a relative path inside the app")))?;
            Ok(Resource { path: path.to_owned(), sha1: sha1.to_ascii_lowercase(), mode, size })
        })
        .collect()
}

/// A relative path with only normal components.
pub fn safe_relative(p: &str) -> Result<PathBuf, ()> {
    let path = Path::new(p);
    if p.is_empty() || path.is_absolute() || p.contains('\0') {
        return Err(());
    }
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return Err(()),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(());
    }
    Ok(out)
}

/// Scratch space of one upload, removed on drop.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(s: &AppState, what: &str) -> ApiResult<Self> {
        let dir =
            s.config.data_dir.join("tmp").join(format!("{what}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Stream a multipart field into `dest`, refusing more than `max` bytes.
pub async fn field_to_file(
    field: &mut axum::extract::multipart::Field<'_>,
    dest: &Path,
    max: u64,
) -> ApiResult<u64> {
    let mut file = std::fs::File::create(dest)?;
    let mut total = 0u64;
    loop {
        let chunk = field.chunk().await.map_err(|e| {
            ApiError::AppBitsUploadInvalid(format!("the upload was interrupted or malformed: {e}"))
        })?;
        let Some(chunk) = chunk else { break };
        total += chunk.len() as u64;
        if total > max {
            return Err(ApiError::AppBitsUploadInvalid(format!(
                "the uploaded zip is larger than the limit of {max} bytes; exclude files with .cfignore"
            )));
        }
        file.write_all(&chunk)?;
    }
    file.sync_all()?;
    Ok(total)
}

fn archive_error(e: archive::ArchiveError) -> ApiError {
    if e.is_client_error() {
        ApiError::AppBitsUploadInvalid(e.to_string())
    } else {
        ApiError::Internal(e.to_string())
    }
}

/// Extract, merge cached resources, cache, and zip into `package.zip` in the scratch dir.
/// Returns the path of the package zip.
pub async fn assemble(
    s: &AppState,
    scratch: &Scratch,
    bits: Option<PathBuf>,
    resources: Vec<Resource>,
) -> ApiResult<PathBuf> {
    let app = scratch.dir.join("app");
    std::fs::create_dir_all(&app)?;
    let limits = archive::Limits {
        max_total_bytes: s.config.max_package_bytes,
        max_files: s.config.max_package_files,
        max_ratio: s.config.max_expansion_ratio,
        max_file_bytes: s.config.max_package_bytes,
    };
    if let Some(zip) = bits {
        let dest = app.clone();
        tokio::task::spawn_blocking(move || archive::extract_zip(&zip, &dest, &limits))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(archive_error)?;
    }
    for r in &resources {
        let rel = safe_relative(&r.path).map_err(|_| {
            ApiError::AppBitsUploadInvalid(format!("resource path '{}' is not allowed", r.path))
        })?;
        let dest = app.join(&rel);
        refuse_symlinked_parents(&app, &rel)?;
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let key = blobstore::resource_key(&r.sha1)?;
        match s.blobs.download(&key, &dest).await {
            Ok(_) => {}
            Err(blobstore::BlobError::NotFound { .. }) => {
                return Err(ApiError::AppBitsUploadInvalid(format!(
                    "the resource '{}' ({}) is not in the platform's cache; send it in the zip",
                    r.path, r.sha1
                )))
            }
            Err(e) => return Err(e.into()),
        }
        let mode = if r.mode & 0o111 != 0 { 0o755 } else { 0o644 };
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))?;
    }
    let files = list_files(&app)?;
    cache_files(s, &app, &files).await;
    let out = scratch.dir.join("package.zip");
    let (root, target) = (app.clone(), out.clone());
    tokio::task::spawn_blocking(move || -> Result<(), archive::ArchiveError> {
        let f = std::fs::File::create(&target).map_err(archive::ArchiveError::Io)?;
        archive::zip_dir(&root, &files, f)?;
        Ok(())
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(archive_error)?;
    Ok(out)
}

fn refuse_symlinked_parents(root: &Path, rel: &Path) -> ApiResult<()> {
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        if let Ok(m) = std::fs::symlink_metadata(&cur) {
            if m.file_type().is_symlink() {
                return Err(ApiError::AppBitsUploadInvalid(format!(
                    "resource path '{}' goes through a symlink",
                    rel.display()
                )));
            }
        }
    }
    Ok(())
}

/// Every entry under `root`, relative.
fn list_files(root: &Path) -> ApiResult<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let p = e.path();
            let ft = e.file_type()?;
            if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.to_path_buf());
            }
            if ft.is_dir() {
                stack.push(p);
            }
        }
    }
    Ok(out)
}

/// Put every regular, non-empty file into the resource cache (best effort).
async fn cache_files(s: &AppState, root: &Path, files: &[PathBuf]) {
    for rel in files {
        let p = root.join(rel);
        let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
        if !meta.is_file() || meta.len() < s.config.resource_cache_min_bytes {
            continue;
        }
        let path = p.clone();
        let Ok(Ok(sha1)) = tokio::task::spawn_blocking(move || archive::sha1_file(&path)).await
        else {
            continue;
        };
        let Ok(key) = blobstore::resource_key(&sha1) else { continue };
        if matches!(s.blobs.exists(&key).await, Ok(true)) {
            continue;
        }
        if let Err(e) = s.blobs.put_file(&key, &p).await {
            tracing::warn!(error = %e, "could not cache an uploaded file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_paths_must_stay_inside() {
        assert!(safe_relative("a/b.txt").is_ok());
        assert!(safe_relative("./a").is_ok());
        for bad in ["../x", "/etc/passwd", "a/../../x", "", "."] {
            assert!(safe_relative(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn both_resource_shapes_parse_and_bad_ones_are_refused() {
        let sha = "a".repeat(40);
        let v3 = serde_json::json!([{"path": "a.txt", "mode": "755", "checksum": {"value": sha}, "size_in_bytes": 3}]);
        let r = parse_resources(&v3).expect("test value");
        assert_eq!(r[0].mode, 0o755);
        let v2 = serde_json::json!([{"fn": "b.txt", "sha1": sha, "size": 3, "mode": "644"}]);
        assert_eq!(parse_resources(&v2).expect("test value")[0].path, "b.txt");
        let escape = serde_json::json!([{"path": "../x", "checksum": {"value": sha}}]);
        assert!(parse_resources(&escape).is_err());
        let bad_sha = serde_json::json!([{"path": "x", "checksum": {"value": "zz"}}]);
        assert!(parse_resources(&bad_sha).is_err());
    }
}
