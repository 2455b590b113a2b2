//! The process backend, for development on machines where runc cannot be used: the launcher
//! runs as a plain child process (its own process group) in a per-instance directory holding
//! a copy of the droplet, listening on a host port of its own. Nothing isolates it from the
//! host or other apps; memory and CPU are read from `/proc` for the whole group, and an
//! instance over its memory is killed at the next measurement (there is no cgroup to stop it
//! sooner).
//!
//! Layout of an instance: `<instances>/<short>/home/vcap/{app,deps,tmp,...}` (the droplet's
//! `home/vcap`, copied), `launcher`, and `pid` (`<pid> <start time>`, so a restarted cell kills
//! the groups its crashed run left, and never a process that got a reused pid).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::container::{Host, Signal};

use super::{Launch, SandboxError};
use crate::procfs;

/// Host ports handed to instances: each checked free by binding it, taken in turn (a port
/// just released is the last to come back).
struct Ports {
    range: (u16, u16),
    state: Mutex<(BTreeSet<u16>, u16)>,
}

impl Ports {
    fn take(&self) -> Option<u16> {
        let (lo, hi) = self.range;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (in_use, next) = &mut *state;
        let start = (*next).clamp(lo, hi);
        let candidates = (start..=hi).chain(lo..start);
        for port in candidates {
            if in_use.contains(&port) || std::net::TcpListener::bind(("0.0.0.0", port)).is_err() {
                continue;
            }
            in_use.insert(port);
            *next = if port == hi { lo } else { port + 1 };
            return Some(port);
        }
        None
    }

    fn give_back(&self, port: u16) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0.remove(&port);
    }
}

/// What every process instance of this cell shares.
struct Shared {
    os: Arc<dyn Host>,
    ports: Ports,
    /// uid and gid the apps run as (vcap when the cell is root; else the cell's own user).
    run_as: Option<(u32, u32)>,
    /// The host's PATH, which apps get.
    path: String,
    proc: PathBuf,
}

/// The process backend of this cell.
pub struct Processes {
    host: Arc<Shared>,
}

impl Processes {
    pub fn new(os: Arc<dyn Host>, port_range: (u16, u16), as_root: bool) -> Self {
        let host = Shared {
            os,
            ports: Ports { range: port_range, state: Mutex::default() },
            run_as: as_root.then_some((stack::VCAP_UID, stack::VCAP_GID)),
            path: std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
            proc: PathBuf::from("/proc"),
        };
        Self { host: Arc::new(host) }
    }

    /// The network step: a free host port, which the app listens on itself.
    pub fn place(&self, dir: PathBuf) -> Result<ProcessSandbox, SandboxError> {
        let (lo, hi) = self.host.ports.range;
        let port = self.host.ports.take().ok_or(SandboxError::NoPort(lo, hi))?;
        Ok(ProcessSandbox {
            host: self.host.clone(),
            dir,
            port,
            command: None,
            memory_limit: 0,
            group: None,
            oom: AtomicBool::new(false),
        })
    }

    /// Start of the cell: the process groups a crashed run left are killed (only those whose
    /// leader's start time matches their pid file) and every instance directory is removed.
    pub async fn sweep(&self, instances: &Path) {
        let Ok(mut dir) = tokio::fs::read_dir(instances).await else { return };
        while let Ok(Some(e)) = dir.next_entry().await {
            let pid = tokio::fs::read_to_string(e.path().join("pid")).await.unwrap_or_default();
            if let Some((pgid, start)) = parse_pid_file(&pid) {
                if procfs::is_group_of(&self.host.proc, pgid, start) {
                    tracing::warn!(dir = %e.path().display(), pgid, "killing an app a previous run of this cell left");
                    kill_group(self.host.os.as_ref(), &self.host.proc, pgid, Signal::Kill).await;
                }
            }
            let _ = tokio::fs::remove_dir_all(e.path()).await;
        }
    }
}

/// One instance run as a process.
pub struct ProcessSandbox {
    host: Arc<Shared>,
    pub dir: PathBuf,
    pub port: u16,
    /// The environment and the start command, once prepared.
    command: Option<(Vec<(String, String)>, String)>,
    memory_limit: u64,
    /// The process group (its leader's pid) and the leader's start time, once spawned.
    group: Option<(u32, u64)>,
    oom: AtomicBool,
}

impl ProcessSandbox {
    /// The droplet's `home/vcap` under the instance directory.
    pub fn vcap_root(&self) -> PathBuf {
        self.dir.join("home/vcap")
    }

    /// The app's environment, user and directory, for SSH sessions.
    pub fn exec_target(&self) -> Option<crate::exec::Target> {
        let (env, _) = self.command.as_ref()?;
        Some(crate::exec::Target::Process {
            home: self.vcap_root(),
            env: env.clone(),
            run_as: self.host.run_as,
            port: self.port,
        })
    }

    pub fn host_path(&self) -> &str {
        &self.host.path
    }

    /// Copy the droplet (apps write into their directory), add `tmp/` and the launcher, and
    /// hand it all to the app's user.
    pub async fn prepare(&mut self, launch: &Launch, env: Vec<String>) -> Result<(), SandboxError> {
        tokio::fs::create_dir_all(self.dir.join("home")).await?;
        let (from, into) = (launch.layer.join("home/vcap"), self.dir.join("home"));
        self.host.os.copy_tree(&from, &into).await?;
        tokio::fs::create_dir_all(self.vcap_root().join("tmp")).await?;
        let launcher = self.dir.join("launcher");
        tokio::fs::write(&launcher, stack::LAUNCHER).await?;
        if let Some((uid, gid)) = self.host.run_as {
            self.host.os.chown_tree(&self.dir, uid, gid).await?;
        }
        let mut vars: Vec<(String, String)> = env
            .iter()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        vars.push(("PAAS_VCAP_ROOT".into(), self.vcap_root().display().to_string()));
        self.command = Some((vars, launch.start_command.clone()));
        self.memory_limit = launch.memory_mb.saturating_mul(1 << 20);
        Ok(())
    }

