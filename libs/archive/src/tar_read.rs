//! Safe tar.gz extraction (droplets, buildpack caches).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use flate2::read::GzDecoder;
use tar::EntryType;

use crate::extract::Extractor;
use crate::{ArchiveError, ExtractOptions, Extracted, Limits};

/// Extracts the gzip-compressed tar file `src` into `dest` (created if missing) under `limits`.
///
/// Regular files, directories, symlinks and hard links (to files extracted earlier) are
/// supported; devices and fifos are refused. Ownership in the archive is ignored (files belong
/// to the extracting user). On any error everything extracted so far is removed.
pub fn extract_tar_gz(src: &Path, dest: &Path, limits: &Limits) -> Result<Extracted, ArchiveError> {
    extract_tar_gz_with_options(src, dest, limits, &ExtractOptions::default())
}

/// [`extract_tar_gz`] with [`ExtractOptions`] (e.g. a droplet whose buildpack created
/// absolute symlinks into `/home/vcap/deps`).
pub fn extract_tar_gz_with_options(
    src: &Path,
    dest: &Path,
    limits: &Limits,
    options: &ExtractOptions,
) -> Result<Extracted, ArchiveError> {
    let file = File::open(src).map_err(ArchiveError::io(src))?;
    let compressed = file.metadata().map_err(ArchiveError::io(src))?.len();
    let mut archive = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
    let mut extractor = Extractor::new(dest, limits, compressed)?;
    extractor.allow_absolute_symlinks = options.allow_absolute_symlinks;
    extractor.run(|ex| {
        for entry in archive.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(rel) = Extractor::sanitize(&name)? else {
                continue;
            };
            // A garbled mode field is harmless: fall back to rw-r--r--.
            let mode = entry.header().mode().unwrap_or(0o644);
            match entry.header().entry_type() {
                EntryType::Regular | EntryType::Continuous => ex.file(&rel, mode, &mut entry)?,
                EntryType::Directory => ex.dir(&rel, mode)?,
                EntryType::Symlink => {
                    let target = link_name(&entry, &name)?;
                    ex.symlink(&rel, &target)?;
                }
                EntryType::Link => {
                    let target = link_name(&entry, &name)?;
                    let existing = Extractor::sanitize(&target)?
                        .ok_or_else(|| ArchiveError::PathEscape { path: target.clone() })?;
                    ex.hard_link(&rel, &existing)?;
                }
                // pax/GNU metadata records are consumed by the tar crate; skip stray ones.
                EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink => {}
                _ => return Err(ArchiveError::SpecialFile { path: name }),
            }
        }
        Ok(())
    })
}

fn link_name<R: std::io::Read>(
    entry: &tar::Entry<'_, R>,
    name: &str,
) -> Result<String, ArchiveError> {
    let bytes = entry
        .link_name_bytes()
        .ok_or_else(|| ArchiveError::Corrupt(format!("link '{name}' has no target")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn corrupt(e: std::io::Error) -> ArchiveError {
    ArchiveError::Corrupt(e.to_string())
}
