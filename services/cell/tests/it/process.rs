//! What only the process backend does: an app runs as a plain process in its own instance
//! directory (as vcap when the cell is root) and listens on its host port itself; with no
//! cgroup, the cell measures its memory and kills it when it goes over, reported as the kernel's
//! OOM kill is in a container.

use std::os::unix::fs::MetadataExt as _;
use std::time::Duration;

use wire::envelope::Message;
use wire::lrp::HealthCheckType;

use crate::harness::{
    lrp, out_of_memory_is_told_apart, served_droplet, start_cell, start_cell_with, Backend,
};

const APP: &str = "APP/PROC/WEB";

#[tokio::test]
async fn an_app_runs_in_its_own_directory_on_its_host_port() {
    let c = start_cell(Backend::Process, 14).await;
    let (url, sha, _droplet) = served_droplet().await;
    let inspect = r#"echo "ID $(id -u) $(id -g) groups $(id -G)"
echo "PWD $PWD"
for v in HOME TMPDIR DEPS_DIR PORT CF_INSTANCE_PORT CF_INSTANCE_INTERNAL_IP PAAS_VCAP_ROOT; do
  echo "ENV $v=${!v}"
done
echo INSPECTED
exec python3 -m http.server $PORT"#;
    let app = lrp(&url, &sha, inspect, 30);
    c.send_work(&app).await;
    let started = c.report("start", &app, Duration::from_secs(30)).await;
    let lines = c.wait_log(&app, APP, "INSPECTED", Duration::from_secs(10)).await;
    let port = started.ports[0].host_port;
    assert!((c.cfg.host_port_min..=c.cfg.host_port_max).contains(&port), "{port}");
    assert_eq!(started.ports[0].container_port, port, "the app listens on the host port itself");
    assert_eq!(started.instance_address, "127.0.0.1");

    let home = c.instance_dir(&app).join("home/vcap");
    let at = |p: &str| home.join(p).display().to_string();
    let root = std::fs::read_to_string("/proc/self/status")
        .expect("status")
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    let (uid, gid) = if root { (stack::VCAP_UID, stack::VCAP_GID) } else { (0, 0) };
    let mut want = vec![
        format!("PWD {}", at("app")),
        format!("ENV HOME={}", at("app")),
        format!("ENV TMPDIR={}", at("tmp")),
        format!("ENV DEPS_DIR={}", at("deps")),
        format!("ENV PORT={port}"),
        format!("ENV CF_INSTANCE_PORT={port}"),
        "ENV CF_INSTANCE_INTERNAL_IP=127.0.0.1".to_owned(),
        "ENV PAAS_VCAP_ROOT=".to_owned(),
    ];
    if root {
        want.push(format!("ID {uid} {gid} groups {gid}"));
        let meta = std::fs::metadata(home.join("app/index.html")).expect("its copy of the droplet");
        assert_eq!((meta.uid(), meta.gid()), (uid, gid), "the instance directory is vcap's");
    }
    for w in &want {
        assert!(lines.contains(w), "{w:?} in {lines:#?}");
    }
    let body = reqwest::get(format!("http://127.0.0.1:{port}/index.html"))
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "hello from the droplet\n");
    c.shut_down().await;
}

#[tokio::test]
async fn exceeding_its_memory_is_reported_as_out_of_memory() {
    let c = start_cell_with(Backend::Process, 13, |cfg| {
        cfg.disk_check_secs = 1;
        cfg.metrics_secs = 1;
    })
    .await;
    let (url, sha, _droplet) = served_droplet().await;
    let with = |command: &str| {
        let mut l = lrp(&url, &sha, command, 30);
        l.desired.memory_mb = 64;
        l.desired.health_check.kind = HealthCheckType::Process;
        l
    };
    let hog = with("exec python3 -c 'import time; b = bytearray(200 << 20); time.sleep(600)'");
    // An ordinary SIGKILL has the same exit status and must not be called out of memory.
    let killed = with("exec python3 -c 'import os, signal; os.kill(os.getpid(), signal.SIGKILL)'");
    // Under its limit: left alone.
    let modest = with("exec python3 -c 'import time; b = bytearray(16 << 20); time.sleep(600)'");
    c.send_work(&hog).await;
    c.send_work(&killed).await;
    c.send_work(&modest).await;

    out_of_memory_is_told_apart(&c, &hog, &killed).await;

    // Measured (each metrics tick measures) three times with its 16 MiB, and still running.
    c.report("start", &modest, Duration::from_secs(30)).await;
    testkit::eventually("three measurements", Duration::from_secs(10), || async {
        let measured = c
            .envelopes
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, e)| e.source_id == modest.desired.log_guid)
            .filter(|(_, e)| match &e.message {
                Message::Gauge(g) => {
                    g.metrics.get("memory").is_some_and(|m| m.value >= f64::from(16 << 20))
                }
                _ => false,
            })
            .count();
        (measured >= 3).then_some(())
    })
    .await
    .expect("measured");
    assert!(c.scheduler.find("crash", &modest.instance_guid).is_none(), "under its limit");
    c.shut_down().await;
}
