//! Writers: deterministic tar.gz, zips with modes and links, checksums; round trips.

use std::fs;
use std::io::Cursor;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use archive::{extract_tar_gz, extract_zip, sha1_file, sha256_file, write_tar_gz, zip_dir, Limits};

use crate::corpus::mode_of;

fn sample_tree(root: &Path) {
    fs::create_dir_all(root.join("app/lib")).expect("dirs");
    fs::create_dir_all(root.join("empty")).expect("empty");
    fs::write(root.join("app/run"), b"#!/bin/sh\n").expect("run");
    fs::set_permissions(root.join("app/run"), fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::write(root.join("app/lib/x.rb"), b"puts 1").expect("x");
    fs::write(root.join("app/lib/ñ.txt"), "ñ").expect("ñ");
    symlink("lib/x.rb", root.join("app/link")).expect("symlink");
}

#[test]
fn tar_gz_is_deterministic_and_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    sample_tree(&src);
    let one = write_tar_gz(&src, &dir.path().join("one.tgz")).expect("one");
    let two = write_tar_gz(&src, &dir.path().join("two.tgz")).expect("two");
    assert_eq!(one, two);
    assert_eq!(one.sha256, sha256_file(&dir.path().join("one.tgz")).expect("sha"));
    assert_eq!(one.size, fs::metadata(dir.path().join("one.tgz")).expect("meta").len());

    let file = fs::File::open(dir.path().join("one.tgz")).expect("open");
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut names = Vec::new();
    for entry in tar.entries().expect("entries") {
        let entry = entry.expect("entry");
        assert_eq!(entry.header().uid().expect("uid"), 2000);
        assert_eq!(entry.header().mtime().expect("mtime"), 0);
        names.push(String::from_utf8_lossy(&entry.path_bytes()).into_owned());
    }
    assert_eq!(
        names,
        [
            "./",
            "./app",
            "./app/lib",
            "./app/lib/x.rb",
            "./app/lib/ñ.txt",
            "./app/link",
            "./app/run",
            "./empty"
        ]
    );

    let out = dir.path().join("out");
    let got =
        extract_tar_gz(&dir.path().join("one.tgz"), &out, &Limits::default()).expect("extract");
    assert_eq!(got.files, 7);
    assert_eq!(mode_of(&out.join("app/run")), 0o755);
    assert_eq!(fs::read_link(out.join("app/link")).expect("link"), PathBuf::from("lib/x.rb"));
    assert!(out.join("empty").is_dir());
}

#[test]
fn tar_gz_failure_leaves_no_temp_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = write_tar_gz(&dir.path().join("missing"), &dir.path().join("out.tgz"));
    assert!(err.is_err());
    assert_eq!(fs::read_dir(dir.path()).expect("read").count(), 0, "temp litter left");
}

#[test]
fn zip_dir_keeps_modes_and_links() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    sample_tree(&src);
    let files: Vec<PathBuf> =
        ["app/run", "app/lib/x.rb", "app/link", "empty"].iter().map(PathBuf::from).collect();
    let bytes = zip_dir(&src, &files, Cursor::new(Vec::new())).expect("zip").into_inner();
    let again = zip_dir(&src, &files, Cursor::new(Vec::new())).expect("zip").into_inner();
    assert_eq!(bytes, again, "zip is deterministic");
    fs::write(dir.path().join("p.zip"), bytes).expect("write");
    let out = dir.path().join("out");
    extract_zip(&dir.path().join("p.zip"), &out, &Limits::default()).expect("extract");
    assert_eq!(mode_of(&out.join("app/run")), 0o755);
    assert_eq!(fs::read(out.join("app/lib/x.rb")).expect("x"), b"puts 1");
    assert_eq!(fs::read_link(out.join("app/link")).expect("link"), PathBuf::from("lib/x.rb"));
    assert!(out.join("empty").is_dir());
    assert!(!out.join("app/lib/ñ.txt").exists());

    let escape = zip_dir(&src, &[PathBuf::from("../x")], Cursor::new(Vec::new()));
    assert!(matches!(escape, Err(archive::ArchiveError::PathEscape { .. })));
}

#[test]
fn checksums() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("abc");
    fs::write(&f, b"abc").expect("write");
    assert_eq!(sha1_file(&f).expect("sha1"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(
        sha256_file(&f).expect("sha256"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert!(sha1_file(&dir.path().join("missing")).is_err());
}

#[test]
fn long_names_and_link_targets_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    let long = "d".repeat(120);
    fs::create_dir_all(src.join(&long)).expect("dir");
    fs::write(src.join(&long).join("f".repeat(90)), b"long").expect("file");
    symlink(format!("{long}/{}", "f".repeat(90)), src.join("l")).expect("link");
    write_tar_gz(&src, &dir.path().join("a.tgz")).expect("write");
    let out = dir.path().join("out");
    extract_tar_gz(&dir.path().join("a.tgz"), &out, &Limits::default()).expect("extract");
    assert_eq!(fs::read(out.join("l")).expect("through link"), b"long");
}
