//! Disk use of an instance: the bytes allocated in its writable overlay layer (each inode
//! counted once, sparse files by what they really hold), and the check against its quota.
//! The cell measures; it has no filesystem quota to lean on, so an instance over its quota is
//! stopped at the next measurement.

use std::path::PathBuf;

/// Bytes allocated under `dir` (0 when it is gone; see [`container::disk::allocated_bytes`]);
/// walks the tree off the async threads.
pub async fn usage(dir: PathBuf) -> u64 {
    ::container::host::allocated_bytes(dir).await
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
    async fn usage_is_what_is_allocated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = usage(dir.path().to_owned()).await;
        std::fs::write(dir.path().join("one"), vec![1u8; 1 << 20]).expect("write");
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
