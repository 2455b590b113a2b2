//! The app folder as the platform sees it: files walked honouring `.cfignore` (gitignore
//! syntax) and CF's default ignores, each with SHA-1, size and mode for resource matching, and
//! a zip of the files the platform does not have yet.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use wire::v3::resource::{Resource, ResourceChecksum};

use crate::error::CliError;

/// Always left out, as the cf CLI does.
const DEFAULT_IGNORES: [&str; 8] =
    [".cfignore", "/manifest.yml", ".gitignore", ".git", ".hg", ".svn", "_darcs", ".DS_Store"];

/// Ignore rules from gitignore-style lines; later `!pattern` lines re-include.
pub struct Ignore {
    rules: Vec<(bool, GlobSet)>,
}

impl Ignore {
    pub fn new(lines: &[String]) -> Result<Self, CliError> {
        let mut rules = Vec::new();
        for raw in DEFAULT_IGNORES.iter().map(|s| (*s).to_owned()).chain(lines.iter().cloned()) {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negate, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, line),
            };
            let anchored = pat.starts_with('/');
            let pat = pat.trim_start_matches('/').trim_end_matches('/');
            if pat.is_empty() {
                continue;
            }
            let base =
                if anchored || pat.contains('/') { pat.to_owned() } else { format!("**/{pat}") };
            let mut b = GlobSetBuilder::new();
            for g in [base.clone(), format!("{base}/**")] {
                let glob = Glob::new(&g).map_err(|e| {
                    CliError::Usage(format!(".cfignore: invalid pattern '{raw}': {e}"))
                })?;
                b.add(glob);
            }
            let set = b.build().map_err(|e| CliError::Usage(format!(".cfignore: {e}")))?;
            rules.push((negate, set));
        }
        Ok(Self { rules })
    }

    pub fn from_dir(dir: &Path) -> Result<Self, CliError> {
        let lines = std::fs::read_to_string(dir.join(".cfignore")).unwrap_or_default();
        Self::new(&lines.lines().map(str::to_owned).collect::<Vec<_>>())
    }

    pub fn ignored(&self, rel: &Path) -> bool {
        let mut ignored = false;
        for (negate, set) in &self.rules {
            if set.is_match(rel) {
                ignored = !negate;
            }
        }
        ignored
    }
}

/// One file of the app.
#[derive(Debug, Clone)]
pub struct AppFile {
    pub rel: PathBuf,
    pub sha1: String,
    pub size: u64,
    pub mode: u32,
    pub symlink: bool,
}

impl AppFile {
    /// The file as resource matching names it.
    pub fn resource(&self) -> Resource {
        Resource {
            path: self.rel.to_string_lossy().into_owned(),
            mode: format!("{:o}", self.mode & 0o777),
            checksum: ResourceChecksum { value: self.sha1.clone() },
            size_in_bytes: self.size,
        }
    }
}

/// Every file of `dir` that is not ignored.
pub fn walk(dir: &Path) -> Result<Vec<AppFile>, CliError> {
    if !dir.is_dir() {
        return Err(CliError::Usage(format!(
            "{} is not a directory; use -p to give the app's folder",
            dir.display()
        )));
    }
    let ignore = Ignore::from_dir(dir)?;
    let mut out = Vec::new();
    let mut it = walkdir::WalkDir::new(dir).follow_links(false).sort_by_file_name().into_iter();
    while let Some(entry) = it.next() {
        let entry =
            entry.map_err(|e| CliError::Other(format!("cannot read the app folder: {e}")))?;
        let Ok(rel) = entry.path().strip_prefix(dir) else { continue };
        if rel.as_os_str().is_empty() {
            continue;
        }
        if ignore.ignored(rel) {
            if entry.file_type().is_dir() {
                it.skip_current_dir();
            }
            continue;
        }
        let ft = entry.file_type();
        if ft.is_dir() {
            continue;
        }
        let meta = entry
            .path()
            .symlink_metadata()
            .map_err(|e| CliError::Other(format!("{}: {e}", entry.path().display())))?;
        if ft.is_symlink() {
            out.push(AppFile {
                rel: rel.to_owned(),
                sha1: String::new(),
                size: 0,
                mode: 0o777,
                symlink: true,
            });
            continue;
        }
        if !ft.is_file() {
            continue;
        }
        let sha1 = archive::sha1_file(entry.path()).map_err(|e| CliError::Other(e.to_string()))?;
        out.push(AppFile {
            rel: rel.to_owned(),
            sha1,
            size: meta.len(),
            mode: meta.permissions().mode(),
            symlink: false,
        });
    }
    Ok(out)
}

/// Zip `files` of `dir` into `dest`.
pub fn zip(dir: &Path, files: &[&AppFile], dest: &Path) -> Result<u64, CliError> {
    let f = std::fs::File::create(dest)
        .map_err(|e| CliError::Other(format!("{}: {e}", dest.display())))?;
    let rels: Vec<PathBuf> = files.iter().map(|f| f.rel.clone()).collect();
    archive::zip_dir(dir, &rels, f)
        .map_err(|e| CliError::Other(format!("cannot zip the app: {e}")))?;
    Ok(std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cfignore_follows_gitignore_rules() {
        let ig = Ignore::new(&[
            "*.log".into(),
            "/build".into(),
            "tmp/".into(),
            "!keep.log".into(),
            "# comment".into(),
        ])
        .expect("rules");
        for p in [
            "a.log",
            "x/y/a.log",
            "build",
            "build/out.o",
            "tmp/x",
            "deep/tmp/x",
            ".git/config",
            "manifest.yml",
        ] {
            assert!(ig.ignored(Path::new(p)), "{p} ignored");
        }
        for p in ["keep.log", "src/build", "app.py", "sub/manifest.yml"] {
            assert!(!ig.ignored(Path::new(p)), "{p} kept");
        }
    }

    #[test]
    fn walk_hashes_files_and_zips_only_what_is_asked() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::write(d.path().join("app.py"), "print(1)\n").expect("w");
        std::fs::create_dir_all(d.path().join("lib")).expect("d");
        std::fs::write(d.path().join("lib/x.py"), "X=1\n").expect("w");
        std::fs::write(d.path().join("debug.log"), "noise").expect("w");
        std::fs::write(d.path().join(".cfignore"), "*.log\n").expect("w");
        std::fs::set_permissions(d.path().join("app.py"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let files = walk(d.path()).expect("walk");
        let names: Vec<String> = files.iter().map(|f| f.rel.display().to_string()).collect();
        assert_eq!(names, ["app.py", "lib/x.py"]);
        use sha1::Digest as _;
        assert_eq!(files[0].sha1, hex::encode(sha1::Sha1::digest(b"print(1)\n")));
        assert_eq!(files[0].resource().mode, "755");
        let out = d.path().join("out.zip");
        zip(d.path(), &[&files[1]], &out).expect("zip");
        let extracted = tempfile::tempdir().expect("tmp");
        archive::extract_zip(&out, extracted.path(), &archive::Limits::default()).expect("extract");
        assert!(extracted.path().join("lib/x.py").exists());
        assert!(!extracted.path().join("app.py").exists());
    }
}
