//! `extract_tar_gz` against hostile and normal archives.

use std::fs::{self, File};

use archive::{extract_tar_gz, ArchiveError, Limits};
use flate2::write::GzEncoder;

use crate::corpus::{mode_of, write_tar_gz, Item, Sandbox};

fn refused(items: &[Item<'_>], limits: &Limits) -> ArchiveError {
    let sb = Sandbox::new();
    write_tar_gz(&sb.archive, items);
    let err = extract_tar_gz(&sb.archive, &sb.dest, limits).expect_err("must be refused");
    sb.assert_clean();
    err
}

#[test]
fn happy_path() {
    let sb = Sandbox::new();
    write_tar_gz(
        &sb.archive,
        &[
            Item::Dir("./", 0o755),
            Item::Dir("./app/", 0o755),
            Item::File("./app/start", 0o6755, b"#!/bin/sh\n"),
            Item::Dir("./app/empty/", 0o700),
            Item::Link("./app/cur", "start"),
        ],
    );
    let got = extract_tar_gz(&sb.archive, &sb.dest, &Limits::default()).expect("extract");
    assert_eq!(got.files, 4);
    assert_eq!(mode_of(&sb.dest.join("app/start")), 0o755);
    assert_eq!(mode_of(&sb.dest.join("app/empty")), 0o700);
    assert_eq!(fs::read_link(sb.dest.join("app/cur")).expect("link").to_str(), Some("start"));
    sb.assert_clean_outside();
}

#[test]
fn hostile_paths_and_links() {
    let cases: [&[Item<'_>]; 6] = [
        &[Item::Link("f", "g"), Item::File("f", 0o644, b"overwrite through the link")],
        &[Item::File("../outside/evil", 0o644, b"x")],
        &[Item::File("/tmp/evil-archive-test", 0o644, b"x")],
        &[Item::Link("l", "/etc")],
        &[Item::Link("l", "../outside")],
        &[Item::Link("l", "."), Item::File("l/x", 0o644, b"x")],
    ];
    for items in cases {
        let err = refused(items, &Limits::default());
        assert!(
            matches!(err, ArchiveError::PathEscape { .. } | ArchiveError::Symlink { .. }),
            "{err}"
        );
    }
    assert!(!std::path::Path::new("/tmp/evil-archive-test").exists());
}

#[test]
fn device_files_are_refused() {
    let sb = Sandbox::new();
    let gz =
        GzEncoder::new(File::create(&sb.archive).expect("create"), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Char);
    h.set_device_major(1).expect("major");
    h.set_device_minor(3).expect("minor");
    h.set_mode(0o666);
    h.set_size(0);
    tar.append_data(&mut h, "null", std::io::empty()).expect("append");
    tar.into_inner().expect("tar").finish().expect("gz");
    let err = extract_tar_gz(&sb.archive, &sb.dest, &Limits::default()).expect_err("refused");
    assert!(matches!(err, ArchiveError::SpecialFile { .. }), "{err}");
    sb.assert_clean();
}

#[test]
fn hard_links_stay_inside() {
    let sb = Sandbox::new();
    let gz =
        GzEncoder::new(File::create(&sb.archive).expect("create"), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(2);
    tar.append_data(&mut h, "a", &b"hi"[..]).expect("file");
    let mut l = tar::Header::new_gnu();
    l.set_entry_type(tar::EntryType::Link);
    l.set_size(0);
    tar.append_link(&mut l, "b", "a").expect("link");
    tar.into_inner().expect("tar").finish().expect("gz");
    extract_tar_gz(&sb.archive, &sb.dest, &Limits::default()).expect("extract");
    assert_eq!(fs::read(sb.dest.join("b")).expect("b"), b"hi");

    let bad = Sandbox::new();
    write_tar_gz(&bad.archive, &[Item::File("a", 0o644, b"hi")]);
    let bytes = fs::read(&bad.archive).expect("read");
    fs::write(&bad.archive, &bytes[..bytes.len() / 2]).expect("truncate");
    let err = extract_tar_gz(&bad.archive, &bad.dest, &Limits::default()).expect_err("truncated");
    assert!(err.is_client_error(), "{err}");
    bad.assert_clean();
}

#[test]
fn limits_are_counted_while_streaming() {
    let zeros = vec![0u8; 4 << 20];
    let err = refused(
        &[Item::File("bomb", 0o644, &zeros)],
        &Limits { max_ratio: 5, ..Limits::default() },
    );
    assert!(matches!(err, ArchiveError::RatioExceeded), "{err}");
    let items: Vec<_> = ["a", "b", "c"].iter().map(|n| Item::File(n, 0o644, b"x")).collect();
    let err = refused(&items, &Limits { max_files: 2, ..Limits::default() });
    assert!(matches!(err, ArchiveError::TooManyFiles), "{err}");
}

#[test]
fn absolute_symlinks_only_with_the_option() {
    use archive::{extract_tar_gz_with_options, ExtractOptions};
    let items =
        [Item::Link("python", "/home/vcap/deps/0/bin/python"), Item::File("x", 0o644, b"x")];
    let err = refused(&items, &Limits::default());
    assert!(matches!(err, ArchiveError::Symlink { .. }), "{err}");

    let sb = Sandbox::new();
    write_tar_gz(&sb.archive, &items);
    let options = ExtractOptions { allow_absolute_symlinks: true };
    extract_tar_gz_with_options(&sb.archive, &sb.dest, &Limits::default(), &options)
        .expect("extract");
    assert_eq!(
        fs::read_link(sb.dest.join("python")).expect("link").to_str(),
        Some("/home/vcap/deps/0/bin/python")
    );
    // Still never written through, and relative escapes stay refused.
    let sb2 = Sandbox::new();
    let outside = sb2.outside.display().to_string();
    write_tar_gz(&sb2.archive, &[Item::Link("l", &outside), Item::File("l/evil", 0o644, b"x")]);
    let err = extract_tar_gz_with_options(&sb2.archive, &sb2.dest, &Limits::default(), &options)
        .expect_err("through");
    assert!(matches!(err, ArchiveError::Symlink { .. }), "{err}");
    sb2.assert_clean();
    let sb3 = Sandbox::new();
    write_tar_gz(&sb3.archive, &[Item::Link("l", "../outside")]);
    let err = extract_tar_gz_with_options(&sb3.archive, &sb3.dest, &Limits::default(), &options)
        .expect_err("escape");
    assert!(matches!(err, ArchiveError::Symlink { .. }), "{err}");
    sb3.assert_clean();
}
