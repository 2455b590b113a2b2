//! The format-independent half of extraction: path checks, limit accounting, writing entries
//! under the destination without following symlinks, and cleanup on failure.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::{ArchiveError, Extracted, Limits, RATIO_FLOOR_BYTES};

/// Permission bits kept from archives: rwx for user/group/other, never setuid/setgid/sticky.
const MODE_MASK: u32 = 0o777;

/// Writes entries under `dest`, enforcing the limits and the path rules.
pub(crate) struct Extractor<'a> {
    dest: PathBuf,
    limits: &'a Limits,
    /// Create symlinks with absolute targets as they are (see [`crate::ExtractOptions`]).
    pub(crate) allow_absolute_symlinks: bool,
    /// Image layer mode (see [`crate::apply_layer`]): an entry replaces whatever an earlier
    /// layer left at its path, and whiteouts remove what earlier layers made.
    pub(crate) layer: bool,
    /// Paths (relative) this extraction wrote, for opaque whiteouts.
    touched: HashSet<PathBuf>,
    compressed: u64,
    created_dest: bool,
    created: Vec<PathBuf>,
    stats: Extracted,
}

impl<'a> Extractor<'a> {
    /// Prepares `dest` (created if missing). `compressed` is the archive size, for the ratio.
    pub(crate) fn new(
        dest: &Path,
        limits: &'a Limits,
        compressed: u64,
    ) -> Result<Self, ArchiveError> {
        let created_dest = !dest.exists();
        fs::create_dir_all(dest).map_err(ArchiveError::io(dest))?;
        Ok(Extractor {
            dest: dest.to_path_buf(),
            limits,
            allow_absolute_symlinks: false,
            layer: false,
            touched: HashSet::new(),
            compressed: compressed.max(1),
            created_dest,
            created: Vec::new(),
            stats: Extracted::default(),
        })
    }

    /// Runs `body`, and on error removes everything this extractor created.
    pub(crate) fn run(
        mut self,
        body: impl FnOnce(&mut Self) -> Result<(), ArchiveError>,
    ) -> Result<Extracted, ArchiveError> {
        match body(&mut self) {
            Ok(()) => Ok(self.stats),
            Err(e) => {
                self.cleanup();
                Err(e)
            }
        }
    }

    fn cleanup(&mut self) {
        if self.created_dest {
            // remove_dir_all does not follow symlinks.
            let _ = fs::remove_dir_all(&self.dest);
            return;
        }
        for path in self.created.iter().rev() {
            let is_dir = fs::symlink_metadata(path).map(|m| m.is_dir()).unwrap_or(false);
            let _ = if is_dir { fs::remove_dir(path) } else { fs::remove_file(path) };
        }
    }