    /// `bash launcher '<start command>'` in a process group of its own; its pid file follows.
    pub fn spawn(&mut self) -> Result<tokio::process::Child, SandboxError> {
        let Some((env, start_command)) = &self.command else {
            return Err(SandboxError::Io(std::io::Error::other("not prepared")));
        };
        let mut cmd = tokio::process::Command::new("bash");
        cmd.arg(self.dir.join("launcher"))
            .arg(start_command)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some((uid, gid)) = self.host.run_as {
            cmd.uid(uid).gid(gid);
        }
        let child = cmd.spawn()?;
        let pid = child.id().ok_or_else(|| std::io::Error::other("the app exited at once"))?;
        let start = procfs::stat(&self.host.proc, pid).map(|s| s.starttime).unwrap_or_default();
        self.group = Some((pid, start));
        std::fs::write(self.dir.join("pid"), format!("{pid} {start}\n"))?;
        Ok(child)
    }

    pub fn started(&self) -> bool {
        self.group.is_some()
    }

    /// Send `signal` to the whole group; whether it was sent.
    pub async fn signal(&self, signal: Signal) -> bool {
        match self.group {
            Some((pgid, start)) if procfs::is_group_of(&self.host.proc, pgid, start) => {
                self.host.os.kill_group(pgid, signal).await.is_ok()
            }
            _ => false,
        }
    }

    /// Resident memory of the group, in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.group.map_or(0, |(pgid, _)| procfs::group_rss(&self.host.proc, pgid))
    }

    pub fn cpu_ns(&self) -> Option<u64> {
        self.group.map(|(pgid, _)| procfs::group_cpu_ns(&self.host.proc, pgid))
    }

    /// Kill the group when it is over its memory (what the kernel's OOM killer does in a
    /// container); whether it did.
    pub async fn enforce_memory(&self) -> bool {
        let used = self.memory_bytes();
        if self.memory_limit == 0 || used <= self.memory_limit {
            return false;
        }
        tracing::warn!(dir = %self.dir.display(), used, limit = self.memory_limit, "killing an app over its memory limit");
        self.oom.store(true, Ordering::SeqCst);
        let killed = self.signal(Signal::Kill).await;
        self.oom.store(killed, Ordering::SeqCst);
        killed
    }

    pub fn out_of_memory(&self) -> bool {
        self.oom.load(Ordering::SeqCst)
    }

    /// Kill what is left of the group, remove the directory, give the port back.
    pub async fn release(self) {
        if let Some((pgid, start)) = self.group {
            if procfs::is_group_of(&self.host.proc, pgid, start) {
                kill_group(self.host.os.as_ref(), &self.host.proc, pgid, Signal::Kill).await;
            }
        }
        let _ = tokio::fs::remove_dir_all(&self.dir).await;
        self.host.ports.give_back(self.port);
    }
}

/// Signal group `pgid` and wait (up to 2 s) until none of it is left.
async fn kill_group(os: &dyn Host, proc: &Path, pgid: u32, signal: Signal) {
    let _ = os.kill_group(pgid, signal).await;
    let until = Instant::now() + Duration::from_secs(2);
    while !procfs::group(proc, pgid).is_empty() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `<pid> <start time>` of a pid file.
pub fn parse_pid_file(text: &str) -> Option<(u32, u64)> {
    let mut words = text.split_whitespace();
    let pid = words.next()?.parse().ok().filter(|p| *p > 1)?;
    let start = words.next()?.parse().ok()?;
    words.next().is_none().then_some((pid, start))
}

/// The first directory from `/` down to `dir` that other users may not enter (an app run as
/// vcap could not reach its instance directory below it).
pub fn closed_to_others(dir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut ancestors: Vec<&Path> = dir.ancestors().collect();
    ancestors.reverse();
    ancestors.into_iter().find_map(|a| match std::fs::metadata(a) {
        Ok(m) if m.permissions().mode() & 0o001 != 0 => None,
        _ => Some(a.to_path_buf()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_file_holds_a_pid_and_its_start_time() {
        assert_eq!(parse_pid_file("4242 987654\n"), Some((4242, 987_654)));
        for bad in ["", "4242", "x 1", "4242 y", "1 5", "0 5", "4242 5 6", "-3 5"] {
            assert_eq!(parse_pid_file(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_port_is_handed_out_once_and_never_while_someone_listens_on_it() {
        let busy = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
        let p = busy.local_addr().expect("addr").port();
        let ports = Ports { range: (p, p), state: Mutex::default() };
        assert_eq!(ports.take(), None, "someone listens on it");
        drop(busy);
        assert_eq!(ports.take(), Some(p));
        assert_eq!(ports.take(), None, "already handed out");
        ports.give_back(p);
        assert_eq!(ports.take(), Some(p));
    }

    #[test]
    fn a_directory_below_a_closed_one_is_out_of_reach() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().expect("tempdir");
        let open = tmp.path().join("open/instances");
        std::fs::create_dir_all(&open).expect("dirs");
        let mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod")
        };
        mode(tmp.path(), 0o755);
        mode(&tmp.path().join("open"), 0o711);
        assert_eq!(closed_to_others(&open), None);
        mode(&tmp.path().join("open"), 0o700);
        assert_eq!(closed_to_others(&open), Some(tmp.path().join("open")));
    }
}
