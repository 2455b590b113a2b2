//! `extract_zip` against hostile and normal archives.

use std::fs;

use archive::{extract_zip, ArchiveError, Limits};

use crate::corpus::{mode_of, write_zip, zip_bytes, Item, Sandbox};

fn refused(items: &[Item<'_>], limits: &Limits) -> ArchiveError {
    let sb = Sandbox::new();
    write_zip(&sb.archive, items);
    let err = extract_zip(&sb.archive, &sb.dest, limits).expect_err("must be refused");
    sb.assert_clean();
    err
}

#[test]
fn happy_path_keeps_modes_dirs_links_and_unicode() {
    let sb = Sandbox::new();
    write_zip(
        &sb.archive,
        &[
            Item::File("bin/run", 0o755, b"#!/bin/sh\necho hi\n"),
            Item::File("a/b/c/deep.txt", 0o640, b"deep"),
            Item::Dir("empty/", 0o750),
            Item::File("ünïcødé/日本.txt", 0o644, "héllo".as_bytes()),
            Item::Link("a/link", "b/c/deep.txt"),
            Item::Link("a/b/up", "../../bin/run"),
        ],
    );
    let got = extract_zip(&sb.archive, &sb.dest, &Limits::default()).expect("extract");
    assert_eq!(got.files, 6);
    assert_eq!(got.bytes, 18 + 4 + "héllo".len() as u64);
    assert_eq!(mode_of(&sb.dest.join("bin/run")), 0o755);
    assert_eq!(mode_of(&sb.dest.join("a/b/c/deep.txt")), 0o640);
    assert_eq!(mode_of(&sb.dest.join("empty")), 0o750);
    assert!(sb.dest.join("empty").read_dir().expect("empty dir").next().is_none());
    assert_eq!(fs::read_to_string(sb.dest.join("ünïcødé/日本.txt")).expect("read"), "héllo");
    assert_eq!(fs::read_link(sb.dest.join("a/link")).expect("link").to_str(), Some("b/c/deep.txt"));
    assert_eq!(
        fs::read_to_string(sb.dest.join("a/b/up")).expect("through link"),
        "#!/bin/sh\necho hi\n"
    );
    sb.assert_clean_outside();
}

#[test]
fn setuid_and_setgid_are_stripped() {
    let sb = Sandbox::new();
    write_zip(&sb.archive, &[Item::File("suid", 0o4755, b"x"), Item::File("sgid", 0o2711, b"y")]);
    extract_zip(&sb.archive, &sb.dest, &Limits::default()).expect("extract");
    assert_eq!(mode_of(&sb.dest.join("suid")), 0o755);
    assert_eq!(mode_of(&sb.dest.join("sgid")), 0o711);
}

#[test]
fn parent_components_are_refused() {
    let err = refused(
        &[Item::File("ok", 0o644, b"x"), Item::File("../outside/evil", 0o644, b"x")],
        &Limits::default(),
    );
    assert!(matches!(err, ArchiveError::PathEscape { .. }), "{err}");
    let err = refused(&[Item::File("a/../../outside/evil", 0o644, b"x")], &Limits::default());
    assert!(matches!(err, ArchiveError::PathEscape { .. }), "{err}");
}

#[test]
fn absolute_paths_are_refused() {
    let sb = Sandbox::new();
    let abs = format!("{}/evil", sb.outside.display());
    write_zip(&sb.archive, &[Item::File(&abs, 0o644, b"x")]);
    let err = extract_zip(&sb.archive, &sb.dest, &Limits::default()).expect_err("refused");
    assert!(matches!(err, ArchiveError::PathEscape { .. }), "{err}");
    sb.assert_clean();
}

#[test]
fn symlinks_pointing_outside_are_refused() {
    for target in ["/etc/passwd", "../outside", "a/../../outside", "x/../y"] {
        let err = refused(&[Item::Link("l", target)], &Limits::default());
        assert!(matches!(err, ArchiveError::Symlink { .. }), "{target}: {err}");
    }
    let err =
        refused(&[Item::Dir("d/", 0o755), Item::Link("d/l", "../../outside")], &Limits::default());
    assert!(matches!(err, ArchiveError::Symlink { .. }), "{err}");
}

#[test]
fn writing_through_a_symlink_is_refused() {
    // Even a link that stays inside may not be written through.
    let err = refused(
        &[Item::Dir("real/", 0o755), Item::Link("l", "real"), Item::File("l/x", 0o644, b"x")],
        &Limits::default(),
    );
    assert!(matches!(err, ArchiveError::Symlink { .. }), "{err}");
}

#[test]
fn high_ratio_bomb_is_refused() {
    let zeros = vec![0u8; 10 << 20];
    let limits = Limits { max_ratio: 10, ..Limits::default() };
    let err = refused(&[Item::File("bomb", 0o644, &zeros)], &limits);
    assert!(matches!(err, ArchiveError::RatioExceeded), "{err}");
}

#[test]
fn bomb_lying_about_its_size_is_refused() {
    let zeros = vec![0u8; 8 << 20];
    let mut bytes = zip_bytes(&[Item::File("liar", 0o644, &zeros)]);
    // Patch the declared uncompressed size (local header +22, central directory +24) to 10.
    let mut patched = 0;
    for i in 0..bytes.len().saturating_sub(4) {
        let offset = match &bytes[i..i + 4] {
            [0x50, 0x4b, 0x03, 0x04] => 22,
            [0x50, 0x4b, 0x01, 0x02] => 24,
            _ => continue,
        };
        bytes[i + offset..i + offset + 4].copy_from_slice(&10u32.to_le_bytes());
        patched += 1;
    }
    assert_eq!(patched, 2);
    let sb = Sandbox::new();
    fs::write(&sb.archive, bytes).expect("write");
    let limits = Limits { max_file_bytes: 1 << 20, ..Limits::default() };
    let err = extract_zip(&sb.archive, &sb.dest, &limits).expect_err("refused");
    assert!(
        // Counted on the real stream: the 10-byte claim is ignored.
        matches!(err, ArchiveError::TooLarge),
        "{err}"
    );
    sb.assert_clean();
}

#[test]
fn file_count_and_size_limits() {
    let items: Vec<_> =
        ["a", "b", "c", "d", "e"].iter().map(|n| Item::File(n, 0o644, b"x")).collect();
    let err = refused(&items, &Limits { max_files: 3, ..Limits::default() });
    assert!(matches!(err, ArchiveError::TooManyFiles), "{err}");
    let big = vec![7u8; 300];
    let err = refused(
        &[Item::File("a", 0o644, &big)],
        &Limits { max_file_bytes: 200, ..Limits::default() },
    );
    assert!(matches!(err, ArchiveError::TooLarge), "{err}");
    let err = refused(
        &[Item::File("a", 0o644, &big), Item::File("b", 0o644, &big)],
        &Limits { max_total_bytes: 500, ..Limits::default() },
    );
    assert!(matches!(err, ArchiveError::TooLarge), "{err}");
}

#[test]
fn corrupt_input_is_a_client_error() {
    let sb = Sandbox::new();
    fs::write(&sb.archive, b"this is not a zip file at all").expect("write");
    let err = extract_zip(&sb.archive, &sb.dest, &Limits::default()).expect_err("refused");
    assert!(matches!(err, ArchiveError::Corrupt(_)) && err.is_client_error(), "{err}");
}

#[test]
fn failure_keeps_what_was_already_in_an_existing_dest() {
    let sb = Sandbox::new();
    fs::create_dir(&sb.dest).expect("dest");
    fs::write(sb.dest.join("keep"), b"mine").expect("keep");
    write_zip(
        &sb.archive,
        &[Item::File("new/one", 0o644, b"x"), Item::File("../evil", 0o644, b"x")],
    );
    extract_zip(&sb.archive, &sb.dest, &Limits::default()).expect_err("refused");
    let left: Vec<_> =
        fs::read_dir(&sb.dest).expect("read").map(|e| e.expect("e").file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("keep")]);
    sb.assert_clean_outside();
}
