//! Safe zip extraction (application bits, buildpacks).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::extract::Extractor;
use crate::{ArchiveError, Extracted, Limits};

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;
/// Longest symlink target accepted (Linux PATH_MAX).
const MAX_LINK_TARGET: u64 = 4096;

/// Extracts the zip file `src` into `dest` (created if missing) under `limits`.
///
/// Entries without unix modes get 0644 (files) / 0755 (directories). On any error everything
/// extracted so far is removed and nothing has been written outside `dest`.
pub fn extract_zip(src: &Path, dest: &Path, limits: &Limits) -> Result<Extracted, ArchiveError> {
    let file = File::open(src).map_err(ArchiveError::io(src))?;
    let compressed = file.metadata().map_err(ArchiveError::io(src))?.len();
    let mut zip = zip::ZipArchive::new(file).map_err(corrupt)?;
    if zip.len() as u64 > limits.max_files {
        return Err(ArchiveError::TooManyFiles);
    }
    Extractor::new(dest, limits, compressed)?.run(|ex| {
        for index in 0..zip.len() {
            let mut entry = zip.by_index(index).map_err(corrupt)?;
            let name = entry.name().to_string();
            let Some(rel) = Extractor::sanitize(&name)? else {
                continue;
            };
            let mode = entry.unix_mode();
            match mode.map(|m| m & S_IFMT) {
                Some(S_IFLNK) => {
                    let mut target = String::new();
                    (&mut entry)
                        .take(MAX_LINK_TARGET + 1)
                        .read_to_string(&mut target)
                        .map_err(|e| ArchiveError::Corrupt(format!("{name}: {e}")))?;
                    if target.len() as u64 > MAX_LINK_TARGET {
                        return Err(ArchiveError::Symlink { path: name });
                    }
                    ex.symlink(&rel, &target)?;
                }
                Some(S_IFDIR) => ex.dir(&rel, mode.unwrap_or(0o755))?,
                _ if entry.is_dir() => ex.dir(&rel, mode.unwrap_or(0o755))?,
                None | Some(0) | Some(S_IFREG) => {
                    ex.file(&rel, mode.unwrap_or(0o644), &mut entry)?
                }
                Some(_) => return Err(ArchiveError::SpecialFile { path: name }),
            }
        }
        Ok(())
    })
}

fn corrupt(e: zip::result::ZipError) -> ArchiveError {
    ArchiveError::Corrupt(e.to_string())
}
