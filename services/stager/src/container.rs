//! Runs the lifecycle builder: in a runc container on the stack (the real backend), or as a
//! plain child process (no root). Streams every output line to the STG log, and enforces the
//! time limit, the disk limit (by measuring the scratch dirs) and, with runc, the memory limit.
//!
//! The staging container: the stack read-only as root, the scratch dirs bind-mounted under
//! /tmp, user vcap, own PID/mount/UTS/IPC namespaces, the host network namespace (pip and npm
//! need egress; see ADR 0700), a memory cgroup without swap.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ::container::spec::{self, Command as SpecCommand, ContainerSpec, Limits, MountSet, Net};
use ::container::{runc, Host, Signal};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::config::Backend;
use crate::error::StageError;
use crate::logs::StgLog;

/// Where the builder is mounted inside the container.
pub const BUILDER_PATH: &str = "/tmp/lifecycle/builder";

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
pub async fn run(
    backend: Backend,
    host: &dyn Host,
    r: &BuildRun,
    log: &StgLog,
) -> Result<Exit, StageError> {
    // Removes the container however this future ends (also when it is dropped mid-run).
    let mut guard = (backend == Backend::Runc).then(|| RuncGuard(Some(r.id.clone())));
    let exit = run_guarded(backend, host, r, log).await;
    if let Some(id) = guard.as_mut().and_then(|g| g.0.take()) {
        let _ = host.runc_delete(&id).await;
    }
    exit
}

async fn run_guarded(
    backend: Backend,
    host: &dyn Host,
    r: &BuildRun,
    log: &StgLog,
) -> Result<Exit, StageError> {
    let mut child = match backend {
        Backend::Runc => spawn_runc(host, r).await?,
        Backend::Process => spawn_process(r)?,
    };
    // A staging dropped mid-run (its claim lost, the stager stopping) takes the builder's
    // whole process group with it, not only the shell that leads it.
    let mut group = match backend {
        Backend::Process => GroupGuard(child.id()),
        Backend::Runc => GroupGuard(None),
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
                kill(backend, host, r, &mut child).await;
                break Exit::TimedOut;
            }
            _ = tick.tick() => {
                if backend == Backend::Runc && oom_kills(&cgroup) > 0 {
                    oom = true;
                }
                let used = scratch_bytes(r).await;
                if used > r.disk_mb.saturating_mul(1 << 20) {
                    kill(backend, host, r, &mut child).await;
                    break Exit::OutOfDisk { used_mb: used >> 20 };
                }
            }
        }
    };
    // The builder has ended (or was killed with its group): its group id may be reused.
    group.0 = None;
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

/// Deletes the container when a staging is dropped mid-run (a normal end deletes it first):
/// on the runtime when there is one, else right here.
struct RuncGuard(Option<String>);

/// Kills the process group of a builder still running when dropped. Disarmed once the builder
/// was waited for: after that its group id may belong to someone else.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            if let Err(e) = ::container::host::kill_group(pgid, Signal::Kill) {
                tracing::debug!(error = %e, "builder process group not killed");
            }
        }
    }
}

impl Drop for RuncGuard {
    fn drop(&mut self) {
        let Some(id) = self.0.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    let _ = runc::delete(&id).await;
                });
            }
            Err(_) => runc::delete_blocking(&id),
        }
    }
}

/// The runtime spec of a staging container on `rootfs`.
pub fn staging_spec(r: &BuildRun, rootfs: &Path) -> Result<ContainerSpec, spec::OciSpecError> {
    let mut mounts = spec::standard_mounts(MountSet::Staging);
    mounts.extend([
        spec::tmpfs("/tmp", &["nosuid", "nodev", "mode=1777"])?,
        spec::tmpfs("/home/vcap", &["nosuid", "nodev", "mode=755", "uid=2000", "gid=2000"])?,
        spec::bind("/etc/resolv.conf", Path::new("/etc/resolv.conf"), true)?,
        spec::bind("/tmp/app", &r.app, false)?,
        spec::bind("/tmp/cache", &r.cache, false)?,
        spec::bind("/tmp/deps", &r.deps, false)?,
        spec::bind("/tmp/output", &r.output, false)?,
        spec::bind(BUILDER_PATH, &r.builder, true)?,
    ]);
    if let Some(ca) = &r.ca_file {
        mounts.push(spec::bind(crate::config::CA_BUNDLE, ca, true)?);
    }
    for (i, bp) in r.buildpacks.iter().enumerate() {
        mounts.push(spec::bind(&format!("/tmp/buildpacks/{i}"), bp, true)?);
    }
    let mut env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        "HOME=/home/vcap".to_owned(),
        "LANG=C.UTF-8".to_owned(),
        "TMPDIR=/tmp".to_owned(),
        "PAAS_CGROUP_OOM=1".to_owned(),
    ];
    env.extend(r.env.iter().map(|(k, v)| format!("{k}={v}")));
    Ok(ContainerSpec {
        rootfs: rootfs.to_owned(),
        readonly_root: true,
        hostname: "staging".into(),
        command: SpecCommand {
            args: vec!["/bin/bash".into(), BUILDER_PATH.into()],
            env,
            cwd: "/tmp/app".into(),
            uid: stack::VCAP_UID,
            gid: stack::VCAP_GID,
        },
        mounts,
        net: Net::Host,
        cgroups_path: cgroup_path(&r.id).into(),
        limits: Limits {
            memory_bytes: r.memory_mb.saturating_mul(1 << 20),
            pids: 4096,
            cpu_shares: None,
        },
    })
}

