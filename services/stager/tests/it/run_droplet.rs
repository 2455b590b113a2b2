//! A test-only way to run a droplet: extract it as /home/vcap, and start the launcher with the
//! start command in a runc container on the stack (host network, `PORT` = a free port).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

pub struct RunningDroplet {
    id: String,
    pub port: u16,

    dir: tempfile::TempDir,
}

impl RunningDroplet {
    /// What the app printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("output.log")).unwrap_or_default()
    }
}

impl Drop for RunningDroplet {
    fn drop(&mut self) {
        let _ = Command::new("runc").args(["kill", &self.id, "KILL"]).output();
        let _ = Command::new("runc").args(["delete", "--force", &self.id]).output();
    }
}

/// Starts `droplet` with `command` and waits until `GET /` answers 200; returns the body.
pub async fn start_and_get(
    droplet: &[u8],
    command: &str,
) -> anyhow::Result<(RunningDroplet, String)> {
    let dir = tempfile::tempdir()?;
    let tgz = dir.path().join("droplet.tgz");
    std::fs::write(&tgz, droplet)?;
    let home = dir.path().join("home");
    let opts = archive::ExtractOptions { allow_absolute_symlinks: true };
    archive::extract_tar_gz_with_options(&tgz, &home, &archive::Limits::default(), &opts)?;
    let status = Command::new("chown").args(["-R", "-h", "2000:2000"]).arg(&home).status()?;
    anyhow::ensure!(status.success(), "chown failed");
    let launcher = dir.path().join("launcher");
    std::fs::write(&launcher, stack::LAUNCHER)?;
    std::fs::set_permissions(&launcher, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let port = testkit::free_port();
    let rootfs = stack::find(&stack::test_cache_dir(), stack::DEFAULT_STACK)?;
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle)?;
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec(&spec(&rootfs, &home, &launcher, port, command))?,
    )?;
    let id = format!("stg-test-run-{}", uuid::Uuid::new_v4().simple());
    let log = std::fs::File::create(dir.path().join("output.log"))?;
    Command::new("runc")
        .args(["run", "--detach", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?
        .wait()?;
    let running = RunningDroplet { id, port, dir };
    let url = format!("http://127.0.0.1:{port}/");
    if let Err(e) = testkit::wait_http_ok(&url, Duration::from_secs(60)).await {
        anyhow::bail!("{e}; app output:\n{}", running.output());
    }
    let body = reqwest::get(&url).await?.text().await?;
    Ok((running, body))
}

fn spec(
    rootfs: &Path,
    home: &Path,
    launcher: &Path,
    port: u16,
    command: &str,
) -> serde_json::Value {
    let bind = |dest: &str, src: &Path, ro: bool| json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind", if ro { "ro" } else { "rw" }]});
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 2000, "gid": 2000},
            "args": [stack::LAUNCHER_PATH, command],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", format!("PORT={port}"), "HOME=/home/vcap/app",
                    "TMPDIR=/home/vcap/tmp", "VCAP_APPLICATION={}", "MEMORY_LIMIT=256m"],
            "cwd": "/home/vcap/app",
            "noNewPrivileges": true
        },
        "root": {"path": rootfs, "readonly": true},
        "hostname": "app",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro", "nosuid", "noexec", "nodev"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]},
            bind("/home/vcap", home, false),
            bind(stack::LAUNCHER_PATH, launcher, true),
            bind("/etc/resolv.conf", Path::new("/etc/resolv.conf"), true)
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}],
            "resources": {"devices": [{"allow": false, "access": "rwm"}]}
        }
    })
}
