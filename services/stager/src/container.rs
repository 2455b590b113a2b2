//! Runs the lifecycle builder: in a runc container on the stack (the real backend), or as a
//! plain child process (no root). Streams every output line to the STG log, and enforces the
//! time limit, the disk limit (by measuring the scratch dirs) and, with runc, the memory limit.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::config::Backend;
use crate::error::StageError;
use crate::logs::StgLog;
use crate::runc_spec;

/// Host paths of one staging and its limits.
#[derive(Debug, Clone)]
pub struct BuildRun {
    pub id: String,
    pub root: PathBuf,
    pub app: PathBuf,
    pub cache: PathBuf,
    pub deps: PathBuf,
    pub output: PathBuf,
    pub buildpacks: Vec<PathBuf>,
    pub builder: PathBuf,
    pub env: Vec<(String, String)>,
    pub rootfs: Option<PathBuf>,
    /// Host CA bundle to mount over the stack's.
    pub ca_file: Option<PathBuf>,
    pub memory_mb: u64,
    pub disk_mb: u64,
    pub timeout: Duration,
}

/// How the builder ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    TimedOut,
    OutOfMemory,
    OutOfDisk { used_mb: u64 },
}

/// Run the builder to completion under the limits.
pub async fn run(backend: Backend, r: &BuildRun, log: &StgLog) -> Result<Exit, StageError> {
    // Removes the container however this future ends (also when it is dropped mid-run).
    let _guard = (backend == Backend::Runc).then(|| RuncGuard(r.id.clone()));
    let mut child = match backend {
        Backend::Runc => spawn_runc(r).await?,
        Backend::Process => spawn_process(r)?,
    };
    let out = child.stdout.take().map(|s| pump(s, log.clone(), false));
    let err = child.stderr.take().map(|s| pump(s, log.clone(), true));
    let cgroup = memory_cgroup(&r.id);
    let mut oom = false;
    let deadline = tokio::time::Instant::now() + r.timeout;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let outcome = loop {
        tokio::select! {
            status = child.wait() => {
                let status = status.map_err(|e| StageError::platform(format!("wait: {e}")))?;
                break Exit::Code(exit_code(status));
            }
            _ = tokio::time::sleep_until(deadline) => {
                kill(backend, r, &mut child).await;
                break Exit::TimedOut;
            }
            _ = tick.tick() => {
                if backend == Backend::Runc && oom_kills(&cgroup) > 0 {
                    oom = true;
                }
                let used = scratch_bytes(r).await;
                if used > r.disk_mb.saturating_mul(1 << 20) {
                    kill(backend, r, &mut child).await;
                    break Exit::OutOfDisk { used_mb: used >> 20 };
                }
            }
        }
    };
    let recorded = std::fs::read_to_string(r.output.join("oom_kills")).unwrap_or_default();
    if backend == Backend::Runc
        && (oom_kills(&cgroup) > 0 || recorded.trim().parse::<u64>().unwrap_or(0) > 0)
    {
        oom = true;
    }
    for pump in [out, err].into_iter().flatten() {
        let _ = pump.await;
    }
    Ok(match outcome {
        Exit::Code(c) if oom && c != 0 => Exit::OutOfMemory,
        other => other,
    })
}

struct RuncGuard(String);