async fn spawn_runc(host: &dyn Host, r: &BuildRun) -> Result<Child, StageError> {
    let rootfs = r.rootfs.as_deref().ok_or_else(|| StageError::platform("no stack rootfs"))?;
    let bundle = r.root.join("bundle");
    let spec = staging_spec(r, rootfs).map_err(|e| StageError::platform(e.to_string()))?;
    spec.write_bundle(&bundle).map_err(|e| StageError::platform(format!("bundle: {e}")))?;
    for dir in [&r.app, &r.cache, &r.deps, &r.output] {
        host.chown_tree(dir, stack::VCAP_UID, stack::VCAP_GID)
            .await
            .map_err(|e| StageError::platform(e.to_string()))?;
    }
    let run = runc::Run { id: r.id.clone(), bundle, kill_on_drop: true, ..runc::Run::default() };
    run.spawn().map_err(|e| StageError::platform(format!("cannot start runc: {e}")))
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

async fn kill(backend: Backend, host: &dyn Host, r: &BuildRun, child: &mut Child) {
    match backend {
        Backend::Runc => {
            let _ = host.runc_kill_all(&r.id, Signal::Kill).await;
        }
        Backend::Process => {
            if let Some(pid) = child.id() {
                let _ = host.kill_group(pid, Signal::Kill).await;
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
    tokio::task::spawn_blocking(move || dirs.iter().map(|d| ::container::disk::file_bytes(d)).sum())
        .await
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn build_run() -> BuildRun {
        BuildRun {
            id: "b-1".into(),
            root: "/w/b-1".into(),
            app: "/w/b-1/app".into(),
            cache: "/w/b-1/cache".into(),
            deps: "/w/b-1/deps".into(),
            output: "/w/b-1/output".into(),
            buildpacks: vec!["/bp/a".into(), "/bp/b".into()],
            builder: "/w/b-1/builder.sh".into(),
            env: vec![("VCAP_APPLICATION".into(), "{}".into())],
            rootfs: Some("/stacks/bookworm/rootfs".into()),
            ca_file: Some("/etc/paas/ca.pem".into()),
            memory_mb: 1024,
            disk_mb: 4096,
            timeout: Duration::from_secs(900),
        }
    }

    /// The staging spec as it was written by hand before it was built with `oci-spec`.
    fn as_before(r: &BuildRun, rootfs: &Path) -> Value {
        let bind = |dest: &str, src: &Path, ro: bool| {
            json!({"destination": dest, "type": "bind", "source": src,
                   "options": ["rbind", "nosuid", "nodev", if ro { "ro" } else { "rw" }]})
        };
        let mut mounts = vec![
            json!({"destination": "/proc", "type": "proc", "source": "proc"}),
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
            json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                   "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                   "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                   "options": ["nosuid", "noexec", "nodev", "ro"]}),
            json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                   "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
            json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "nodev", "mode=1777"]}),
            json!({"destination": "/home/vcap", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "nodev", "mode=755", "uid=2000", "gid=2000"]}),
            bind("/etc/resolv.conf", Path::new("/etc/resolv.conf"), true),
            bind("/tmp/app", &r.app, false),
            bind("/tmp/cache", &r.cache, false),
            bind("/tmp/deps", &r.deps, false),
            bind("/tmp/output", &r.output, false),
            bind(BUILDER_PATH, &r.builder, true),
        ];
        if let Some(ca) = &r.ca_file {
            mounts.push(bind(crate::config::CA_BUNDLE, ca, true));
        }
        for (i, bp) in r.buildpacks.iter().enumerate() {
            mounts.push(bind(&format!("/tmp/buildpacks/{i}"), bp, true));
        }
        let mut env = vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            "HOME=/home/vcap".to_owned(),
            "LANG=C.UTF-8".to_owned(),
            "TMPDIR=/tmp".to_owned(),
            "PAAS_CGROUP_OOM=1".to_owned(),
        ];
        env.extend(r.env.iter().map(|(k, v)| format!("{k}={v}")));
        let memory = r.memory_mb.saturating_mul(1 << 20);
        json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": stack::VCAP_UID, "gid": stack::VCAP_GID},
                "args": ["/bin/bash", BUILDER_PATH],
                "env": env,
                "cwd": "/tmp/app",
                "capabilities": {"bounding": [], "effective": [], "permitted": [], "ambient": []},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 16384, "soft": 16384}],
                "noNewPrivileges": true
            },
            "root": {"path": rootfs, "readonly": true},
            "hostname": "staging",
            "mounts": mounts,
            "linux": {
                "cgroupsPath": cgroup_path(&r.id),
                "resources": {
                    "devices": [{"allow": false, "access": "rwm"}],
                    "memory": {"limit": memory, "swap": memory},
                    "pids": {"limit": 4096}
                },
                "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}],
                "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
                "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
            }
        })
    }

    #[test]
    fn the_staging_spec_is_the_one_written_by_hand_before() {
        let r = build_run();
        let rootfs = r.rootfs.clone().expect("rootfs");
        let now = staging_spec(&r, &rootfs).expect("spec").build().expect("build");
        let now = serde_json::to_value(now).expect("json");
        let before = as_before(&r, &rootfs);
        for key in ["ociVersion", "root", "hostname", "mounts"] {
            assert_eq!(now[key], before[key], "{key}");
        }
        for key in ["terminal", "user", "args", "env", "cwd", "rlimits", "noNewPrivileges"] {
            assert_eq!(now["process"][key], before["process"][key], "process.{key}");
        }
        for (set, caps) in before["process"]["capabilities"].as_object().expect("caps") {
            assert_eq!(&now["process"]["capabilities"][set], caps, "capabilities.{set}");
        }
        let linux = ["cgroupsPath", "resources", "namespaces", "maskedPaths", "readonlyPaths"];
        for key in linux {
            assert_eq!(now["linux"][key], before["linux"][key], "linux.{key}");
        }
    }
}
