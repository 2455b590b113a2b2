//! OCI / Docker image layers applied onto a root filesystem, with the extraction rules of
//! the crate plus the layer semantics: an entry replaces what earlier layers left at its path,
//! `.wh.<name>` removes `<name>` of earlier layers and `.wh..wh..opq` empties its directory of
//! what earlier layers made. Ownership is restored with the image's root mapped to an
//! unprivileged user (see docs/adr/1200-docker-images.md).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use tar::EntryType;

use crate::extract::Extractor;
use crate::{ArchiveError, Extracted, Limits};

/// Whiteout prefix of a layer entry.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Opaque-directory marker of a layer entry.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// How a layer's files are owned once applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerOptions {
    /// `Some((uid, gid))`: restore each entry's owner from the archive, the image's root
    /// (uid or gid 0) becoming this user (needs root). `None`: files belong to the extracting
    /// user, as everywhere else in this crate.
    pub map_root_to: Option<(u32, u32)>,
}

/// Applies the layer `src` (a tar, gzip-compressed or not; told by its first bytes) onto the
/// root filesystem `dest` under `limits`. Symlinks may point anywhere absolute (the tree is
/// the container's `/`), but nothing is ever written through one. On error `dest` is left
/// half-applied: callers apply layers into a scratch directory they discard on failure.
pub fn apply_layer(
    src: &Path,
    dest: &Path,
    limits: &Limits,
    options: &LayerOptions,
) -> Result<Extracted, ArchiveError> {
    let mut file = File::open(src).map_err(ArchiveError::io(src))?;
    let compressed = file.metadata().map_err(ArchiveError::io(src))?.len();
    let mut magic = [0u8; 2];
    let gzip = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    file.seek(SeekFrom::Start(0)).map_err(ArchiveError::io(src))?;
    let reader: Box<dyn Read> = if gzip {
        // Parallel gzip writers (umoci, pigz) emit several gzip members.
        Box::new(MultiGzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let real = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let stream = PaddedEnd { inner: reader, real: real.clone(), zeros: 0 };
    let mut archive = tar::Archive::new(stream);
    let mut ex = Extractor::new(dest, limits, compressed)?;
    ex.allow_absolute_symlinks = true;
    ex.layer = true;
    ex.run(|ex| {
        for entry in archive.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            // Layer entries name paths of the image's root: `/etc/x` is `etc/x` under `dest`.
            let Some(rel) = Extractor::sanitize(name.trim_start_matches('/'))? else { continue };
            let base = rel.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            if base == OPAQUE_WHITEOUT {
                ex.opaque(rel.parent().unwrap_or(Path::new("")))?;
                continue;
            }
            if let Some(gone) = base.strip_prefix(WHITEOUT_PREFIX) {
                ex.whiteout(&rel, gone)?;
                continue;
            }
            let header = entry.header();
            let mode = header.mode().unwrap_or(0o644);
            let owner = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
            let kind = header.entry_type();
            match kind {
                EntryType::Regular | EntryType::Continuous => {
                    ex.make_room(&rel, false)?;
                    let end = entry.raw_file_position().saturating_add(entry.size());
                    ex.file(&rel, mode, &mut entry)?;
                    if end > real.get() {
                        return Err(ArchiveError::Corrupt(format!("'{name}' is cut short")));
                    }
                }
                EntryType::Directory => {
                    ex.make_room(&rel, true)?;
                    ex.dir(&rel, mode)?;
                }
                EntryType::Symlink => {
                    let target = link_name(&entry, &name)?;
                    ex.make_room(&rel, false)?;
                    ex.symlink(&rel, &target)?;
                }
                EntryType::Link => {
                    let target = link_name(&entry, &name)?;
                    let existing = Extractor::sanitize(target.trim_start_matches('/'))?
                        .ok_or_else(|| ArchiveError::PathEscape { path: target.clone() })?;
                    ex.make_room(&rel, false)?;
                    ex.hard_link(&rel, &existing)?;
                }
                EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink => continue,
                _ => return Err(ArchiveError::SpecialFile { path: name }),
            }
            if let Some(root) = options.map_root_to {
                let path = dest.join(&rel);
                let uid = map_id(owner.0, root.0);
                let gid = map_id(owner.1, root.1);
                std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
                    .map_err(ArchiveError::io(&path))?;
            }
        }
        Ok(())
    })
}

/// A layer stream that ends in up to [`PADDED_END`] zero bytes after its real end: some
/// image writers (umoci 0.4) stop after the last entry's data, without its padding and the
/// two zero blocks that end a tar. The layer's bytes were checked against its digest, so this
/// adds nothing the image's author did not write; an entry cut short is still an error.
struct PaddedEnd<R> {
    inner: R,
    /// Bytes the layer really held so far.
    real: std::rc::Rc<std::cell::Cell<u64>>,
    zeros: usize,
}

/// The longest missing tail accepted: one block's padding and the two end blocks.
const PADDED_END: usize = 3 * 512;

impl<R: Read> Read for PaddedEnd<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.zeros == 0 {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.real.set(self.real.get() + n as u64);
                return Ok(n);
            }
        }
        let n = buf.len().min(PADDED_END - self.zeros);
        buf[..n].fill(0);
        self.zeros += n;
        Ok(n)
    }
}

fn map_id(id: u64, root: u32) -> u32 {
    match u32::try_from(id) {
        Ok(0) | Err(_) => root,
        Ok(n) => n,
    }
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>, name: &str) -> Result<String, ArchiveError> {
    let bytes = entry
        .link_name_bytes()
        .ok_or_else(|| ArchiveError::Corrupt(format!("link '{name}' has no target")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn corrupt(e: std::io::Error) -> ArchiveError {
    ArchiveError::Corrupt(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_root_maps_to_the_given_user() {
        assert_eq!(map_id(0, 2000), 2000);
        assert_eq!(map_id(33, 2000), 33);
        assert_eq!(map_id(u64::MAX, 2000), 2000);
    }
}
