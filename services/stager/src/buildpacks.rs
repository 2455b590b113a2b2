//! The bundled buildpacks (`buildpacks/<name>/` at the repository root), embedded at build
//! time and zipped on demand, for the api to install on first start.

use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

macro_rules! bp_file {
    ($bp:literal, $path:literal, $mode:literal) => {
        ($path, $mode, include_bytes!(concat!("../../../buildpacks/", $bp, "/", $path)).as_slice())
    };
}

macro_rules! buildpack {
    ($name:literal, $pos:literal) => {
        (
            concat!($name, "_buildpack"),
            $pos,
            [
                bp_file!($name, "VERSION", 0o644),
                bp_file!($name, "bin/detect", 0o755),
                bp_file!($name, "bin/supply", 0o755),
                bp_file!($name, "bin/finalize", 0o755),
                bp_file!($name, "bin/release", 0o755),
            ],
        )
    };
}

type Files = [(&'static str, u32, &'static [u8]); 5];

const BUNDLED: [(&str, u32, Files); 6] = [
    buildpack!("staticfile", 1),
    buildpack!("python", 2),
    buildpack!("nodejs", 3),
    buildpack!("go", 4),
    buildpack!("procfile", 5),
    buildpack!("binary", 6),
];

/// `(name, position, zip bytes)` for every bundled buildpack, in position order. The zips are
/// deterministic (fixed timestamps), so their SHA-256 changes only with their content.
pub fn bundled() -> Vec<(String, u32, Vec<u8>)> {
    BUNDLED.iter().map(|(name, pos, files)| ((*name).to_owned(), *pos, zip_files(files))).collect()
}

fn zip_files(files: &Files) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (path, mode, body) in files {
        let options = SimpleFileOptions::default()
            .last_modified_time(DateTime::default())
            .compression_method(CompressionMethod::Deflated)
            .unix_permissions(*mode);
        // Writing into memory cannot fail short of allocation failure.
        zip.start_file(*path, options).expect("zip entry in memory");
        zip.write_all(body).expect("zip write in memory");
    }
    zip.finish().expect("zip finish in memory").into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_zips_extract_with_executable_scripts() {
        let all = bundled();
        let names: Vec<(&str, u32)> = all.iter().map(|(n, p, _)| (n.as_str(), *p)).collect();
        assert_eq!(
            names,
            [
                ("staticfile_buildpack", 1),
                ("python_buildpack", 2),
                ("nodejs_buildpack", 3),
                ("go_buildpack", 4),
                ("procfile_buildpack", 5),
                ("binary_buildpack", 6)
            ]
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let zip = dir.path().join("bp.zip");
        std::fs::write(&zip, &all[0].2).expect("write");
        let out = dir.path().join("x");
        archive::extract_zip(&zip, &out, &archive::Limits::default()).expect("extract");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("bin/detect")).expect("detect").permissions().mode();
        assert_eq!(mode & 0o111, 0o111);
        assert_eq!(bundled()[0].2, all[0].2, "deterministic");
    }
}