    /// Checks an entry name and returns its relative path (None for the root itself).
    pub(crate) fn sanitize(name: &str) -> Result<Option<PathBuf>, ArchiveError> {
        let mut rel = PathBuf::new();
        for component in Path::new(name).components() {
            match component {
                Component::Normal(part) => rel.push(part),
                Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(ArchiveError::PathEscape { path: name.to_string() })
                }
            }
        }
        Ok((!rel.as_os_str().is_empty()).then_some(rel))
    }

    fn count_entry(&mut self) -> Result<(), ArchiveError> {
        self.stats.files += 1;
        if self.stats.files > self.limits.max_files {
            return Err(ArchiveError::TooManyFiles);
        }
        Ok(())
    }

    /// Creates the missing parents of `rel`, refusing to pass through any symlink.
    fn prepare_parents(&mut self, rel: &Path) -> Result<PathBuf, ArchiveError> {
        let target = self.real_parents(rel)?;
        if let Ok(meta) = fs::symlink_metadata(&target) {
            if meta.file_type().is_symlink() {
                return Err(ArchiveError::Symlink { path: rel.display().to_string() });
            }
        }
        Ok(target)
    }

    /// Creates the missing parents of `rel` (never through a symlink); the path of `rel`.
    fn real_parents(&mut self, rel: &Path) -> Result<PathBuf, ArchiveError> {
        let mut current = self.dest.clone();
        let mut sub = PathBuf::new();
        let parents: Vec<_> = rel.parent().map(|p| p.components().collect()).unwrap_or_default();
        for part in parents {
            current.push(part);
            sub.push(part);
            self.ensure_real_dir(&current, rel, 0o755)?;
            if self.layer {
                self.touched.insert(sub.clone());
            }
        }
        Ok(self.dest.join(rel))
    }

    /// Layer mode: remove what an earlier layer left at `rel` unless both are directories;
    /// `rel` counts as written by this layer.
    pub(crate) fn make_room(&mut self, rel: &Path, is_dir: bool) -> Result<(), ArchiveError> {
        let target = self.real_parents(rel)?;
        self.touched.insert(rel.to_path_buf());
        remove_unless_dir(&target, is_dir)
    }

    /// Layer mode: the whiteout `rel` (`dir/.wh.name`) removes `dir/name` of earlier layers.
    pub(crate) fn whiteout(&mut self, rel: &Path, name: &str) -> Result<(), ArchiveError> {
        self.count_entry()?;
        let mut gone = PathBuf::from(name);
        if gone.components().count() != 1
            || !matches!(gone.components().next(), Some(Component::Normal(_)))
        {
            return Err(ArchiveError::PathEscape { path: rel.display().to_string() });
        }
        if let Some(parent) = rel.parent() {
            gone = parent.join(gone);
        }
        let target = self.real_parents(&gone)?;
        remove_unless_dir(&target, false)
    }

    /// Layer mode: the opaque whiteout in `dir` removes every entry of `dir` that earlier
    /// layers made (this layer's own entries stay, before or after the marker).
    pub(crate) fn opaque(&mut self, dir: &Path) -> Result<(), ArchiveError> {
        self.count_entry()?;
        let target = self.real_parents(&dir.join(".wh..wh..opq"))?;
        let Some(parent) = target.parent() else { return Ok(()) };
        let entries = fs::read_dir(parent).map_err(ArchiveError::io(parent))?;
        for e in entries {
            let e = e.map_err(ArchiveError::io(parent))?;
            let child = dir.join(e.file_name());
            if self.touched.iter().any(|t| t.starts_with(&child)) {
                continue;
            }
            remove_unless_dir(&e.path(), false)?;
        }
        Ok(())
    }

    fn ensure_real_dir(&mut self, path: &Path, rel: &Path, mode: u32) -> Result<(), ArchiveError> {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                Err(ArchiveError::Symlink { path: rel.display().to_string() })
            }
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(ArchiveError::Corrupt(format!(
                "'{}' is both a file and a directory",
                rel.display()
            ))),
            Err(_) => {
                fs::create_dir(path).map_err(ArchiveError::io(path))?;
                self.created.push(path.to_path_buf());
                set_mode(path, (mode & MODE_MASK) | 0o700)
            }
        }
    }

    /// Creates a directory entry.
    pub(crate) fn dir(&mut self, rel: &Path, mode: u32) -> Result<(), ArchiveError> {
        self.count_entry()?;
        let target = self.prepare_parents(rel)?;
        let existed = target.is_dir();
        self.ensure_real_dir(&target, rel, mode)?;
        if existed {
            set_mode(&target, (mode & MODE_MASK) | 0o700)?;
        }
        Ok(())
    }

    /// Creates a regular file from `data`, counting the bytes actually read.
    pub(crate) fn file(
        &mut self,
        rel: &Path,
        mode: u32,
        data: &mut dyn Read,
    ) -> Result<(), ArchiveError> {
        self.count_entry()?;
        let target = self.prepare_parents(rel)?;
        let existing = fs::symlink_metadata(&target).ok();
        if existing.as_ref().is_some_and(|m| m.is_dir()) {
            let msg = format!("'{}' is both a directory and a file", rel.display());
            return Err(ArchiveError::Corrupt(msg));
        }
        let existed = existing.is_some();
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&target)
            .map_err(ArchiveError::io(&target))?;
        if !existed {
            self.created.push(target.clone());
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            let n = data
                .read(&mut buf)
                .map_err(|e| ArchiveError::Corrupt(format!("{}: {e}", rel.display())))?;
            if n == 0 {
                break;
            }
            written += n as u64;
            self.stats.bytes += n as u64;
            self.check_sizes(written)?;
            out.write_all(&buf[..n]).map_err(ArchiveError::io(&target))?;
        }
        drop(out);
        set_mode(&target, mode & MODE_MASK)
    }

    fn check_sizes(&self, file_bytes: u64) -> Result<(), ArchiveError> {
        if file_bytes > self.limits.max_file_bytes || self.stats.bytes > self.limits.max_total_bytes
        {
            return Err(ArchiveError::TooLarge);
        }
        let ratio_bytes = self.limits.max_ratio.saturating_mul(self.compressed);
        if self.stats.bytes > RATIO_FLOOR_BYTES && self.stats.bytes > ratio_bytes {
            return Err(ArchiveError::RatioExceeded);
        }
        Ok(())
    }

    /// Creates a symlink after checking that its target stays inside the destination.
    pub(crate) fn symlink(&mut self, rel: &Path, target: &str) -> Result<(), ArchiveError> {
        self.count_entry()?;
        if !(self.allow_absolute_symlinks && target.starts_with('/')) {
            check_link_target(rel, target)?;
        }
        let path = self.prepare_parents(rel)?;
        if fs::symlink_metadata(&path).is_ok() {
            return Err(ArchiveError::Corrupt(format!("duplicate entry '{}'", rel.display())));
        }
        std::os::unix::fs::symlink(target, &path).map_err(ArchiveError::io(&path))?;
        self.created.push(path);
        Ok(())
    }

    /// Creates a hard link to a regular file extracted earlier (tar only).
    pub(crate) fn hard_link(&mut self, rel: &Path, existing: &Path) -> Result<(), ArchiveError> {
        self.count_entry()?;
        let source = self.prepare_parents(existing)?;
        let meta = fs::symlink_metadata(&source).map_err(|_| {
            ArchiveError::Corrupt(format!("hard link '{}' to a missing file", rel.display()))
        })?;
        if !meta.is_file() {
            return Err(ArchiveError::SpecialFile { path: rel.display().to_string() });
        }
        let path = self.prepare_parents(rel)?;
        if fs::symlink_metadata(&path).is_ok() {
            return Err(ArchiveError::Corrupt(format!("duplicate entry '{}'", rel.display())));
        }
        fs::hard_link(&source, &path).map_err(ArchiveError::io(&path))?;
        self.created.push(path);
        Ok(())
    }
}

