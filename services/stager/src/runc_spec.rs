//! The OCI runtime spec of a staging container: the stack read-only as root, the scratch dirs
//! bind-mounted under /tmp, user vcap, own PID/mount/UTS/IPC namespaces, the host network
//! namespace (pip and npm need egress; see ADR 0700), a memory cgroup without swap.

use std::path::Path;

use serde_json::{json, Value};

use crate::container::{cgroup_path, BuildRun};

/// Where the builder is mounted inside the container.
pub const BUILDER_PATH: &str = "/tmp/lifecycle/builder";

fn bind(dest: &str, src: &Path, ro: bool) -> Value {
    let mut options = vec!["rbind", "nosuid", "nodev"];
    options.push(if ro { "ro" } else { "rw" });
    json!({"destination": dest, "type": "bind", "source": src, "options": options})
}

pub fn staging_spec(r: &BuildRun, rootfs: &Path) -> Value {
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
