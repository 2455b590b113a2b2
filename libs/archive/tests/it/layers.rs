//! Image layers applied one over another: replacement, whiteouts, opaque directories, and
//! the extraction rules (no escapes, nothing written through a symlink).

use std::fs;

use archive::{apply_layer, ArchiveError, LayerOptions, Limits};

use crate::corpus::{write_tar_gz, Item, Sandbox};

fn apply(sb: &Sandbox, items: &[Item<'_>]) -> Result<(), ArchiveError> {
    write_tar_gz(&sb.archive, items);
    apply_layer(&sb.archive, &sb.dest, &Limits::default(), &LayerOptions::default()).map(|_| ())
}

fn base(sb: &Sandbox) {
    apply(
        sb,
        &[
            Item::Dir("/", 0o755),
            Item::Dir("/etc", 0o755),
            Item::File("etc/motd", 0o644, b"lower"),
            Item::File("etc/gone", 0o644, b"x"),
            Item::Dir("var/cache", 0o755),
            Item::File("var/cache/old", 0o644, b"old"),
            Item::Dir("var/cache/sub", 0o755),
            Item::File("var/cache/sub/deep", 0o644, b"deep"),
            Item::Link("bin", "/usr/bin"),
            Item::File("swap", 0o644, b"file"),
        ],
    )
    .expect("base layer");
}

#[test]
fn an_upper_layer_replaces_removes_and_empties_what_lower_layers_made() {
    let sb = Sandbox::new();
    base(&sb);
    apply(
        &sb,
        &[
            Item::File("etc/motd", 0o600, b"upper"),
            Item::File("etc/.wh.gone", 0o644, b""),
            Item::File("var/cache/kept-before", 0o644, b"mine"),
            Item::File("var/cache/.wh..wh..opq", 0o644, b""),
            Item::File("var/cache/new", 0o644, b"new"),
            Item::Link("swap", "etc/motd"),
            Item::File("bin", 0o755, b"no longer a link"),
        ],
    )
    .expect("upper layer");
    let d = &sb.dest;
    assert_eq!(fs::read(d.join("etc/motd")).expect("motd"), b"upper");
    assert!(!d.join("etc/gone").exists());
    let mut cache: Vec<_> = fs::read_dir(d.join("var/cache"))
        .expect("cache")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
        .collect();
    cache.sort();
    assert_eq!(cache, ["kept-before", "new"]);
    assert_eq!(fs::read_link(d.join("swap")).expect("link"), std::path::Path::new("etc/motd"));
    assert!(fs::symlink_metadata(d.join("bin")).expect("bin").is_file());
    sb.assert_clean_outside();
}

#[test]
fn a_whiteout_of_a_directory_removes_its_tree() {
    let sb = Sandbox::new();
    base(&sb);
    apply(&sb, &[Item::File("var/.wh.cache", 0o644, b"")]).expect("whiteout");
    assert!(!sb.dest.join("var/cache").exists());
    assert!(sb.dest.join("var").is_dir());
}

#[test]
fn layers_never_write_or_remove_through_a_symlink_or_outside() {
    let sb = Sandbox::new();
    let outside = sb.outside.display().to_string();
    apply(&sb, &[Item::Link("out", &outside)]).expect("an absolute link is kept");
    fs::write(sb.outside.join("victim"), b"keep").expect("victim");
    let through = apply(&sb, &[Item::File("out/planted", 0o644, b"x")]);
    assert!(matches!(through, Err(ArchiveError::Symlink { .. })), "{through:?}");
    let wh = apply(&sb, &[Item::File("out/.wh.victim", 0o644, b"")]);
    assert!(matches!(wh, Err(ArchiveError::Symlink { .. })), "{wh:?}");
    let opq = apply(&sb, &[Item::File("out/.wh..wh..opq", 0o644, b"")]);
    assert!(matches!(opq, Err(ArchiveError::Symlink { .. })), "{opq:?}");
    for name in ["../escape", "/../escape", ".wh..", "a/.wh.."] {
        let r = apply(&sb, &[Item::File(name, 0o644, b"")]);
        assert!(matches!(r, Err(ArchiveError::PathEscape { .. })), "{name}: {r:?}");
    }
    assert_eq!(fs::read(sb.outside.join("victim")).expect("victim"), b"keep");
    assert!(!sb.outside.join("planted").exists());
}

#[test]
fn an_uncompressed_layer_applies_too() {
    let sb = Sandbox::new();
    let gz = sb.archive.with_extension("gz");
    write_tar_gz(&gz, &[Item::File("hello", 0o644, b"hi")]);
    let mut tar = Vec::new();
    let mut dec = flate2::read::GzDecoder::new(fs::File::open(&gz).expect("gz"));
    std::io::Read::read_to_end(&mut dec, &mut tar).expect("gunzip");
    fs::write(&sb.archive, tar).expect("tar");
    apply_layer(&sb.archive, &sb.dest, &Limits::default(), &LayerOptions::default())
        .expect("plain tar");
    assert_eq!(fs::read(sb.dest.join("hello")).expect("hello"), b"hi");
}

#[test]
fn a_layer_without_its_end_blocks_applies_but_a_cut_entry_does_not() {
    let sb = Sandbox::new();
    let gz = sb.archive.with_extension("gz");
    write_tar_gz(&gz, &[Item::File("a", 0o644, b"first"), Item::File("b", 0o644, &[7u8; 700])]);
    let mut tar = Vec::new();
    let mut dec = flate2::read::GzDecoder::new(fs::File::open(&gz).expect("gz"));
    std::io::Read::read_to_end(&mut dec, &mut tar).expect("gunzip");
    // Header of a, its block, header of b, then b's 700 bytes without padding or end blocks.
    fs::write(&sb.archive, &tar[..512 * 3 + 700]).expect("unended");
    apply_layer(&sb.archive, &sb.dest, &Limits::default(), &LayerOptions::default())
        .expect("unended tar");
    assert_eq!(fs::read(sb.dest.join("b")).expect("b").len(), 700);
    fs::write(&sb.archive, &tar[..512 * 3 + 100]).expect("cut");
    let cut = apply_layer(&sb.archive, &sb.dest, &Limits::default(), &LayerOptions::default());
    assert!(cut.is_err(), "an entry cut short: {cut:?}");
}
