//! The OCI runtime spec (`config.json`) of a container, built with `oci-spec`: the pieces the
//! staging and the app containers share (standard mounts, bind and tmpfs mounts, namespaces,
//! limits, a locked-down process) and [`ContainerSpec`], which puts them together.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    get_default_mounts, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder, Mount,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, Process, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder,
};
pub use oci_spec::OciSpecError;

/// Which standard mounts a container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountSet {
    /// The runtime-spec defaults: /proc, a minimal /dev (pts, shm, mqueue), /sys and its
    /// cgroups read-only.
    Standard,
    /// The defaults without /dev/mqueue and without the tty group on /dev/pts, as the staging
    /// container has always had them.
    Staging,
}

/// The standard mounts of `set`.
pub fn standard_mounts(set: MountSet) -> Vec<Mount> {
    let mut mounts = get_default_mounts();
    if set == MountSet::Staging {
        mounts.retain(|m| m.destination() != Path::new("/dev/mqueue"));
        for m in &mut mounts {
            if m.destination() == Path::new("/dev/pts") {
                let options = m.options().clone().unwrap_or_default();
                m.set_options(Some(options.into_iter().filter(|o| o != "gid=5").collect()));
            }
        }
    }
    mounts
}

/// A bind mount of host `src` at `dest`, `rbind,nosuid,nodev` and `ro` or `rw`.
pub fn bind(dest: &str, src: &Path, ro: bool) -> Result<Mount, OciSpecError> {
    let access = if ro { "ro" } else { "rw" };
    let options = ["rbind", "nosuid", "nodev", access].map(str::to_owned).to_vec();
    MountBuilder::default().destination(dest).typ("bind").source(src).options(options).build()
}

/// A tmpfs at `dest` with `options`.
pub fn tmpfs(dest: &str, options: &[&str]) -> Result<Mount, OciSpecError> {
    MountBuilder::default()
        .destination(dest)
        .typ("tmpfs")
        .source("tmpfs")
        .options(options.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
        .build()
}

/// The network a container is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Net {
    /// The host's (no network namespace of its own).
    Host,
    /// The namespace at this path (`/var/run/netns/<name>`).
    Namespace(String),
}

/// The cgroup limits of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Memory, and memory plus swap (no swap).
    pub memory_bytes: u64,
    pub pids: i64,
    /// CPU shares (cgroup v1), when set.
    pub cpu_shares: Option<u64>,
}

/// What runs in a container: always unprivileged, without capabilities or new privileges, with
/// at most 16384 open files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
}

/// Everything that makes one container's `config.json`.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub rootfs: PathBuf,
    pub readonly_root: bool,
    pub hostname: String,
    pub command: Command,
    /// All mounts, in order (usually [`standard_mounts`] first).
    pub mounts: Vec<Mount>,
    pub net: Net,
    pub cgroups_path: PathBuf,
    pub limits: Limits,
}

/// Paths the container may not read.
const MASKED: [&str; 4] = ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"];
/// Paths the container may only read.
const READONLY: [&str; 5] =
    ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

impl ContainerSpec {
    /// The runtime spec: own PID/mount/UTS/IPC namespaces (and network, unless [`Net::Host`]),
    /// no devices, the limits, masked and read-only kernel paths.
    pub fn build(&self) -> Result<Spec, OciSpecError> {
        let linux = LinuxBuilder::default()
            .namespaces(namespaces(&self.net)?)
            .cgroups_path(self.cgroups_path.clone())
            .resources(resources(&self.limits)?)
            .masked_paths(MASKED.map(str::to_owned).to_vec())
            .readonly_paths(READONLY.map(str::to_owned).to_vec())
            .build()?;
        let root = RootBuilder::default()
            .path(self.rootfs.clone())
            .readonly(self.readonly_root)
            .build()?;
        SpecBuilder::default()
            .version("1.0.2")
            .root(root)
            .hostname(self.hostname.clone())
            .mounts(self.mounts.clone())
            .process(process(&self.command)?)
            .linux(linux)
            .build()
    }

    /// Writes `config.json` into `bundle` (made if missing).
    pub fn write_bundle(&self, bundle: &Path) -> std::io::Result<()> {
        let spec = self.build().map_err(std::io::Error::other)?;
        std::fs::create_dir_all(bundle)?;
        let body = serde_json::to_vec_pretty(&spec).map_err(std::io::Error::other)?;
        std::fs::write(bundle.join("config.json"), body)
    }
}

fn process(c: &Command) -> Result<Process, OciSpecError> {
    let none = HashSet::new();
    let caps = LinuxCapabilitiesBuilder::default()
        .bounding(none.clone())
        .effective(none.clone())
        .inheritable(none.clone())
        .permitted(none.clone())
        .ambient(none)
        .build()?;
    let nofile = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(16384u64)
        .soft(16384u64)
        .build()?;
    ProcessBuilder::default()
        .terminal(false)
        .user(UserBuilder::default().uid(c.uid).gid(c.gid).build()?)
        .args(c.args.clone())
        .env(c.env.clone())
        .cwd(c.cwd.clone())
        .capabilities(caps)
        .no_new_privileges(true)
        .rlimits(vec![nofile])
        .build()
}

fn namespaces(net: &Net) -> Result<Vec<LinuxNamespace>, OciSpecError> {
    let ns = |t: LinuxNamespaceType| LinuxNamespaceBuilder::default().typ(t).build();
    let mut list = vec![
        ns(LinuxNamespaceType::Pid)?,
        ns(LinuxNamespaceType::Mount)?,
        ns(LinuxNamespaceType::Uts)?,
        ns(LinuxNamespaceType::Ipc)?,
    ];
    if let Net::Namespace(path) = net {
        list.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .path(path.clone())
                .build()?,
        );
    }
    Ok(list)
}

