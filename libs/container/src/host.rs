//! The host as containers need it, behind one typed trait: mounts, ownership, process groups,
//! runc, and the network plumbing of a container. [`RealHost`] does it (tested for real, as
//! root); [`RecordingHost`] records each [`Op`] and fails those it is told to, so the logic
//! above is tested without root.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures::future::BoxFuture;

use crate::overlay::{self, Overlay};
use crate::runc::{self, State};
use crate::{disk, net};

/// A signal sent to a container's or a group's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    Term,
    Kill,
}

impl Signal {
    /// Its name as `kill` and runc take it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Term => "TERM",
            Self::Kill => "KILL",
        }
    }

    fn nix(self) -> nix::sys::signal::Signal {
        match self {
            Self::Term => nix::sys::signal::Signal::SIGTERM,
            Self::Kill => nix::sys::signal::Signal::SIGKILL,
        }
    }
}

/// One thing done to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    MountOverlay(Overlay),
    /// Lazily (`umount -l`).
    Unmount {
        target: PathBuf,
    },
    /// `chown -R -h`: the tree and every entry in it, symlinks themselves.
    ChownTree {
        dir: PathBuf,
        uid: u32,
        gid: u32,
    },
    /// `cp -a --reflink=auto from into/`.
    CopyTree {
        from: PathBuf,
        into: PathBuf,
    },
    KillGroup {
        pgid: u32,
        signal: Signal,
    },
    RuncKill {
        id: String,
        signal: Signal,
        all: bool,
    },
    /// `--force`.
    RuncDelete {
        id: String,
    },
    RuncList,
    /// The bridge with its address `gateway`/24, up (made if missing).
    AddBridge {
        name: String,
        gateway: Ipv4Addr,
    },
    /// IPv4 forwarding, and routing to loopback (port mappings answer on 127.0.0.1 too).
    EnableForwarding,
    /// The NAT and isolation tables (made anew): see [`net::ruleset`].
    InstallTables {
        table: String,
        bridge: String,
        subnet: Ipv4Addr,
    },
    RemoveTables {
        table: String,
    },
    DelLink {
        name: String,
    },
    /// A network namespace with a veth from the bridge into it (`eth0` inside).
    AddNetns {
        netns: String,
        host_veth: String,
        bridge: String,
    },
    /// `eth0` at `address`/24 and up, `lo` up, the default route via `gateway`.
    ConfigureNetns {
        netns: String,
        address: Ipv4Addr,
        gateway: Ipv4Addr,
    },
    /// The veth and the namespace, whichever of them exist.
    DelNetns {
        netns: String,
        host_veth: String,
    },
    MapPort {
        table: String,
        host_port: u16,
        address: Ipv4Addr,
        port: u16,
    },
    UnmapPort {
        table: String,
        host_port: u16,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MountOverlay(o) => write!(f, "mount overlay {}", o.target.display()),
            Self::Unmount { target } => write!(f, "unmount {}", target.display()),
            Self::ChownTree { dir, uid, gid } => write!(f, "chown {uid}:{gid} {}", dir.display()),
            Self::CopyTree { from, into } => {
                write!(f, "copy {} into {}", from.display(), into.display())
            }
            Self::KillGroup { pgid, signal } => write!(f, "kill -{} -{pgid}", signal.name()),
            Self::RuncKill { id, signal, .. } => write!(f, "runc kill {id} {}", signal.name()),
            Self::RuncDelete { id } => write!(f, "runc delete {id}"),
            Self::RuncList => write!(f, "runc list"),
            Self::AddBridge { name, .. } => write!(f, "bridge {name}"),
            Self::EnableForwarding => write!(f, "ip forwarding"),
            Self::InstallTables { table, .. } => write!(f, "nft tables {table}"),
            Self::RemoveTables { table } => write!(f, "nft delete tables {table}"),
            Self::DelLink { name } => write!(f, "ip link del {name}"),
            Self::AddNetns { netns, .. } => write!(f, "netns add {netns}"),
            Self::ConfigureNetns { netns, .. } => write!(f, "netns {netns} address and route"),
            Self::DelNetns { netns, .. } => write!(f, "netns del {netns}"),
            Self::MapPort { host_port, address, port, .. } => {
                write!(f, "map port {host_port} to {address}:{port}")
            }
            Self::UnmapPort { host_port, .. } => write!(f, "unmap port {host_port}"),
        }
    }
}

/// What went wrong doing something to the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {message}")]
pub struct HostError {
    pub op: String,
    pub message: String,
}

impl HostError {
    pub fn new(op: &str, message: impl fmt::Display) -> Self {
        Self { op: op.to_owned(), message: message.to_string() }
    }
}

