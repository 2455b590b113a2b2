//! The stack: the root filesystem that staging and app containers run on, built from Debian
//! packages with debootstrap (the only source of runtimes these machines can reach). Built
//! once per spec, cached under `<dir>/<name>/rootfs`, never modified after it is complete, and
//! shared read-only by the stager and the cells (as an overlayfs lower layer).
//!
//! This crate must never change a complete stack in place: a new spec builds a new directory
//! and swaps it in with a rename.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tokio::process::Command;

/// Name of the default stack, as `/v3/stacks` lists it.
pub const DEFAULT_STACK: &str = "bookworm";
/// The newer stack beside it: Debian 13, with Go.
pub const TRIXIE_STACK: &str = "trixie";
/// Every stack this platform knows how to build, the default first.
pub const STACKS: [&str; 2] = [DEFAULT_STACK, TRIXIE_STACK];

/// Unprivileged user apps and buildpacks run as (uid and gid).
pub const VCAP_UID: u32 = 2000;
pub const VCAP_GID: u32 = 2000;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StackSpec {
    pub name: String,
    pub description: String,
    /// Debian suite (`bookworm`).
    pub suite: String,
    pub mirror: String,
    /// Packages on top of `minbase`.
    pub packages: Vec<String>,
}

impl Default for StackSpec {
    fn default() -> Self {
        let packages = [
            "ca-certificates",
            "python3",
            "python3-venv",
            "python3-pip",
            "nodejs",
            "npm",
            "nginx-light",
            "procps",
            "netbase",
            "tzdata",
            "curl",
            "unzip",
            "xz-utils",
            "libssl3",
        ];
        Self {
            name: DEFAULT_STACK.into(),
            description: "Debian 12 (bookworm) with Python 3, Node.js, npm and nginx".into(),
            suite: "bookworm".into(),
            mirror: "http://deb.debian.org/debian".into(),
            packages: packages.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl StackSpec {
    /// The spec of a stack named in [`STACKS`].
    pub fn named(name: &str) -> Option<Self> {
        match name {
            DEFAULT_STACK => Some(Self::default()),
            TRIXIE_STACK => Some(Self::trixie()),
            _ => None,
        }
    }

    /// Debian 13: newer Python and Node.js than bookworm, and Go (for the go buildpack).
    pub fn trixie() -> Self {
        let bookworm = Self::default();
        let mut packages: Vec<String> = bookworm
            .packages
            .into_iter()
            // Debian 13's OpenSSL library package carries the 64-bit time_t suffix.
            .map(|p| if p == "libssl3" { "libssl3t64".to_owned() } else { p })
            .collect();
        packages.push("golang-go".into());
        Self {
            name: TRIXIE_STACK.into(),
            description: "Debian 13 (trixie) with Python 3, Node.js, npm, nginx and Go".into(),
            suite: "trixie".into(),
            packages,
            ..bookworm
        }
    }

    /// Identity of what this spec builds; a complete stack records it.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.suite.as_bytes());
        h.update([0]);
        for p in &self.packages {
            h.update(p.as_bytes());
            h.update([0]);
        }
        hex::encode(&h.finalize()[..12])
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("building stack {name}: {message}")]
    Build { name: String, message: String },
    #[error("stack {name} is not built yet (run `paasd stack build`)")]
    Missing { name: String },
    #[error("stack directory {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

const MARKER: &str = ".complete";

/// Where the rootfs of `name` lives under `dir`.
pub fn rootfs_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name).join("rootfs")
}

/// The rootfs of a complete stack, or [`StackError::Missing`].
pub fn find(dir: &Path, name: &str) -> Result<PathBuf, StackError> {
    let root = dir.join(name);
    if root.join(MARKER).is_file() {
        Ok(root.join("rootfs"))
    } else {
        Err(StackError::Missing { name: name.to_owned() })
    }
}

/// Build the stack unless a complete one for the same spec exists; returns its rootfs.
/// Idempotent and safe to call concurrently from several processes (the build happens in a
/// private directory and is renamed into place).
pub async fn ensure(dir: &Path, spec: &StackSpec) -> Result<PathBuf, StackError> {
    let root = dir.join(&spec.name);
    let marker = root.join(MARKER);
    if std::fs::read_to_string(&marker).is_ok_and(|f| f.trim() == spec.fingerprint()) {
        return Ok(root.join("rootfs"));
    }
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| StackError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let work = dir.join(format!(".{}-build-{}", spec.name, std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(io(&work))?;
    let rootfs = work.join("rootfs");
    tracing::info!(stack = %spec.name, "building stack with debootstrap (takes a few minutes, once)");
    let result = build(&rootfs, spec).await;
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&work);
        return Err(e);
    }
    std::fs::write(work.join(MARKER), spec.fingerprint()).map_err(io(&work))?;
    // Swap in: an older stack moves aside and is removed.
    let old = dir.join(format!(".{}-old-{}", spec.name, std::process::id()));
    if root.exists() {
        std::fs::rename(&root, &old).map_err(io(&root))?;
    }
    std::fs::rename(&work, &root).map_err(io(&root))?;
    let _ = std::fs::remove_dir_all(&old);
    tracing::info!(stack = %spec.name, path = %root.display(), "stack ready");
    Ok(root.join("rootfs"))
}

async fn build(rootfs: &Path, spec: &StackSpec) -> Result<(), StackError> {
    let fail = |message: String| StackError::Build { name: spec.name.clone(), message };
    // A minimal base first; the packages go in with apt inside the new root, which resolves
    // and configures dependencies properly (debootstrap's --include does not, e.g. for npm).
    let mut debootstrap = Command::new("debootstrap");
    debootstrap
        .args(["--variant=minbase", "--include=ca-certificates"])
        .arg(&spec.suite)
        .arg(rootfs)
        .arg(&spec.mirror);
    run(&mut debootstrap, "debootstrap (apt-get install debootstrap; needs root)")
        .await
        .map_err(fail)?;
    let policy = rootfs.join("usr/sbin/policy-rc.d");
    std::fs::write(&policy, "#!/bin/sh\nexit 101\n").map_err(|e| fail(e.to_string()))?;
    set_mode(&policy, 0o755).map_err(|e| fail(e.to_string()))?;
    if let Ok(resolv) = std::fs::read("/etc/resolv.conf") {
        let _ = std::fs::remove_file(rootfs.join("etc/resolv.conf"));
        std::fs::write(rootfs.join("etc/resolv.conf"), resolv).map_err(|e| fail(e.to_string()))?;
    }
    let apt = |args: &[&str]| {
        let mut c = Command::new("chroot");
        c.arg(rootfs)
            .arg("apt-get")
            .args(["-q", "-y", "-o", "Dpkg::Use-Pty=0"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        c
    };
    run(&mut apt(&["update"]), "apt-get update in the stack").await.map_err(fail)?;
    let mut install: Vec<&str> = vec!["install", "--no-install-recommends"];
    install.extend(spec.packages.iter().map(String::as_str));
    run(&mut apt(&install), "apt-get install in the stack").await.map_err(fail)?;
    run(&mut apt(&["clean"]), "apt-get clean in the stack").await.map_err(fail)?;
    let _ = std::fs::remove_file(&policy);
    finish(rootfs).map_err(|e| fail(e.to_string()))
}

async fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().await.map_err(|e| format!("cannot run {what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let tail: Vec<&str> = text.lines().rev().take(12).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!("{what} failed ({}): {}", out.status, tail.join(" | ")))
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Add the `vcap` user and the directories CF apps expect; drop package caches.
fn finish(rootfs: &Path) -> std::io::Result<()> {
    use std::io::Write as _;
    let append = |file: &str, line: String| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().append(true).open(rootfs.join(file))?;
        f.write_all(line.as_bytes())
    };
    append("etc/passwd", format!("vcap:x:{VCAP_UID}:{VCAP_GID}:vcap:/home/vcap:/bin/bash\n"))?;
    append("etc/group", format!("vcap:x:{VCAP_GID}:\n"))?;
    append("etc/shadow", "vcap:*:19000:0:99999:7:::\n".into())?;
    for d in ["home/vcap", "home/vcap/app", "home/vcap/deps", "home/vcap/tmp", "home/vcap/logs"] {
        std::fs::create_dir_all(rootfs.join(d))?;
    }
    let _ = std::fs::remove_dir_all(rootfs.join("var/cache/apt/archives"));
    std::fs::create_dir_all(rootfs.join("var/cache/apt/archives/partial"))?;
    let _ = std::fs::remove_dir_all(rootfs.join("var/lib/apt/lists"));
    std::fs::write(rootfs.join("etc/resolv.conf"), "")?;
    std::fs::create_dir_all(rootfs.join("var/lib/apt/lists/partial"))?;
    // Ownership of the vcap home is set by whoever mounts it (the container's writable layer).
    Ok(())
}

/// Where tests and benchmarks on this machine share one built stack.
pub fn test_cache_dir() -> PathBuf {
    std::env::var_os("PAAS_TEST_STACK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/paas-test/stacks"))
}

/// The launcher script, mounted read-only into every app container at [`LAUNCHER_PATH`].
pub const LAUNCHER: &str = include_str!("launcher.sh");
/// Where containers see the launcher (Diego mounts its lifecycle under `/tmp/lifecycle`).
pub const LAUNCHER_PATH: &str = "/tmp/lifecycle/launcher";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_stack_has_a_spec_of_its_own() {
        for name in STACKS {
            let spec = StackSpec::named(name).expect("a spec");
            assert_eq!(spec.name, name);
            assert_eq!(spec.suite, name, "the stack is named after its Debian suite");
        }
        assert!(StackSpec::named("cflinuxfs4").is_none());
        let (b, t) = (StackSpec::default(), StackSpec::trixie());
        assert_ne!(b.fingerprint(), t.fingerprint());
        assert!(t.packages.iter().any(|p| p == "golang-go"));
        assert!(!b.packages.iter().any(|p| p == "golang-go"), "bookworm stays as built");
    }
}