/// A link target is allowed when it is relative, any `..` comes first (so it only climbs real
/// directories, which extraction guarantees), and it does not climb above the destination.
/// Everything after the leading `..` descends, and every symlink it may pass through was
/// itself checked, so the resolved path stays inside.
pub(crate) fn check_link_target(rel: &Path, target: &str) -> Result<(), ArchiveError> {
    let refuse = || ArchiveError::Symlink { path: rel.display().to_string() };
    if target.is_empty() {
        return Err(refuse());
    }
    let mut depth = rel.parent().map(|p| p.components().count()).unwrap_or(0);
    let mut descended = false;
    for component in Path::new(target).components() {
        match component {
            Component::CurDir => {}
            Component::Normal(_) => descended = true,
            Component::ParentDir if !descended && depth > 0 => depth -= 1,
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(refuse())
            }
        }
    }
    Ok(())
}

/// Remove `path` (a whole tree for a directory; links are removed, never followed) unless it
/// is a directory and `keep_dir`.
fn remove_unless_dir(path: &Path, keep_dir: bool) -> Result<(), ArchiveError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() && keep_dir => Ok(()),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(ArchiveError::io(path)),
        Ok(_) => fs::remove_file(path).map_err(ArchiveError::io(path)),
        Err(_) => Ok(()),
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), ArchiveError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(ArchiveError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_targets() {
        let ok =
            [("a/l", "../b"), ("a/b/l", "../../c/d"), ("l", "x/y"), ("l", "./x"), ("a/l", "..")];
        for (rel, target) in ok {
            assert!(check_link_target(Path::new(rel), target).is_ok(), "{rel} -> {target}");
        }
        let bad = [
            ("l", ".."),
            ("a/l", "../.."),
            ("l", "/etc"),
            ("l", "x/../.."),
            ("l", "x/../y"),
            ("l", ""),
        ];
        for (rel, target) in bad {
            assert!(check_link_target(Path::new(rel), target).is_err(), "{rel} -> {target}");
        }
    }

    #[test]
    fn sanitize_names() {
        assert_eq!(Extractor::sanitize("./a/b").ok().flatten(), Some(PathBuf::from("a/b")));
        assert_eq!(Extractor::sanitize("./").ok().flatten(), None);
        assert!(Extractor::sanitize("a/../../b").is_err());
        assert!(Extractor::sanitize("/etc/passwd").is_err());
    }
}
