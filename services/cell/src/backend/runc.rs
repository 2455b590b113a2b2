//! One app container: an overlay root (droplet layer over the stack, with its own writable
//! upper layer), an OCI runtime spec built with `oci-spec`, and `runc run` as a child whose
//! stdout and stderr are the app's output; and the runc backend that makes one per instance.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::container::spec::{self, ContainerSpec, Limits, MountSet, Net, OciSpecError};
use ::container::{runc, Host, HostError, Overlay, Signal};

use super::{DockerRun, Launch};
use crate::net::{Attachment, Network};

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
    /// A docker image's root and process instead of the droplet, stack and launcher.
    pub docker: Option<DockerRun>,
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

    /// The container's root: the droplet layer over the stack, with its own upper layer.
    pub fn overlay(&self) -> Overlay {
        let lower = match &self.docker {
            Some(d) => vec![d.rootfs.clone()],
            None => vec![self.droplet_layer.clone(), self.stack_rootfs.clone()],
        };
        Overlay { lower, upper: self.upper(), work: self.dir.join("work"), target: self.rootfs() }
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

/// The runtime spec: own PID/mount/UTS/IPC/network namespaces, read-only /sys, minimal /dev,
/// the launcher, user vcap, no capabilities, no new privileges, memory/cpu/pids limits.
pub fn spec(p: &ContainerPlan) -> Result<ContainerSpec, OciSpecError> {
    let mut mounts = spec::standard_mounts(MountSet::Standard);
    if p.docker.is_none() {
        mounts.push(spec::bind(stack::LAUNCHER_PATH, &p.dir.join("launcher"), true)?);
    }
    mounts.push(spec::bind("/etc/resolv.conf", Path::new("/etc/resolv.conf"), true)?);
    mounts.push(spec::bind("/etc/hosts", &p.dir.join("hosts"), true)?);
    if let Some(ca) = &p.ca_file {
        mounts.push(spec::bind("/etc/ssl/certs/ca-certificates.crt", ca, true)?);
    }
    let command = match &p.docker {
        // The image's process is PID 1, as under Docker.
        Some(d) => spec::Command {
            args: d.args.clone(),
            env: p.env.clone(),
            cwd: d.cwd.clone(),
            uid: d.uid,
            gid: d.gid,
        },
        None => spec::Command {
            args: ["/bin/sh", "-c", INIT_SHIM, stack::LAUNCHER_PATH, &p.start_command]
                .map(str::to_owned)
                .to_vec(),
            env: p.env.clone(),
            cwd: "/home/vcap/app".into(),
            uid: stack::VCAP_UID,
            gid: stack::VCAP_GID,
        },
    };
    Ok(ContainerSpec {
        rootfs: p.rootfs(),
        readonly_root: false,
        hostname: p.hostname(),
        command,
        mounts,
        net: Net::Namespace(p.netns_path.clone()),
        cgroups_path: PathBuf::from("/paas").join(&p.id),
        limits: Limits {
            memory_bytes: p.memory_mb.saturating_mul(1 << 20),
            pids: p.pids,
            cpu_shares: Some(p.memory_mb.clamp(2, 262_144)),
        },
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("container spec: {0}")]
    Spec(#[from] OciSpecError),
    #[error("container directory: {0}")]
    Io(#[from] std::io::Error),
}

/// Prepare the bundle and the overlay root.
pub async fn prepare(host: &dyn Host, p: &ContainerPlan) -> Result<(), ContainerError> {
    for d in [p.bundle(), p.upper(), p.dir.join("work"), p.rootfs()] {
        tokio::fs::create_dir_all(&d).await?;
    }
    tokio::fs::write(p.dir.join("launcher"), stack::LAUNCHER).await?;
    tokio::fs::write(p.dir.join("hosts"), p.hosts()).await?;
    set_mode(&p.dir.join("launcher"), 0o755)?;
    host.mount_overlay(p.overlay()).await?;
    spec(p)?.write_bundle(&p.bundle())?;
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
    let run = runc::Run {
        id: p.id.clone(),
        bundle: p.bundle(),
        keep: true,
        pid_file: Some(p.dir.join("pid")),
        kill_on_drop: false,
    };
    run.spawn()
}

/// Whether the container's process has started (runc wrote its pid file).
pub fn started(p: &ContainerPlan) -> bool {
    p.dir.join("pid").exists()
}

/// Send a signal to every process of the container.
pub async fn signal(host: &dyn Host, id: &str, signal: Signal) -> Result<(), HostError> {
    host.runc_kill_all(id, signal).await
}

/// Remove the container, its mount and its directory; safe on a half-made container.
pub async fn destroy(host: &dyn Host, p: &ContainerPlan) {
    let _ = host.runc_delete(&p.id).await;
    let _ = host.unmount(&p.rootfs()).await;
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
    pub host: Arc<dyn Host>,
    pub net: Arc<Network>,
    /// Where the stacks are (`<stacks_dir>/<name>/rootfs`): each instance runs on its own.
    pub stacks_dir: PathBuf,
    /// Host CA bundle mounted over the stack's.
    pub ca_file: Option<PathBuf>,
}

impl Runc {
    /// The bridge and tables, then whatever a crashed run of this cell left removed.
    pub async fn start(&self, instances: &Path) -> Result<(), HostError> {
        self.net.setup().await?;
        self.clean_leftovers(instances).await;
        Ok(())
    }

    /// Containers, mounts, network namespaces and veths a previous run of this cell left
    /// (after a crash): removed, so nothing is orphaned. Port mappings go with the tables
    /// [`Network::setup`] remakes.
    async fn clean_leftovers(&self, instances: &Path) {
        let host = self.host.as_ref();
        // Only containers whose bundle lives under this cell's directory: other cells may
        // share the host.
        if let Ok(list) = host.runc_list().await {
            for c in runc::under(&list, instances) {
                let _ = host.runc_delete(&c.id).await;
            }
        }
        if let Ok(mut dir) = tokio::fs::read_dir(instances).await {
            while let Ok(Some(e)) = dir.next_entry().await {
                let _ = host.unmount(&e.path().join("rootfs")).await;
                // The instance directory is named by the container's id, like its namespace.
                if let Some(id) = e.file_name().to_str() {
                    self.net.sweep(id).await;
                }
                let _ = tokio::fs::remove_dir_all(e.path()).await;
            }
        }
    }

    /// The network step: a namespace, veth, address and mapped host port.
    pub async fn place(
        &self,
        dir: PathBuf,
        short: &str,
        app_port: u16,
    ) -> Result<RuncSandbox, HostError> {
        let att = self.net.attach_on(short, app_port).await?;
        Ok(RuncSandbox {
            host: self.host.clone(),
            net: self.net.clone(),
            stacks_dir: self.stacks_dir.clone(),
            ca_file: self.ca_file.clone(),
            dir,
            att,
            plan: None,
        })
    }
}

/// One instance's container: its network attachment, then its plan once prepared.
pub struct RuncSandbox {
    host: Arc<dyn Host>,
    net: Arc<Network>,
    stacks_dir: PathBuf,
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
            stack_rootfs: stack::rootfs_path(&self.stacks_dir, &launch.stack),
            netns_path: self.att.netns_path(),
            address: self.att.ip,
            env,
            start_command: launch.start_command.clone(),
            memory_mb: launch.memory_mb,
            pids: if launch.max_pids > 0 { i64::from(launch.max_pids) } else { 1024 },
            ca_file: self.ca_file.clone(),
            docker: launch.docker.clone(),
        };
        prepare(self.host.as_ref(), self.plan.insert(plan)).await
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

    pub async fn signal(&self, sig: Signal) -> bool {
        match &self.plan {
            Some(p) => signal(self.host.as_ref(), &p.id, sig).await.is_ok(),
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
            destroy(self.host.as_ref(), p).await;
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
            docker: None,
        }
    }

    #[test]
    fn spec_is_locked_down() {
        let s = serde_json::to_value(spec(&plan()).expect("spec").build().expect("build"))
            .expect("json");
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

    /// The important fields of the spec as the cell built it before the shared driver.
    #[test]
    fn spec_is_the_one_built_before() {
        use serde_json::json;
        let p = ContainerPlan { ca_file: Some("/ca.pem".into()), ..plan() };
        let s =
            serde_json::to_value(spec(&p).expect("spec").build().expect("build")).expect("json");
        let bind = |dest: &str, src: &str| {
            json!({"destination": dest, "type": "bind", "source": src,
                   "options": ["rbind", "nosuid", "nodev", "ro"]})
        };
        let mut mounts =
            serde_json::to_value(oci_spec::runtime::get_default_mounts()).expect("defaults");
        let list = mounts.as_array_mut().expect("list");
        list.push(bind(stack::LAUNCHER_PATH, "/var/lib/paas/cell/instances/abc/launcher"));
        list.push(bind("/etc/resolv.conf", "/etc/resolv.conf"));
        list.push(bind("/etc/hosts", "/var/lib/paas/cell/instances/abc/hosts"));
        list.push(bind("/etc/ssl/certs/ca-certificates.crt", "/ca.pem"));
        assert_eq!(s["mounts"], mounts);
        assert_eq!(s["ociVersion"], "1.0.2");
        assert_eq!(s["hostname"], "p-0-abc");
        assert_eq!(
            s["root"],
            json!({"path": "/var/lib/paas/cell/instances/abc/rootfs", "readonly": false})
        );
        let proc = &s["process"];
        assert_eq!(proc["terminal"], false);
        assert_eq!(proc["user"], json!({"uid": 2000, "gid": 2000}));
        assert_eq!(
            proc["args"],
            json!([
                "/bin/sh",
                "-c",
                INIT_SHIM,
                stack::LAUNCHER_PATH,
                "python3 -m http.server $PORT"
            ])
        );
        assert_eq!(proc["env"], json!(["PORT=8080"]));
        assert_eq!(proc["cwd"], "/home/vcap/app");
        for set in ["bounding", "effective", "inheritable", "permitted", "ambient"] {
            assert_eq!(proc["capabilities"][set], json!([]), "{set}");
        }
        assert_eq!(
            proc["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "hard": 16384, "soft": 16384}])
        );
        let linux = &s["linux"];
        assert_eq!(
            linux["namespaces"],
            json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"},
                   {"type": "network", "path": "/var/run/netns/paas-abc"}])
        );
        assert_eq!(linux["cgroupsPath"], "/paas/p-0-abc");
        assert_eq!(
            linux["resources"],
            json!({"devices": [{"allow": false, "access": "rwm"}],
                   "memory": {"limit": 256 << 20, "swap": 256 << 20},
                   "cpu": {"shares": 256},
                   "pids": {"limit": 1024}})
        );
        assert_eq!(
            linux["maskedPaths"],
            json!(["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"])
        );
        assert_eq!(
            linux["readonlyPaths"],
            json!(["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"])
        );
    }

    #[tokio::test]
    async fn prepare_mounts_an_overlay_of_droplet_over_stack() {
        let host = ::container::RecordingHost::default();
        let dir = tempfile::tempdir().expect("tempdir");
        let p = ContainerPlan { dir: dir.path().join("i"), ..plan() };
        prepare(&host, &p).await.expect("prepare");
        let ops = host.ops();
        let ::container::Op::MountOverlay(o) = &ops[0] else { panic!("{ops:?}") };
        assert_eq!(o.lower, [PathBuf::from("/l"), PathBuf::from("/s")]);
        assert_eq!((&o.upper, &o.target), (&p.upper(), &p.rootfs()));
        assert!(p.bundle().join("config.json").exists());
        let hosts = std::fs::read_to_string(p.dir.join("hosts")).expect("hosts");
        assert!(hosts.lines().any(|l| l == "10.254.0.7\tp-0-abc"), "{hosts}");
        destroy(&host, &p).await;
        assert_eq!(
            host.ops()[1..],
            [
                ::container::Op::RuncDelete { id: "p-0-abc".into() },
                ::container::Op::Unmount { target: p.rootfs() },
            ]
        );
        assert!(!p.dir.exists());
    }

    #[tokio::test]
    async fn leftovers_of_this_cell_only_are_removed_at_start() {
        let host = Arc::new(::container::RecordingHost::default());
        let dir = tempfile::tempdir().expect("tempdir");
        let instances = dir.path().join("instances");
        std::fs::create_dir_all(instances.join("paas-old")).expect("leftover dir");
        let state = |id: &str, bundle: PathBuf| runc::State {
            id: id.into(),
            pid: 0,
            status: "stopped".into(),
            bundle,
        };
        host.set_containers(vec![
            state("paas-old", instances.join("paas-old/bundle")),
            state("other", "/elsewhere/bundle".into()),
        ]);
        let cfg = crate::net::NetConfig {
            bridge: "pb0".into(),
            subnet: Ipv4Addr::new(10, 254, 9, 0),
            table: "paas_t".into(),
            port_range: (61000, 61001),
        };
        let runc = Runc {
            host: host.clone(),
            net: Arc::new(Network::new(host.clone(), cfg)),
            stacks_dir: "/s".into(),
            ca_file: None,
        };
        runc.clean_leftovers(&instances).await;
        let ops = host.ops();
        assert!(ops.contains(&::container::Op::RuncDelete { id: "paas-old".into() }), "{ops:?}");
        assert!(!ops.contains(&::container::Op::RuncDelete { id: "other".into() }), "{ops:?}");
        let rootfs = instances.join("paas-old/rootfs");
        assert!(ops.contains(&::container::Op::Unmount { target: rootfs }), "{ops:?}");
        assert!(!instances.join("paas-old").exists());
    }
}
