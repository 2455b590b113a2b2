//! Disk use of an instance: the bytes allocated in its writable overlay layer (each inode
//! counted once, sparse files by what they really hold), and the check against its quota.
//! The cell measures; it has no filesystem quota to lean on, so an instance over its quota is
//! stopped at the next measurement.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// Bytes allocated under `dir` (0 when it is gone); walks the tree off the async threads.
pub async fn usage(dir: PathBuf) -> u64 {
    tokio::task::spawn_blocking(move || usage_blocking(&dir)).await.unwrap_or(0)
}

fn usage_blocking(dir: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        total = total.saturating_add(meta.blocks().saturating_mul(512));
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        }
    }
    total
}

/// The crash reason of an instance using `used` bytes with a quota of `quota_mb` (0: none).
pub fn over_quota(used: u64, quota_mb: u64) -> Option<String> {
    let quota = quota_mb.saturating_mul(1 << 20);
    (quota > 0 && used > quota).then(|| {
        format!("disk quota exceeded: {} MB used of {quota_mb} MB", used.div_ceil(1 << 20))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn usage_counts_allocated_bytes_once_per_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = usage(dir.path().to_owned()).await;
        std::fs::create_dir(dir.path().join("sub")).expect("sub");
        std::fs::write(dir.path().join("sub/one"), vec![1u8; 1 << 20]).expect("write");
        std::fs::hard_link(dir.path().join("sub/one"), dir.path().join("again")).expect("link");
        let sparse = std::fs::File::create(dir.path().join("sparse")).expect("sparse");
        sparse.set_len(1 << 30).expect("set_len");
        let used = usage(dir.path().to_owned()).await - empty;
        assert!((1 << 20..(1 << 20) + 64 * 1024).contains(&used), "{used}");
        assert_eq!(usage(dir.path().join("gone")).await, 0);
    }

    #[test]
    fn the_quota_is_exceeded_only_above_it() {
        assert_eq!(over_quota(16 << 20, 16), None);
        assert_eq!(over_quota(u64::MAX, 0), None);
        assert_eq!(
            over_quota((16 << 20) + 1, 16).as_deref(),
            Some("disk quota exceeded: 17 MB used of 16 MB")
        );
    }
}
