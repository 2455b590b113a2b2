//! One app container: an overlay root (droplet layer over the stack, with its own writable
//! upper layer), an OCI runtime spec built with `oci-spec`, and `runc run` as a child whose
//! stdout and stderr are the app's output; and the runc backend that makes one per instance.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use oci_spec::runtime::{
    get_default_mounts, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder,
    PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use oci_spec::OciSpecError;

use crate::backend::Launch;
use crate::net::{Attachment, Network};
use crate::os::{args, Os, OsError};

/// Everything that makes one container.
#[derive(Debug, Clone)]
pub struct ContainerPlan {
    /// runc container id.
    pub id: String,
    /// Instance directory: `bundle/`, `upper/`, `work/`, `rootfs/`, `launcher`.
    pub dir: PathBuf,
    pub droplet_layer: PathBuf,
    pub stack_rootfs: PathBuf,
    pub netns_path: String,
    /// The container's address (its `/etc/hosts` names it).
    pub address: Ipv4Addr,
    pub env: Vec<String>,
    pub start_command: String,
    pub memory_mb: u64,
    pub pids: i64,
    /// Host CA bundle mounted over the stack's (egress through a TLS proxy).
    pub ca_file: Option<PathBuf>,
}

/// The short name of an instance on this cell (its directory and network namespace).
pub fn short_id(instance_guid: &str) -> String {
    instance_guid.chars().filter(char::is_ascii_alphanumeric).take(12).collect()
}

/// The runc container id (and cgroup name) of an instance.
pub fn container_id(instance_guid: &str) -> String {
    format!("paas-{}", short_id(instance_guid))
}

impl ContainerPlan {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }

    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    /// The container's host name (its id, at most 63 characters).
    pub fn hostname(&self) -> String {
        self.id.chars().take(63).collect()
    }

    /// `/etc/hosts` of the container: localhost and its own name, so resolving its own host
    /// name (Python's `http.server` does at start) never waits for DNS.
    pub fn hosts(&self) -> String {
        format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{}\t{}\n",
            self.address,
            self.hostname()
        )
    }

    /// The memory cgroup (v1) runc makes for this container.
    pub fn memory_cgroup(&self) -> PathBuf {
        PathBuf::from("/sys/fs/cgroup/memory/paas").join(&self.id)
    }
}

/// PID 1 of the container: the kernel gives PID 1 no default signal actions, so an app run
/// as PID 1 would ignore SIGTERM. This shim starts the launcher as its child, forwards TERM and
/// INT to it, reaps it and exits with its status.
pub const INIT_SHIM: &str = "\"$0\" \"$1\" & child=$!; \
trap 'kill -TERM $child 2>/dev/null' TERM; trap 'kill -INT $child 2>/dev/null' INT; \
wait $child; status=$?; \
while kill -0 $child 2>/dev/null; do wait $child; status=$?; done; \
exit $status";

fn bind(dest: &str, src: &Path, ro: bool) -> Result<Mount, OciSpecError> {
    let mut options = vec!["rbind".to_owned(), "nosuid".to_owned(), "nodev".to_owned()];
    options.push(if ro { "ro" } else { "rw" }.to_owned());
    MountBuilder::default().destination(dest).typ("bind").source(src).options(options).build()
}

