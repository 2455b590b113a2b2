//! Zip creation (the CLI's package upload, buildpack zips), keeping unix modes and symlinks.

use std::fs::{self, File};
use std::io::{Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::ArchiveError;

/// What a zip entry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZipEntryKind {
    /// A regular file whose content is read from `source`.
    File { source: PathBuf },
    /// A directory (name written with a trailing `/`).
    Dir,
    /// A symlink to `target` (stored as the entry content, unix mode `S_IFLNK`).
    Symlink { target: String },
}

/// One entry to write with [`write_zip`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    /// Relative path with `/` separators, e.g. `lib/app.rb`.
    pub path: String,
    /// Permission bits (e.g. `0o755`); setuid/setgid/sticky are dropped.
    pub mode: u32,
    pub kind: ZipEntryKind,
}

/// Writes `entries` in order into a zip on `dest` and returns `dest`. Files are deflated,
/// timestamps fixed at 1980-01-01 so equal inputs give equal bytes.
pub fn write_zip<W, I>(entries: I, dest: W) -> Result<W, ArchiveError>
where
    W: Write + Seek,
    I: IntoIterator<Item = ZipEntry>,
{
    let mut zip = ZipWriter::new(dest);
    for entry in entries {
        let base = SimpleFileOptions::default()
            .last_modified_time(DateTime::default())
            .unix_permissions(entry.mode & 0o777);
        let name = entry.path.trim_start_matches("./").to_string();
        match &entry.kind {
            ZipEntryKind::Dir => zip.add_directory(name, base).map_err(zip_err)?,
            ZipEntryKind::Symlink { target } => {
                zip.add_symlink(name, target, base).map_err(zip_err)?
            }
            ZipEntryKind::File { source } => {
                let mut file = File::open(source).map_err(ArchiveError::io(source))?;
                let len = file.metadata().map_err(ArchiveError::io(source))?.len();
                let options = base
                    .compression_method(CompressionMethod::Deflated)
                    .large_file(len >= u64::from(u32::MAX));
                zip.start_file(name, options).map_err(zip_err)?;
                std::io::copy(&mut file, &mut zip).map_err(ArchiveError::io(source))?;
            }
        }
    }
    zip.finish().map_err(zip_err)
}

/// Zips `files` (paths relative to `root`; directories, regular files and symlinks) into
/// `dest`, sorted by path, with their modes. Used by `cf push` for the unmatched files.
pub fn zip_dir<W: Write + Seek>(
    root: &Path,
    files: &[PathBuf],
    dest: W,
) -> Result<W, ArchiveError> {
    let mut sorted: Vec<&PathBuf> = files.iter().collect();
    sorted.sort();
    let mut entries = Vec::with_capacity(sorted.len());
    for rel in sorted {
        if rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
            return Err(ArchiveError::PathEscape { path: rel.display().to_string() });
        }
        let source = root.join(rel);
        let meta = fs::symlink_metadata(&source).map_err(ArchiveError::io(&source))?;
        let path = rel.to_string_lossy().into_owned();
        let mode = meta.permissions().mode();
        let kind = if meta.file_type().is_symlink() {
            let target = fs::read_link(&source).map_err(ArchiveError::io(&source))?;
            ZipEntryKind::Symlink { target: target.to_string_lossy().into_owned() }
        } else if meta.is_dir() {
            ZipEntryKind::Dir
        } else if meta.is_file() {
            ZipEntryKind::File { source }
        } else {
            return Err(ArchiveError::SpecialFile { path });
        };
        entries.push(ZipEntry { path, mode, kind });
    }
    write_zip(entries, dest)
}

fn zip_err(e: zip::result::ZipError) -> ArchiveError {
    match e {
        zip::result::ZipError::Io(io) => ArchiveError::Io(io),
        other => ArchiveError::Corrupt(other.to_string()),
    }
}