impl Drop for RuncGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("runc")
            .args(["delete", "--force", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

async fn spawn_runc(r: &BuildRun) -> Result<Child, StageError> {
    let rootfs = r.rootfs.as_deref().ok_or_else(|| StageError::platform("no stack rootfs"))?;
    let bundle = r.root.join("bundle");
    let io = |e: std::io::Error| StageError::platform(format!("bundle: {e}"));
    tokio::fs::create_dir_all(&bundle).await.map_err(io)?;
    let spec = runc_spec::staging_spec(r, rootfs);
    let body = serde_json::to_vec_pretty(&spec).map_err(|e| StageError::platform(e.to_string()))?;
    tokio::fs::write(bundle.join("config.json"), body).await.map_err(io)?;
    for dir in [&r.app, &r.cache, &r.deps, &r.output] {
        chown_tree(dir).await?;
    }
    Command::new("runc")
        .arg("run")
        .arg("--bundle")
        .arg(&bundle)
        .arg(&r.id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| StageError::platform(format!("cannot start runc: {e}")))
}

fn spawn_process(r: &BuildRun) -> Result<Child, StageError> {
    let bps = r.root.join("buildpacks");
    let _ = std::fs::remove_dir_all(&bps);
    std::fs::create_dir_all(&bps).map_err(|e| StageError::platform(e.to_string()))?;
    for (i, dir) in r.buildpacks.iter().enumerate() {
        std::os::unix::fs::symlink(dir, bps.join(i.to_string()))
            .map_err(|e| StageError::platform(format!("buildpack link: {e}")))?;
    }
    let mut cmd = Command::new("bash");
    cmd.arg(&r.builder)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()))
        .env("HOME", r.root.join("home"))
        .envs(r.env.iter().map(|(k, v)| (k, v)))
        .env("PAAS_BUILD_DIR", &r.app)
        .env("PAAS_CACHE_DIR", &r.cache)
        .env("PAAS_DEPS_DIR", &r.deps)
        .env("PAAS_OUTPUT_DIR", &r.output)
        .env("PAAS_BUILDPACKS_DIR", &bps)
        .env("TMPDIR", r.root.join("tmp"))
        .current_dir(&r.app)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let _ = std::fs::create_dir_all(r.root.join("home"));
    let _ = std::fs::create_dir_all(r.root.join("tmp"));
    cmd.spawn().map_err(|e| StageError::platform(format!("cannot start builder: {e}")))
}

async fn kill(backend: Backend, r: &BuildRun, child: &mut Child) {
    match backend {
        Backend::Runc => {
            let _ = Command::new("runc").args(["kill", "--all", &r.id, "KILL"]).output().await;
        }
        Backend::Process => {
            if let Some(pid) = child.id() {
                let group = format!("-{pid}");
                let _ = Command::new("kill").args(["-KILL", "--", &group]).output().await;
            }
        }
    }
    let _ = child.kill().await;
    let _ = child.wait().await;
}

fn pump<R: AsyncRead + Unpin + Send + 'static>(
    src: R,
    log: StgLog,
    is_err: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(src);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf);
                    let line = text.trim_end_matches(['\n', '\r']);
                    if is_err {
                        log.err(line).await
                    } else {
                        log.out(line).await
                    }
                }
            }
        }
    })
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// The cgroup (v1 memory hierarchy) runc puts the staging container in.
pub fn cgroup_path(id: &str) -> String {
    format!("/paas-stager/{id}")
}

fn memory_cgroup(id: &str) -> PathBuf {
    PathBuf::from(format!("/sys/fs/cgroup/memory{}", cgroup_path(id)))
}

/// The kernel's count of OOM kills in that cgroup (0 when unknown).
fn oom_kills(cgroup: &Path) -> u64 {
    std::fs::read_to_string(cgroup.join("memory.oom_control"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse().ok()))
        })
        .unwrap_or(0)
}

async fn scratch_bytes(r: &BuildRun) -> u64 {
    let dirs = [r.app.clone(), r.cache.clone(), r.deps.clone(), r.output.clone()];
    tokio::task::spawn_blocking(move || dirs.iter().map(|d| tree_size(d)).sum()).await.unwrap_or(0)
}

/// Bytes of regular files below `dir` (symlinks not followed).
pub fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

async fn chown_tree(dir: &Path) -> Result<(), StageError> {
    let owner = format!("{}:{}", stack::VCAP_UID, stack::VCAP_GID);
    let out = Command::new("chown")
        .args(["-R", "-h", &owner])
        .arg(dir)
        .output()
        .await
        .map_err(|e| StageError::platform(format!("chown: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(StageError::platform(format!(
            "chown {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