/// The host, as containers need it.
pub trait Host: Send + Sync + 'static {
    /// Do `op`.
    fn apply(&self, op: Op) -> BoxFuture<'_, Result<(), HostError>>;

    /// Every container runc knows.
    fn runc_list(&self) -> BoxFuture<'_, Result<Vec<State>, HostError>>;

    fn mount_overlay(&self, overlay: Overlay) -> BoxFuture<'_, Result<(), HostError>> {
        self.apply(Op::MountOverlay(overlay))
    }

    fn unmount(&self, target: &Path) -> BoxFuture<'_, Result<(), HostError>> {
        self.apply(Op::Unmount { target: target.to_owned() })
    }

    fn chown_tree(&self, dir: &Path, uid: u32, gid: u32) -> BoxFuture<'_, Result<(), HostError>> {
        self.apply(Op::ChownTree { dir: dir.to_owned(), uid, gid })
    }

    fn copy_tree(&self, from: &Path, into: &Path) -> BoxFuture<'_, Result<(), HostError>> {
        self.apply(Op::CopyTree { from: from.to_owned(), into: into.to_owned() })
    }

    fn kill_group(&self, pgid: u32, signal: Signal) -> BoxFuture<'_, Result<(), HostError>> {
        self.apply(Op::KillGroup { pgid, signal })
    }

    /// `runc kill --all`: every process of the container.
    fn runc_kill_all(&self, id: &str, signal: Signal) -> BoxFuture<'_, Result<(), HostError>> {
        self.apply(Op::RuncKill { id: id.to_owned(), signal, all: true })
    }

    fn runc_delete(&self, id: &str) -> BoxFuture<'_, Result<(), HostError>> {
        self.apply(Op::RuncDelete { id: id.to_owned() })
    }
}

/// The real thing (most of it as root).
pub struct RealHost;

impl Host for RealHost {
    fn apply(&self, op: Op) -> BoxFuture<'_, Result<(), HostError>> {
        Box::pin(async move {
            let what = op.to_string();
            match op {
                Op::MountOverlay(o) => blocking(&what, move || o.mount()).await,
                Op::Unmount { target } => blocking(&what, move || overlay::unmount(&target)).await,
                Op::ChownTree { dir, uid, gid } => {
                    blocking(&what, move || chown_tree(&dir, uid, gid)).await
                }
                Op::CopyTree { from, into } => {
                    let (from, into) = (from.display().to_string(), into.display().to_string());
                    net::command("cp", &["-a", "--reflink=auto", &from, &into], "").await
                }
                Op::KillGroup { pgid, signal } => kill_group(pgid, signal),
                Op::RuncKill { id, signal, all } => runc::kill(&id, signal, all).await,
                Op::RuncDelete { id } => runc::delete(&id).await,
                Op::RuncList => runc::list().await.map(|_| ()),
                op @ (Op::AddBridge { .. }
                | Op::EnableForwarding
                | Op::InstallTables { .. }
                | Op::RemoveTables { .. }
                | Op::DelLink { .. }
                | Op::AddNetns { .. }
                | Op::ConfigureNetns { .. }
                | Op::DelNetns { .. }
                | Op::MapPort { .. }
                | Op::UnmapPort { .. }) => net::apply(op).await,
            }
        })
    }

    fn runc_list(&self) -> BoxFuture<'_, Result<Vec<State>, HostError>> {
        Box::pin(runc::list())
    }
}

async fn blocking<F>(what: &str, f: F) -> Result<(), HostError>
where
    F: FnOnce() -> std::io::Result<()> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HostError::new(what, e))?
        .map_err(|e| HostError::new(what, e))
}

/// `chown -R -h uid:gid dir` without the process: `dir` and everything below it, symlinks
/// themselves and never what they point to. Blocking.
pub fn chown_tree(dir: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    for entry in walkdir::WalkDir::new(dir).follow_links(false) {
        let entry = entry.map_err(std::io::Error::other)?;
        std::os::unix::fs::lchown(entry.path(), Some(uid), Some(gid))?;
    }
    Ok(())
}

/// Signal every process of group `pgid` (none left is not an error).
/// Send `signal` to the process group `pgid` at once (what [`Host::kill_group`] does on the
/// real host), for callers that cannot wait, such as a guard being dropped.
pub fn kill_group(pgid: u32, signal: Signal) -> Result<(), HostError> {
    let what = format!("kill -{} -{pgid}", signal.name());
    let pgid = i32::try_from(pgid).map_err(|e| HostError::new(&what, e))?;
    if pgid <= 1 {
        return Err(HostError::new(&what, "not a process group"));
    }
    match nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), signal.nix()) {
        Ok(()) => Ok(()),
        Err(e) => Err(HostError::new(&what, e)),
    }
}