/// The runtime spec: own PID/mount/UTS/IPC/network namespaces, read-only /sys, minimal /dev,
/// the launcher, user vcap, no capabilities, no new privileges, memory/cpu/pids limits.
pub fn spec(p: &ContainerPlan) -> Result<Spec, OciSpecError> {
    let mut mounts: Vec<Mount> = get_default_mounts()
        .into_iter()
        .map(|mut m| {
            if m.destination() == Path::new("/sys")
                || m.destination() == Path::new("/sys/fs/cgroup")
            {
                let mut o = m.options().clone().unwrap_or_default();
                if !o.iter().any(|x| x == "ro") {
                    o.push("ro".into());
                }
                m.set_options(Some(o));
            }
            m
        })
        .collect();
    mounts.push(bind(stack::LAUNCHER_PATH, &p.dir.join("launcher"), true)?);
    mounts.push(bind("/etc/resolv.conf", Path::new("/etc/resolv.conf"), true)?);
    mounts.push(bind("/etc/hosts", &p.dir.join("hosts"), true)?);
    if let Some(ca) = &p.ca_file {
        mounts.push(bind("/etc/ssl/certs/ca-certificates.crt", ca, true)?);
    }
    let none = HashSet::new();
    let caps = LinuxCapabilitiesBuilder::default()
        .bounding(none.clone())
        .effective(none.clone())
        .inheritable(none.clone())
        .permitted(none.clone())
        .ambient(none)
        .build()?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(UserBuilder::default().uid(stack::VCAP_UID).gid(stack::VCAP_GID).build()?)
        .args(vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            INIT_SHIM.to_owned(),
            stack::LAUNCHER_PATH.to_owned(),
            p.start_command.clone(),
        ])
        .env(p.env.clone())
        .cwd("/home/vcap/app")
        .capabilities(caps)
        .no_new_privileges(true)
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .hard(16384u64)
            .soft(16384u64)
            .build()?])
        .build()?;
    let ns = |t: LinuxNamespaceType| LinuxNamespaceBuilder::default().typ(t).build();
    let network = LinuxNamespaceBuilder::default()
        .typ(LinuxNamespaceType::Network)
        .path(p.netns_path.clone())
        .build()?;
    let memory = i64::try_from(p.memory_mb.saturating_mul(1 << 20)).unwrap_or(i64::MAX);
    let shares = p.memory_mb.clamp(2, 262_144);
    let resources = LinuxResourcesBuilder::default()
        .devices(vec![LinuxDeviceCgroupBuilder::default().allow(false).access("rwm").build()?])
        .memory(LinuxMemoryBuilder::default().limit(memory).swap(memory).build()?)
        .cpu(LinuxCpuBuilder::default().shares(shares).build()?)
        .pids(LinuxPidsBuilder::default().limit(p.pids).build()?)
        .build()?;
    let linux = LinuxBuilder::default()
        .namespaces(vec![
            ns(LinuxNamespaceType::Pid)?,
            ns(LinuxNamespaceType::Mount)?,
            ns(LinuxNamespaceType::Uts)?,
            ns(LinuxNamespaceType::Ipc)?,
            network,
        ])
        .cgroups_path(PathBuf::from("/paas").join(&p.id))
        .resources(resources)
        .masked_paths(vec![
            "/proc/kcore".into(),
            "/proc/keys".into(),
            "/proc/timer_list".into(),
            "/sys/firmware".into(),
        ])
        .readonly_paths(vec![
            "/proc/bus".into(),
            "/proc/fs".into(),
            "/proc/irq".into(),
            "/proc/sys".into(),
            "/proc/sysrq-trigger".into(),
        ])
        .build()?;
    SpecBuilder::default()
        .version("1.0.2")
        .root(RootBuilder::default().path(p.rootfs()).readonly(false).build()?)
        .hostname(p.hostname())
        .mounts(mounts)
        .process(process)
        .linux(linux)
        .build()
}

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Os(#[from] OsError),
    #[error("container spec: {0}")]
    Spec(#[from] OciSpecError),
    #[error("container directory: {0}")]
    Io(#[from] std::io::Error),
}

/// Prepare the bundle and the overlay root.
pub async fn prepare(os: &dyn Os, p: &ContainerPlan) -> Result<(), ContainerError> {
    for d in [p.bundle(), p.upper(), p.dir.join("work"), p.rootfs()] {
        tokio::fs::create_dir_all(&d).await?;
    }
    tokio::fs::write(p.dir.join("launcher"), stack::LAUNCHER).await?;
    tokio::fs::write(p.dir.join("hosts"), p.hosts()).await?;
    set_mode(&p.dir.join("launcher"), 0o755)?;
    let opts = format!(
        "lowerdir={}:{},upperdir={},workdir={}",
        p.droplet_layer.display(),
        p.stack_rootfs.display(),
        p.upper().display(),
        p.dir.join("work").display()
    );
    let rootfs = p.rootfs().display().to_string();
    os.run("mount", &args(&["-t", "overlay", "overlay", "-o", &opts, &rootfs])).await?;
    let body = serde_json::to_vec_pretty(&spec(p)?).map_err(std::io::Error::other)?;
    tokio::fs::write(p.bundle().join("config.json"), body).await?;
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// `runc run` in the foreground: the child's exit status is the app's. `--keep` leaves the
/// stopped container (and its cgroups, with their OOM counts) until [`destroy`]; runc writes
/// the pid file once the app's process runs ([`started`]).
pub fn run(p: &ContainerPlan) -> std::io::Result<tokio::process::Child> {
    tokio::process::Command::new("runc")
        .arg("run")
        .arg("--keep")
        .arg("--pid-file")
        .arg(p.dir.join("pid"))
        .arg("--bundle")
        .arg(p.bundle())
        .arg(&p.id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

/// Whether the container's process has started (runc wrote its pid file).
pub fn started(p: &ContainerPlan) -> bool {
    p.dir.join("pid").exists()
}

/// Send a signal to every process of the container.
pub async fn signal(os: &dyn Os, id: &str, signal: &str) -> Result<(), OsError> {
    os.run("runc", &args(&["kill", "--all", id, signal])).await.map(|_| ())
}

/// Remove the container, its mount and its directory; safe on a half-made container.
pub async fn destroy(os: &dyn Os, p: &ContainerPlan) {
    let _ = os.run("runc", &args(&["delete", "--force", &p.id])).await;
    let rootfs = p.rootfs().display().to_string();
    let _ = os.run("umount", &args(&["-l", &rootfs])).await;
    let _ = tokio::fs::remove_dir_all(&p.dir).await;
}

/// Out-of-memory kills so far in the container's memory cgroup (still there after the
/// container stopped, until [`destroy`]).
pub fn oom_kills(p: &ContainerPlan) -> u64 {
    std::fs::read_to_string(p.memory_cgroup().join("memory.oom_control"))
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| l.strip_prefix("oom_kill ").and_then(|v| v.trim().parse().ok()))
        })
        .unwrap_or(0)
}

/// The runc backend: what every container of this cell shares.
pub struct Runc {
    pub os: Arc<dyn Os>,
    pub net: Arc<Network>,
    pub stack_rootfs: PathBuf,
    /// Host CA bundle mounted over the stack's.
    pub ca_file: Option<PathBuf>,
}

impl Runc {
    /// The bridge and tables, then whatever a crashed run of this cell left removed.
    pub async fn start(&self, instances: &Path) -> Result<(), OsError> {
        self.net.setup().await?;
        self.clean_leftovers(instances).await;
        Ok(())
    }

    /// Containers, mounts, network namespaces and veths a previous run of this cell left
    /// (after a crash): removed, so nothing is orphaned. Port mappings go with the tables
    /// [`Network::setup`] remakes.
    async fn clean_leftovers(&self, instances: &Path) {
        let os = self.os.as_ref();
        // Only containers whose bundle lives under this cell's directory: other cells may
        // share the host.
        if let Ok(list) = os.run("runc", &args(&["list", "-f", "json"])).await {
            let entries: Vec<serde_json::Value> = serde_json::from_str(&list).unwrap_or_default();
            for e in entries {
                let (Some(id), Some(bundle)) = (e["id"].as_str(), e["bundle"].as_str()) else {
                    continue;
                };
                if Path::new(bundle).starts_with(instances) {
                    let _ = os.run("runc", &args(&["delete", "--force", id])).await;
                }
            }
        }
        if let Ok(mut dir) = tokio::fs::read_dir(instances).await {
            while let Ok(Some(e)) = dir.next_entry().await {
                let rootfs = e.path().join("rootfs").display().to_string();
                let _ = os.run("umount", &args(&["-l", &rootfs])).await;
                // The instance directory is named by the container's id, like its namespace.
                if let Some(id) = e.file_name().to_str() {
                    self.net.sweep(id).await;
                }
                let _ = tokio::fs::remove_dir_all(e.path()).await;
            }
        }
    }

    /// The network step: a namespace, veth, address and mapped host port.
    pub async fn place(&self, dir: PathBuf, short: &str) -> Result<RuncSandbox, OsError> {
        let att = self.net.attach(short).await?;
        Ok(RuncSandbox {
            os: self.os.clone(),
            net: self.net.clone(),
            stack_rootfs: self.stack_rootfs.clone(),
            ca_file: self.ca_file.clone(),
            dir,
            att,
            plan: None,
        })
    }
}

/// One instance's container: its network attachment, then its plan once prepared.
pub struct RuncSandbox {
    os: Arc<dyn Os>,
    net: Arc<Network>,
    stack_rootfs: PathBuf,
    ca_file: Option<PathBuf>,
    pub dir: PathBuf,
    pub att: Attachment,
    pub plan: Option<ContainerPlan>,
}

impl RuncSandbox {
    /// The bundle and the overlay root of the container.
    pub async fn prepare(
        &mut self,
        launch: &Launch,
        env: Vec<String>,
    ) -> Result<(), ContainerError> {
        let plan = ContainerPlan {
            id: container_id(&launch.instance_guid),
            dir: self.dir.clone(),
            droplet_layer: launch.layer.clone(),
            stack_rootfs: self.stack_rootfs.clone(),
            netns_path: self.att.netns_path(),
            address: self.att.ip,
            env,
            start_command: launch.start_command.clone(),
            memory_mb: launch.memory_mb,
            pids: if launch.max_pids > 0 { i64::from(launch.max_pids) } else { 1024 },
            ca_file: self.ca_file.clone(),
        };
        prepare(self.os.as_ref(), self.plan.insert(plan)).await
    }

    pub fn spawn(&self) -> std::io::Result<tokio::process::Child> {
        match &self.plan {
            Some(p) => run(p),
            None => Err(std::io::Error::other("container not prepared")),
        }
    }

    pub fn started(&self) -> bool {
        self.plan.as_ref().is_some_and(started)
    }

    pub async fn signal(&self, sig: &str) -> bool {
        match &self.plan {
            Some(p) => signal(self.os.as_ref(), &p.id, sig).await.is_ok(),
            None => false,
        }
    }

    pub fn out_of_memory(&self) -> bool {
        self.plan.as_ref().is_some_and(|p| oom_kills(p) > 0)
    }

    /// `memory.usage_in_bytes` of the container's cgroup.
    pub fn memory_bytes(&self) -> u64 {
        let Some(p) = &self.plan else { return 0 };
        read_number(&p.memory_cgroup().join("memory.usage_in_bytes")).unwrap_or(0)
    }

    /// `cpuacct.usage` of the container's cgroup.
    pub fn cpu_ns(&self) -> Option<u64> {
        let p = self.plan.as_ref()?;
        read_number(&PathBuf::from("/sys/fs/cgroup/cpuacct/paas").join(&p.id).join("cpuacct.usage"))
    }

    /// Remove the container (if it was made) and its network.
    pub async fn release(self) {
        if let Some(p) = &self.plan {
            destroy(self.os.as_ref(), p).await;
        }
        self.net.detach(&self.att).await;
    }
}

fn read_number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> ContainerPlan {
        ContainerPlan {
            id: "p-0-abc".into(),
            dir: "/var/lib/paas/cell/instances/abc".into(),
            droplet_layer: "/l".into(),
            stack_rootfs: "/s".into(),
            netns_path: "/var/run/netns/paas-abc".into(),
            address: Ipv4Addr::new(10, 254, 0, 7),
            env: vec!["PORT=8080".into()],
            start_command: "python3 -m http.server $PORT".into(),
            memory_mb: 256,
            pids: 1024,
            ca_file: None,
        }
    }

    #[test]
    fn spec_is_locked_down() {
        let s = serde_json::to_value(spec(&plan()).expect("spec")).expect("json");
        assert_eq!(s["process"]["user"]["uid"], 2000);
        assert_eq!(s["process"]["noNewPrivileges"], true);
        assert_eq!(s["process"]["capabilities"]["bounding"], serde_json::json!([]));
        assert_eq!(s["process"]["args"][3], stack::LAUNCHER_PATH);
        assert_eq!(s["process"]["args"][4], "python3 -m http.server $PORT");
        assert_eq!(s["linux"]["resources"]["memory"]["limit"], 256 << 20);
        assert_eq!(s["linux"]["resources"]["pids"]["limit"], 1024);
        let ns = s["linux"]["namespaces"].as_array().expect("namespaces");
        assert!(ns
            .iter()
            .any(|n| n["type"] == "network" && n["path"] == "/var/run/netns/paas-abc"));
        assert!(ns.iter().any(|n| n["type"] == "pid"));
        let sys = s["mounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .find(|m| m["destination"] == "/sys")
            .cloned();
        assert!(sys.expect("/sys")["options"].as_array().expect("opts").iter().any(|o| o == "ro"));
    }

    #[tokio::test]
    async fn prepare_mounts_an_overlay_of_droplet_over_stack() {
        let os = crate::os::RecordingOs::default();
        let dir = tempfile::tempdir().expect("tempdir");
        let p = ContainerPlan { dir: dir.path().join("i"), ..plan() };
        prepare(&os, &p).await.expect("prepare");
        let calls = os.calls();
        assert!(
            calls[0].starts_with("mount -t overlay overlay -o lowerdir=/l:/s,upperdir="),
            "{calls:?}"
        );
        assert!(p.bundle().join("config.json").exists());
        let hosts = std::fs::read_to_string(p.dir.join("hosts")).expect("hosts");
        assert!(hosts.lines().any(|l| l == "10.254.0.7\tp-0-abc"), "{hosts}");
        destroy(&os, &p).await;
        assert!(!p.dir.exists());
    }
}
