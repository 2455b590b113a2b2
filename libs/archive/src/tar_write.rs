//! Deterministic tar.gz creation (droplets, buildpack caches).

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::write::GzEncoder;
use flate2::Compression;
use tar::{EntryType, Header};

use crate::hash::HashingWriter;
use crate::{ArchiveError, Written};

/// Owner uid of every entry: 2000, the `vcap` user of the stack, so a droplet extracted as
/// root with ownership preserved belongs to the user the app runs as.
pub const TAR_UID: u64 = 2000;
/// Owner gid of every entry (`vcap`).
pub const TAR_GID: u64 = 2000;
/// Modification time of every entry (the epoch), so equal trees give equal archives.
pub const TAR_MTIME: u64 = 0;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `src_dir` as a gzip tar to `dest_file`: entries sorted by name, paths prefixed
/// `./`, fixed mtime/uid/gid ([`TAR_MTIME`], [`TAR_UID`], [`TAR_GID`], user and group
/// `vcap`), permission bits kept (setuid/setgid dropped), symlinks stored as symlinks, other
/// special files skipped. Streams to a temporary file next to `dest_file` and renames it into
/// place, so readers never see a partial archive.
pub fn write_tar_gz(src_dir: &Path, dest_file: &Path) -> Result<Written, ArchiveError> {
    let temp = temp_path(dest_file);
    let result = write_to(src_dir, &temp);
    match result {
        Ok(written) => {
            fs::rename(&temp, dest_file).map_err(ArchiveError::io(dest_file))?;
            Ok(written)
        }
        Err(e) => {
            let _ = fs::remove_file(&temp);
            Err(e)
        }
    }
}

fn temp_path(dest_file: &Path) -> PathBuf {
    let name = dest_file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    dest_file.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

fn write_to(src_dir: &Path, temp: &Path) -> Result<Written, ArchiveError> {
    let file = File::create(temp).map_err(ArchiveError::io(temp))?;
    let hashing = HashingWriter::new(BufWriter::new(file));
    let mut builder = tar::Builder::new(GzEncoder::new(hashing, Compression::default()));
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    let root = header(EntryType::Directory, 0o755, 0);
    append(&mut builder, root, b"./", None, std::io::empty()).map_err(ArchiveError::io(src_dir))?;
    append_dir(&mut builder, src_dir, Path::new("."))?;
    let gz = builder.into_inner().map_err(ArchiveError::io(temp))?;
    let hashing = gz.finish().map_err(ArchiveError::io(temp))?;
    let (buffered, sha256, size) = hashing.finish();
    let file = buffered.into_inner().map_err(|e| ArchiveError::io(temp)(e.into_error()))?;
    file.sync_all().map_err(ArchiveError::io(temp))?;
    Ok(Written { sha256, size })
}

fn header(kind: EntryType, mode: u32, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode & 0o777);
    h.set_size(size);
    h.set_mtime(TAR_MTIME);
    h.set_uid(TAR_UID);
    h.set_gid(TAR_GID);
    let _ = h.set_username("vcap");
    let _ = h.set_groupname("vcap");
    h
}

/// Appends an entry whose name (and link target) are stored byte for byte, using GNU
/// long-name records when they exceed the 100-byte header fields. The tar crate's own path
/// setters would drop the leading `./` that CF droplets carry.
fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    mut h: Header,
    name: &[u8],
    link: Option<&[u8]>,
    data: impl Read,
) -> std::io::Result<()> {
    if let Some(link) = link {
        if link.len() > 100 {
            long_record(builder, EntryType::GNULongLink, link)?;
        }
        let n = link.len().min(100);
        h.as_old_mut().linkname[..n].copy_from_slice(&link[..n]);
    }
    if name.len() > 100 {
        long_record(builder, EntryType::GNULongName, name)?;
    }
    let n = name.len().min(100);
    h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
    h.set_cksum();
    builder.append(&h, data)
}

fn long_record<W: Write>(
    builder: &mut tar::Builder<W>,
    kind: EntryType,
    value: &[u8],
) -> std::io::Result<()> {
    let mut h = header(kind, 0o644, value.len() as u64 + 1);
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_cksum();
    builder.append(&h, value.chain(&[0u8][..]))
}

/// Directory children sorted by file name bytes.
pub(crate) fn sorted_children(dir: &Path) -> Result<Vec<fs::DirEntry>, ArchiveError> {
    let mut entries = fs::read_dir(dir)
        .map_err(ArchiveError::io(dir))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(ArchiveError::io(dir))?;
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

fn append_dir<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &Path,
    rel: &Path,
) -> Result<(), ArchiveError> {
    for entry in sorted_children(dir)? {
        let path = entry.path();
        let name = rel.join(entry.file_name());
        let meta = fs::symlink_metadata(&path).map_err(ArchiveError::io(&path))?;
        let mode = meta.permissions().mode();
        let kind = meta.file_type();
        let name_bytes = name.as_os_str().as_bytes();
        if kind.is_symlink() {
            let target = fs::read_link(&path).map_err(ArchiveError::io(&path))?;
            let h = header(EntryType::Symlink, 0o777, 0);
            append(builder, h, name_bytes, Some(target.as_os_str().as_bytes()), std::io::empty())
                .map_err(ArchiveError::io(&path))?;
        } else if kind.is_dir() {
            let h = header(EntryType::Directory, mode, 0);
            append(builder, h, name_bytes, None, std::io::empty())
                .map_err(ArchiveError::io(&path))?;
            append_dir(builder, &path, &name)?;
        } else if kind.is_file() {
            let file = File::open(&path).map_err(ArchiveError::io(&path))?;
            let h = header(EntryType::Regular, mode, meta.len());
            append(builder, h, name_bytes, None, file.take(meta.len()))
                .map_err(ArchiveError::io(&path))?;
        }
    }
    Ok(())
}
