//! Disk use of a directory tree, two ways: what is allocated (the cell's quota, which has no
//! filesystem quota to lean on) and what the files hold (the stager's scratch limit).

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use walkdir::WalkDir;

fn entries(dir: &Path) -> impl Iterator<Item = std::fs::Metadata> {
    WalkDir::new(dir).follow_links(false).into_iter().flatten().filter_map(|e| e.metadata().ok())
}

/// Bytes allocated under `dir`, itself included (each inode counted once, sparse files by what
/// they really hold, directories too); 0 when it is gone. Blocking.
pub fn allocated_bytes(dir: &Path) -> u64 {
    let mut seen = HashSet::new();
    entries(dir)
        .filter(|m| m.is_dir() || m.nlink() <= 1 || seen.insert((m.dev(), m.ino())))
        .fold(0u64, |total, m| total.saturating_add(m.blocks().saturating_mul(512)))
}

/// Sum of the lengths of the regular files under `dir` (symlinks not followed, hard links
/// counted each time); 0 when it is gone. Blocking.
pub fn file_bytes(dir: &Path) -> u64 {
    entries(dir).filter(|m| m.is_file()).fold(0u64, |total, m| total.saturating_add(m.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocated_bytes_count_each_inode_once_and_sparse_files_by_their_blocks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = allocated_bytes(dir.path());
        std::fs::create_dir(dir.path().join("sub")).expect("sub");
        std::fs::write(dir.path().join("sub/one"), vec![1u8; 1 << 20]).expect("write");
        std::fs::hard_link(dir.path().join("sub/one"), dir.path().join("again")).expect("link");
        let sparse = std::fs::File::create(dir.path().join("sparse")).expect("sparse");
        sparse.set_len(1 << 30).expect("set_len");
        let used = allocated_bytes(dir.path()) - empty;
        assert!((1 << 20..(1 << 20) + 64 * 1024).contains(&used), "{used}");
        assert_eq!(allocated_bytes(&dir.path().join("gone")), 0);
    }

    #[test]
    fn file_bytes_are_the_lengths_of_regular_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("sub");
        std::fs::write(dir.path().join("sub/one"), [1u8; 1000]).expect("write");
        std::fs::write(dir.path().join("two"), [1u8; 24]).expect("write");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).expect("symlink");
        assert_eq!(file_bytes(dir.path()), 1024);
        assert_eq!(file_bytes(&dir.path().join("gone")), 0);
    }
}