fn resources(l: &Limits) -> Result<LinuxResources, OciSpecError> {
    let memory = i64::try_from(l.memory_bytes).unwrap_or(i64::MAX);
    let mut r = LinuxResourcesBuilder::default()
        .devices(vec![LinuxDeviceCgroupBuilder::default().allow(false).access("rwm").build()?])
        .memory(LinuxMemoryBuilder::default().limit(memory).swap(memory).build()?)
        .pids(LinuxPidsBuilder::default().limit(l.pids).build()?);
    if let Some(shares) = l.cpu_shares {
        r = r.cpu(LinuxCpuBuilder::default().shares(shares).build()?);
    }
    r.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn spec(net: Net, cpu_shares: Option<u64>) -> Value {
        let s = ContainerSpec {
            rootfs: "/r".into(),
            readonly_root: true,
            hostname: "h".into(),
            command: Command {
                args: vec!["/bin/sh".into()],
                env: vec!["A=1".into()],
                cwd: "/w".into(),
                uid: 2000,
                gid: 2000,
            },
            mounts: standard_mounts(MountSet::Standard),
            net,
            cgroups_path: "/paas/x".into(),
            limits: Limits { memory_bytes: 256 << 20, pids: 1024, cpu_shares },
        };
        serde_json::to_value(s.build().expect("spec")).expect("json")
    }

    #[test]
    fn the_process_is_unprivileged() {
        let s = spec(Net::Host, None);
        let p = &s["process"];
        assert_eq!(p["user"], json!({"uid": 2000, "gid": 2000}));
        assert_eq!(
            (&p["args"], &p["env"], &p["cwd"]),
            (&json!(["/bin/sh"]), &json!(["A=1"]), &json!("/w"))
        );
        assert_eq!(p["terminal"], false);
        assert_eq!(p["noNewPrivileges"], true);
        for set in ["bounding", "effective", "inheritable", "permitted", "ambient"] {
            assert_eq!(p["capabilities"][set], json!([]), "{set}");
        }
        assert_eq!(p["rlimits"], json!([{"type": "RLIMIT_NOFILE", "hard": 16384, "soft": 16384}]));
        assert_eq!(s["ociVersion"], "1.0.2");
        assert_eq!(s["root"], json!({"path": "/r", "readonly": true}));
        assert_eq!(s["hostname"], "h");
    }

    #[test]
    fn namespaces_limits_and_kernel_paths() {
        let s = spec(Net::Host, None);
        let l = &s["linux"];
        let types = json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}]);
        assert_eq!(l["namespaces"], types);
        assert_eq!(l["cgroupsPath"], "/paas/x");
        assert_eq!(
            l["resources"],
            json!({"devices": [{"allow": false, "access": "rwm"}],
                   "memory": {"limit": 256 << 20, "swap": 256 << 20},
                   "pids": {"limit": 1024}})
        );
        assert_eq!(l["maskedPaths"], json!(MASKED));
        assert_eq!(l["readonlyPaths"], json!(READONLY));
        let s = spec(Net::Namespace("/var/run/netns/n".into()), Some(256));
        assert_eq!(
            s["linux"]["namespaces"][4],
            json!({"type": "network", "path": "/var/run/netns/n"})
        );
        assert_eq!(s["linux"]["resources"]["cpu"], json!({"shares": 256}));
    }

    #[test]
    fn standard_mounts_for_apps_and_for_staging() {
        let dests = |set| -> Vec<String> {
            standard_mounts(set).iter().map(|m| m.destination().display().to_string()).collect()
        };
        assert_eq!(
            dests(MountSet::Standard),
            ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]
        );
        assert_eq!(
            dests(MountSet::Staging),
            ["/proc", "/dev", "/dev/pts", "/dev/shm", "/sys", "/sys/fs/cgroup"]
        );
        let staging = serde_json::to_value(standard_mounts(MountSet::Staging)).expect("json");
        assert_eq!(
            staging,
            json!([
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                 "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                 "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            ])
        );
        let standard = serde_json::to_value(standard_mounts(MountSet::Standard)).expect("json");
        assert_eq!(standard[2]["options"][5], "gid=5");
        assert_eq!(standard[5]["options"][3], "ro", "/sys read-only");
        assert_eq!(standard[6]["options"][4], "ro", "cgroups read-only");
    }

    #[test]
    fn bind_and_tmpfs_mounts() {
        let b = serde_json::to_value(bind("/in", Path::new("/out"), true).expect("bind"));
        assert_eq!(
            b.expect("json"),
            json!({"destination": "/in", "type": "bind", "source": "/out",
                   "options": ["rbind", "nosuid", "nodev", "ro"]})
        );
        let rw = bind("/in", Path::new("/out"), false).expect("bind");
        assert_eq!(rw.options().as_deref().and_then(|o| o.last()).map(String::as_str), Some("rw"));
        let t = serde_json::to_value(tmpfs("/tmp", &["nosuid", "mode=1777"]).expect("tmpfs"));
        assert_eq!(
            t.expect("json"),
            json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "mode=1777"]})
        );
    }

    #[test]
    fn a_bundle_holds_config_json() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = ContainerSpec {
            rootfs: "/r".into(),
            readonly_root: false,
            hostname: "h".into(),
            command: Command { args: vec![], env: vec![], cwd: "/".into(), uid: 0, gid: 0 },
            mounts: vec![],
            net: Net::Host,
            cgroups_path: "/c".into(),
            limits: Limits { memory_bytes: 1, pids: 1, cpu_shares: None },
        };
        s.write_bundle(&dir.path().join("bundle")).expect("write");
        let text = std::fs::read_to_string(dir.path().join("bundle/config.json")).expect("read");
        let v: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["root"]["readonly"], false);
    }
}
