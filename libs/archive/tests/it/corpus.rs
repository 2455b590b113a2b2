//! Builders for test archives and a sandbox with a sentinel directory beside the destination.

use std::fs::{self, File};
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use zip::write::SimpleFileOptions;

/// `root/dest` (extraction target), `root/outside` (must stay empty), `root/archive`.
pub struct Sandbox {
    pub _dir: tempfile::TempDir,
    pub dest: PathBuf,
    pub outside: PathBuf,
    pub archive: PathBuf,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).expect("outside dir");
        Sandbox {
            dest: dir.path().join("dest"),
            archive: dir.path().join("archive"),
            outside,
            _dir: dir,
        }
    }

    pub fn assert_clean_outside(&self) {
        let outside: Vec<_> = fs::read_dir(&self.outside).expect("read outside").collect();
        assert!(outside.is_empty(), "something was written outside: {outside:?}");
    }

    /// Nothing was written beside the destination, and the failed extraction left no dest.
    pub fn assert_clean(&self) {
        let outside: Vec<_> = fs::read_dir(&self.outside).expect("read outside").collect();
        assert!(outside.is_empty(), "something was written outside: {outside:?}");
        let parent = self.dest.parent().expect("parent");
        for entry in fs::read_dir(parent).expect("read root") {
            let name = entry.expect("entry").file_name();
            assert!(
                ["outside", "archive"].contains(&name.to_str().unwrap_or("")),
                "litter: {name:?}"
            );
        }
    }
}

pub enum Item<'a> {
    File(&'a str, u32, &'a [u8]),
    Dir(&'a str, u32),
    Link(&'a str, &'a str),
}

pub fn zip_bytes(items: &[Item<'_>]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for item in items {
        match item {
            Item::File(name, mode, data) => {
                let opts = SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .unix_permissions(*mode);
                zip.start_file(*name, opts).expect("start");
                zip.write_all(data).expect("write");
            }
            Item::Dir(name, mode) => {
                let opts = SimpleFileOptions::default().unix_permissions(*mode);
                zip.add_directory(*name, opts).expect("dir");
            }
            Item::Link(name, target) => {
                zip.add_symlink(*name, *target, SimpleFileOptions::default()).expect("link");
            }
        }
    }
    zip.finish().expect("finish").into_inner()
}

pub fn write_zip(path: &Path, items: &[Item<'_>]) {
    fs::write(path, zip_bytes(items)).expect("write zip");
}

/// Raw tar headers (no path checks, so hostile names can be written).
pub fn write_tar_gz(path: &Path, items: &[Item<'_>]) {
    let gz = GzEncoder::new(File::create(path).expect("create"), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for item in items {
        let mut h = tar::Header::new_old();
        let (name, data): (&str, &[u8]) = match item {
            Item::File(name, mode, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                (name, data)
            }
            Item::Dir(name, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                (name, &[])
            }
            Item::Link(name, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_link_name_literal(target.as_bytes()).expect("link name");
                (name, &[])
            }
        };
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_cksum();
        tar.append(&h, data).expect("append");
    }
    tar.into_inner().expect("tar").finish().expect("gz");
}

pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::symlink_metadata(path).expect("meta").permissions().mode() & 0o7777
}
