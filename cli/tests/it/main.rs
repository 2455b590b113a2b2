//! The `paas` binary against a real `paasd dev` (runc, as in CI): every command, its output and
//! its exit code, failures included.

mod brokers;
mod commands;
mod more_commands;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// `paasd`, built next to this test by `cargo test --workspace`.
fn paasd() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let p = exe.parent().and_then(Path::parent).expect("target dir").join("paasd");
    assert!(p.exists(), "{} is missing: run the suite with `cargo test --workspace`", p.display());
    p
}

pub struct Platform {
    pub api: String,
    pub router: String,
    child: Child,
    dir: tempfile::TempDir,
    net: String,
}

impl Drop for Platform {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Whatever the cell left: containers, mounts, its bridge and nft table.
        let d = self.dir.path().display().to_string();
        let n = &self.net;
        let sh = |c: String| {
            let _ = Command::new("sh").args(["-c", &c]).output();
        };
        sh(format!(
            "runc list -f json | tr '{{' '\\n' | grep '{d}' | sed 's/.*\"id\":\"\\([^\"]*\\)\".*/\\1/' | xargs -r -n1 runc delete --force"
        ));
        sh(format!("grep '{d}' /proc/mounts | cut -d' ' -f2 | xargs -r -n1 umount -l"));
        sh(format!("ip link del pc{n} 2>/dev/null; nft delete table ip paas_c{n} 2>/dev/null; nft delete table bridge paas_c{n} 2>/dev/null"));
    }
}

pub const ADMIN_PASSWORD: &str = "cli-admin-password";

pub async fn platform() -> Platform {
    let dir = tempfile::tempdir().expect("tmp");
    let f = testkit::free_port;
    let (api, router, router_status, logs, sched, cell, stager, ssh) =
        (f(), f(), f(), f(), f(), f(), f(), f());
    let a = |p: u16| format!("127.0.0.1:{p}");
    // Tests of this binary run side by side, each with its own platform: each cell gets its own
    // bridge, nft table, subnet and host ports.
    static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let k = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pid = std::process::id();
    let net = format!("{}{k}", pid % 10_000);
    let (port_min, port_max) = (63_600 + 100 * k, 63_699 + 100 * k);
    let child = Command::new(paasd())
        .arg("dev")
        .env("PAAS_DATA_DIR", dir.path())
        .env("PAAS_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("PAAS_API_ADDR", a(api))
        .env("PAAS_ROUTER_ADDR", a(router))
        .env("PAAS_ROUTER_STATUS_ADDR", a(router_status))
        .env("PAAS_LOGS_ADDR", a(logs))
        .env("PAAS_LOGS_DRAIN_REFRESH_SECS", "1")
        .env("PAAS_SCHEDULER_ADDR", a(sched))
        .env("PAAS_CELL_ADDR", a(cell))
        .env("PAAS_STAGER_STATUS_ADDR", a(stager))
        // Its own SSH port, so that platforms of tests running side by side do not collide.
        .env("PAAS_SSH_ADDR", a(ssh))
        .env("PAAS_DASHBOARD_ADDR", "127.0.0.1:0")
        .env("PAAS_CELL_BACKEND", "runc")
        .env("PAAS_CELL_BRIDGE", format!("pc{net}"))
        .env("PAAS_CELL_NFT_TABLE", format!("paas_c{net}"))
        .env("PAAS_CELL_SUBNET", format!("10.229.{}.0", (pid + 97 * k) % 250))
        .env("PAAS_CELL_HOST_PORT_MIN", port_min.to_string())
        .env("PAAS_CELL_HOST_PORT_MAX", port_max.to_string())
        .env("PAAS_CELL_STACKS_DIR", stack::test_cache_dir())
        .env("PAAS_STAGER_STACKS_DIR", stack::test_cache_dir())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("paasd");
    for p in [api, router_status, logs, sched, cell, stager] {
        testkit::wait_http_ok(&format!("http://127.0.0.1:{p}/readyz"), Duration::from_secs(60))
            .await
            .expect("ready");
    }
    Platform {
        api: format!("http://{}", a(api)),
        router: format!("http://{}", a(router)),
        child,
        dir,
        net,
    }
}

/// One user's CLI (own config home).
pub struct Paas {
    pub home: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub out: String,
    pub err: String,
}

impl Default for Paas {
    fn default() -> Self {
        Self::new()
    }
}

impl Paas {
    pub fn new() -> Self {
        Self { home: tempfile::tempdir().expect("home") }
    }

    pub fn run(&self, dir: Option<&Path>, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_paas"));
        cmd.args(args)
            .env("PAAS_HOME", self.home.path())
            .env("PAAS_POLL_MS", "200")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        let o: Output = cmd.output().expect("paas runs");
        Run {
            code: o.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&o.stdout).into_owned(),
            err: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Run with `input` on stdin.
    pub fn run_input(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write as _;
        let mut child = Command::new(env!("CARGO_BIN_EXE_paas"))
            .args(args)
            .env("PAAS_HOME", self.home.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("paas runs");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("input");
        let o = child.wait_with_output().expect("paas ends");
        Run {
            code: o.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&o.stdout).into_owned(),
            err: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Run; require exit 0; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(None, args);
        assert_eq!(r.code, 0, "paas {args:?}:\n{}\n{}", r.out, r.err);
        r.out
    }
}
