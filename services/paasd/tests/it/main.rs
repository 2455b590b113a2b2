//! `paasd` as a user runs it: the built binary, real processes, real NATS and PostgreSQL.

mod config_errors;
mod dev;
mod multi_process;
mod output;
mod push;

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A data directory for a `paasd` that runs apps with the process backend. As root those apps
/// run as vcap, who must reach their directories under it: open to others whatever the umask.
pub fn data_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// A `paasd` child process, killed (SIGTERM, then SIGKILL) when dropped.
pub struct Paasd {
    pub child: Child,
}

impl Paasd {
    pub fn spawn(args: &[&str], env: &[(&str, String)], data_dir: &Path) -> Self {
        Self::spawn_with(args, env, data_dir, |_| {})
    }

    /// [`Paasd::spawn`], with the command adjusted by `adjust` before it starts.
    pub fn spawn_with(
        args: &[&str],
        env: &[(&str, String)],
        data_dir: &Path,
        adjust: impl FnOnce(&mut Command),
    ) -> Self {
        Self::spawn_from(Command::new(env!("CARGO_BIN_EXE_paasd")), args, env, data_dir, adjust)
    }

    /// [`Paasd::spawn`] with the file mode creation mask `umask` (as a user's shell sets it).
    pub fn spawn_with_umask(
        umask: &str,
        args: &[&str],
        env: &[(&str, String)],
        data_dir: &Path,
    ) -> Self {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_paasd"));
        Self::spawn_from(sh, args, env, data_dir, |_| {})
    }

    fn spawn_from(
        mut cmd: Command,
        args: &[&str],
        env: &[(&str, String)],
        data_dir: &Path,
        adjust: impl FnOnce(&mut Command),
    ) -> Self {
        cmd.args(args)
            .env("PAAS_DATA_DIR", data_dir)
            .env("RUST_LOG", "warn")
            .env_remove("PAAS_ADMIN_PASSWORD")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        adjust(&mut cmd);
        Self { child: cmd.spawn().expect("paasd starts") }
    }

    /// Send SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.child.wait().expect("paasd exits")
    }
}

impl Drop for Paasd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
            for _ in 0..100 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Ports for every listener of a dev platform, and the env that sets them.
pub struct Ports {
    pub api: u16,
    pub router: u16,
    pub router_status: u16,
    pub logs: u16,
    pub scheduler: u16,
    pub cell: u16,
    pub stager: u16,
}

impl Ports {
    pub fn free() -> Self {
        let p = testkit::free_port;
        Self {
            api: p(),
            router: p(),
            router_status: p(),
            logs: p(),
            scheduler: p(),
            cell: p(),
            stager: p(),
        }
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        let a = |p: u16| format!("127.0.0.1:{p}");
        vec![
            ("PAAS_API_ADDR", a(self.api)),
            ("PAAS_ROUTER_ADDR", a(self.router)),
            ("PAAS_ROUTER_STATUS_ADDR", a(self.router_status)),
            ("PAAS_LOGS_ADDR", a(self.logs)),
            ("PAAS_SCHEDULER_ADDR", a(self.scheduler)),
            ("PAAS_CELL_ADDR", a(self.cell)),
            ("PAAS_STAGER_STATUS_ADDR", a(self.stager)),
            ("PAAS_DASHBOARD_ADDR", "127.0.0.1:0".to_owned()),
            // Platforms of tests side by side: each its own SSH port.
            ("PAAS_SSH_ADDR", "127.0.0.1:0".to_owned()),
            // These tests are about paasd itself: no host networking for containers.
            ("PAAS_CELL_BACKEND", "process".to_owned()),
            // Tests stop cells with SIGTERM: no waiting for a hand-over to other cells.
            ("PAAS_CELL_EVACUATION_TIMEOUT_SECS", "0".to_owned()),
        ]
    }

    /// The `/readyz` URL of every service.
    pub fn readyz(&self) -> Vec<String> {
        [self.api, self.router_status, self.logs, self.scheduler, self.cell, self.stager]
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}/readyz"))
            .collect()
    }

    /// Wait until every service of `paasd` answers its `/readyz`, all within `deadline`; how
    /// long it took. A paasd that exits meanwhile fails the test at once, with its exit status.
    pub async fn wait_ready(
        &self,
        paasd: &mut Paasd,
        deadline: std::time::Duration,
    ) -> std::time::Duration {
        let started = std::time::Instant::now();
        let http = reqwest::Client::new();
        for url in self.readyz() {
            loop {
                if let Ok(Some(status)) = paasd.child.try_wait() {
                    panic!("paasd exited ({status}) before {url} was ready");
                }
                let probe = http.get(&url).timeout(std::time::Duration::from_secs(1)).send().await;
                if probe.is_ok_and(|r| r.status().is_success()) {
                    break;
                }
                assert!(started.elapsed() < deadline, "{url}: not ready after {deadline:?}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        started.elapsed()
    }
}