/// Whether a recorded op should fail.
type Fault = Box<dyn Fn(&Op) -> bool + Send + Sync>;

/// Records every op and succeeds, except the ops a fault set with [`RecordingHost::fail_when`]
/// matches; `runc list` answers what [`RecordingHost::set_containers`] gave.
#[derive(Default)]
pub struct RecordingHost {
    ops: Mutex<Vec<Op>>,
    faults: Mutex<Vec<Fault>>,
    containers: Mutex<Vec<State>>,
}

impl RecordingHost {
    /// Every op so far, in order.
    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Fail every op `matches` picks, from now on.
    pub fn fail_when(&self, matches: impl Fn(&Op) -> bool + Send + Sync + 'static) {
        self.faults.lock().unwrap_or_else(|e| e.into_inner()).push(Box::new(matches));
    }

    /// Succeed again.
    pub fn clear_faults(&self) {
        self.faults.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub fn set_containers(&self, list: Vec<State>) {
        *self.containers.lock().unwrap_or_else(|e| e.into_inner()) = list;
    }

    fn record(&self, op: Op) -> Result<(), HostError> {
        let fail = self.faults.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|f| f(&op));
        let what = op.to_string();
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).push(op);
        if fail {
            Err(HostError::new(&what, "refused"))
        } else {
            Ok(())
        }
    }
}

impl Host for RecordingHost {
    fn apply(&self, op: Op) -> BoxFuture<'_, Result<(), HostError>> {
        let done = self.record(op);
        Box::pin(async move { done })
    }

    fn runc_list(&self) -> BoxFuture<'_, Result<Vec<State>, HostError>> {
        let done = self
            .record(Op::RuncList)
            .map(|()| self.containers.lock().unwrap_or_else(|e| e.into_inner()).clone());
        Box::pin(async move { done })
    }
}

/// Bytes allocated under `dir` (see [`disk::allocated_bytes`]), off the async threads.
pub async fn allocated_bytes(dir: PathBuf) -> u64 {
    tokio::task::spawn_blocking(move || disk::allocated_bytes(&dir)).await.unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_recording_host_records_and_fails_what_it_is_told_to() {
        let host = RecordingHost::default();
        host.fail_when(|op| matches!(op, Op::RuncDelete { id } if id == "b"));
        host.runc_delete("a").await.expect("a");
        let e = host.runc_delete("b").await.expect_err("b fails");
        assert_eq!(e.to_string(), "runc delete b: refused");
        host.clear_faults();
        host.runc_delete("b").await.expect("b again");
        host.kill_group(42, Signal::Term).await.expect("kill");
        assert_eq!(
            host.ops(),
            [
                Op::RuncDelete { id: "a".into() },
                Op::RuncDelete { id: "b".into() },
                Op::RuncDelete { id: "b".into() },
                Op::KillGroup { pgid: 42, signal: Signal::Term },
            ]
        );
        assert!(host.runc_list().await.expect("list").is_empty());
    }

    #[test]
    fn chown_tree_changes_the_tree_and_symlinks_themselves() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("t");
        std::fs::create_dir_all(root.join("a/b")).expect("dirs");
        std::fs::write(root.join("a/b/f"), "x").expect("file");
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "y").expect("outside");
        std::os::unix::fs::symlink(&outside, root.join("link")).expect("link");
        let me = std::fs::metadata(&root).expect("meta");
        // Only root may give files away; anyone may "change" them to their own ids.
        let root_user = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
        let (uid, gid) = if root_user { (2000, 2000) } else { (me.uid(), me.gid()) };
        chown_tree(&root, uid, gid).expect("chown");
        for p in [root.clone(), root.join("a/b"), root.join("a/b/f")] {
            let m = std::fs::metadata(&p).expect("meta");
            assert_eq!((m.uid(), m.gid()), (uid, gid), "{}", p.display());
        }
        let link = std::fs::symlink_metadata(root.join("link")).expect("link meta");
        assert_eq!((link.uid(), link.gid()), (uid, gid));
        let target = std::fs::metadata(&outside).expect("outside meta");
        assert_eq!(
            (target.uid(), target.gid()),
            (me.uid(), me.gid()),
            "the link's target untouched"
        );
    }

    #[tokio::test]
    async fn kill_group_signals_a_whole_group() {
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30"])
            .process_group(0)
            .spawn()
            .expect("spawn");
        let pgid = child.id().expect("pid");
        RealHost.kill_group(pgid, Signal::Kill).await.expect("kill");
        let status = child.wait().await.expect("wait");
        assert!(!status.success());
        assert!(RealHost.kill_group(1, Signal::Term).await.is_err(), "never pid 1's group");
    }
}
