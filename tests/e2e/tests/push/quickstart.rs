//! The README's quick start on a clean Debian 12 root, as a new user would meet it: `paasd dev`
//! as root on a machine without runc or nftables installs them with apt-get (saying so), then
//! the README's session — log in with the generated admin password, create an org and a space,
//! push the static fixture, fetch it through the router.
//!
//! The clean root is the cached bookworm stack's minimal Debian (debootstrap minbase) under an
//! overlay, entered with chroot; it shares the host's kernel, network and cgroups. What differs
//! from the README's text: the binaries come from this build instead of `cargo build` inside
//! the root, ports and the cell's bridge are the test's own, and the stack directory is the
//! cached one, so the first start installs packages but downloads no root filesystem.

use super::*;

/// An overlay of the stack's root filesystem with `/proc`, `/sys`, `/dev` and a fresh `/run`;
/// the data directory is a directory of the host's file system, as on a machine's disk (the
/// cell's overlays cannot stack on the root's overlay).
struct CleanRoot {
    merged: PathBuf,
    _dir: tempfile::TempDir,
}

fn sh(script: &str) {
    let out = Command::new("sh").args(["-ec", script]).output().expect("sh");
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
}

impl CleanRoot {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("root dir");
        let d = dir.path().display().to_string();
        let lower = stack::test_cache_dir().join("bookworm/rootfs");
        assert!(lower.join("usr/bin/apt-get").exists(), "no cached stack at {}", lower.display());
        sh(&format!(
            "mkdir -p {d}/upper {d}/work {d}/merged
             mount -t overlay overlay -o lowerdir={},upperdir={d}/upper,workdir={d}/work {d}/merged
             m={d}/merged
             mount -t proc proc $m/proc
             mount --rbind /sys $m/sys && mount --make-rslave $m/sys
             mount --rbind /dev $m/dev && mount --make-rslave $m/dev
             mount -t tmpfs tmpfs $m/run
             cp /etc/resolv.conf $m/etc/resolv.conf
             mkdir -p {d}/data/stacks $m/root/.local/share/paas
             mount --bind {d}/data $m/root/.local/share/paas
             mount --bind {} $m/root/.local/share/paas/stacks",
            lower.display(),
            stack::test_cache_dir().display(),
        ));
        Self { merged: dir.path().join("merged"), _dir: dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.merged.join(p.trim_start_matches('/'))
    }
}

impl Drop for CleanRoot {
    fn drop(&mut self) {
        let m = self.merged.display();
        let _ = Command::new("sh").args(["-c", &format!("umount -Rl {m}")]).output();
    }
}

#[tokio::test]
async fn the_readme_quick_start_works_on_a_clean_debian_root() {
    let root = CleanRoot::new();
    for tool in ["usr/bin/runc", "usr/sbin/runc", "usr/sbin/nft"] {
        assert!(!root.path(tool).exists(), "the clean root has {tool} already");
    }
    std::fs::copy(bin("paasd"), root.path("usr/local/bin/paasd")).expect("paasd");

    let p = ports();
    let (env, _cleanup) = base_env(&root.path("root"), &p, 8);
    // The README's defaults, but for the addresses and the bridge: `auto` backend, the stack
    // under the data directory, a generated admin password.
    let keep = |k: &str| {
        !["PAAS_CELL_BACKEND", "PAAS_CELL_STACKS_DIR", "PAAS_STAGER_STACKS_DIR"].contains(&k)
            && k != "PAAS_ADMIN_PASSWORD"
    };
    let log = root.path("root/paasd.out");
    let mut cmd = Command::new("chroot");
    cmd.arg(&root.merged)
        .args(["/usr/local/bin/paasd", "dev"])
        .env_clear()
        .env("HOME", "/root")
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(env.iter().filter(|(k, _)| keep(k)).map(|(k, v)| (k, v)))
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(Stdio::inherit());
    let paasd = Proc(cmd.spawn().expect("chroot paasd dev"));
    for u in readyz(&p) {
        testkit::wait_http_ok(&format!("{u}/readyz"), Duration::from_secs(300))
            .await
            .unwrap_or_else(|e| {
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("{u}: {e}\npaasd said:\n{said}")
            });
    }
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(said.contains("Installing runc, nftables with apt-get"), "{said}");
    assert!(!said.contains("plain processes"), "containers, not processes:\n{said}");
    assert!(root.path("usr/sbin/runc").exists() || root.path("usr/bin/runc").exists());

    // The README's session.
    let password = std::fs::read_to_string(root.path("root/.local/share/paas/api/admin-password"))
        .expect("the generated admin password is kept");
    let user = User::new();
    user.ok(None, &["login", "-a", &url(p.api), "-u", "admin", "-p", password.trim()]);
    user.ok(None, &["create-org", "demo"]);
    user.ok(None, &["create-space", "dev", "-o", "demo"]);
    user.ok(None, &["target", "-o", "demo", "-s", "dev"]);
    let scratch = tempfile::tempdir().expect("scratch");
    let apps = fixtures(scratch.path());
    let out = user.run_in(Some(&apps.join("static")), &["push"]);
    assert!(
        out.status.success(),
        "{}\nlogs:\n{}\npaasd said:\n{}",
        text(&out),
        text(&user.run_in(None, &["logs", "static-site", "--recent"])),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    served(&url(p.router), "static-site.apps.localhost", "static fixture v1").await;
    drop(paasd);
}
