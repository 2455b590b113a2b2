//! The cell as the scheduler sees it: work in over HTTP with a component token, instances
//! claimed, healthy, RUNNING with routes registered; crashes and health-check timeouts
//! reported with their reasons; stops released.

use std::time::Duration;

use std::time::Instant;

use wire::lrp::HealthCheckType;

use crate::container::{droplet, serve_file};
use crate::harness::{lrp, served_droplet, start_cell, start_cell_with};

#[tokio::test]
async fn instances_run_crash_time_out_and_stop() {
    let c = start_cell(0).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (tgz, sha) = droplet(tmp.path());
    let url = serve_file(tgz).await;
    let mut routes = c.bus.subscribe(wire::subjects::ROUTER_REGISTER).await.expect("subscribe");

    // Without a component token the cell takes no work.
    let res = reqwest::Client::new()
        .get(format!("{}/internal/v1/state", c.url))
        .send()
        .await
        .expect("state");
    assert_eq!(res.status(), 401);

    // 1. A healthy app: RUNNING with its host port, routes registered, reachable.
    let ok = lrp(&url, &sha, "exec python3 -m http.server $PORT", 30);
    c.send_work(&ok).await;
    let started = testkit::eventually("start report", Duration::from_secs(30), || async {
        c.scheduler.find("start", &ok.instance_guid)
    })
    .await
    .expect("started");
    assert!(c.scheduler.find("claim", &ok.instance_guid).is_some(), "claimed first");
    let port = started.ports[0].host_port;
    let body = reqwest::get(format!("http://127.0.0.1:{port}/index.html"))
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "hello from the droplet\n");
    let msg = tokio::time::timeout(Duration::from_secs(5), routes.next())
        .await
        .expect("in time")
        .expect("register");
    let reg: wire::routing::RegistryMessage = serde_json::from_slice(&msg.payload).expect("json");
    assert_eq!(
        (reg.port, reg.uris.clone(), reg.app.as_str()),
        (port, vec!["myapp.apps.localhost".to_owned()], ok.desired.log_guid.as_str())
    );
    let state: wire::lrp::CellState = reqwest::Client::new()
        .get(format!("{}/internal/v1/state", c.url))
        .header("authorization", &c.token)
        .send()
        .await
        .expect("state")
        .json()
        .await
        .expect("json");
    assert_eq!(state.instances.len(), 1);

    // 2. An app that exits: a crash with its exit status.
    let crashing = lrp(&url, &sha, "python3 -m http.server $PORT & sleep 2; exit 3", 30);
    c.send_work(&crashing).await;
    let crash = testkit::eventually("crash report", Duration::from_secs(30), || async {
        c.scheduler.find("crash", &crashing.instance_guid)
    })
    .await
    .expect("crashed");
    assert_eq!(crash.exit_status, Some(3));
    assert!(
        crash.crash_reason.as_deref().unwrap_or_default().contains("Exited with status 3"),
        "{crash:?}"
    );

    // 3. An app that never listens: the start timeout, worded as Diego does.
    let silent = lrp(&url, &sha, "exec sleep 600", 2);
    c.send_work(&silent).await;
    let timeout = testkit::eventually("timeout report", Duration::from_secs(30), || async {
        c.scheduler.find("crash", &silent.instance_guid)
    })
    .await
    .expect("timed out");
    assert_eq!(
        timeout.crash_reason.as_deref(),
        Some("Timed out after 2s: health check never passed.")
    );

    // 4. Stop: removed, and nothing of it left.
    let res = reqwest::Client::new()
        .post(format!("{}/internal/v1/stop", c.url))
        .header("authorization", &c.token)
        .json(&wire::lrp::StopRequest { instance: started.instance.clone() })
        .send()
        .await
        .expect("stop");
    assert_eq!(res.status(), 202);
    testkit::eventually("remove report", Duration::from_secs(30), || async {
        c.scheduler.find("remove", &ok.instance_guid)
    })
    .await
    .expect("removed");
    testkit::eventually("everything released", Duration::from_secs(10), || async {
        let netns = std::process::Command::new("ip").args(["netns", "list"]).output().ok()?;
        let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
        let dir = c.cfg.data_dir.join("instances");
        let ok = !String::from_utf8_lossy(&netns.stdout)
            .contains(&ok.instance_guid.replace('-', "")[..10])
            && !mounts.contains(&dir.display().to_string());
        ok.then_some(())
    })
    .await
    .expect("no leftovers");
    c.shut_down().await;
}

#[tokio::test]
async fn a_stop_right_after_the_start_reaches_the_app_as_sigterm() {
    // A process health check reports RUNNING as soon as the app's process runs; a stop at
    // once must still be a graceful SIGTERM, not the SIGKILL after the grace period.
    let c = start_cell_with(8, |cfg| cfg.graceful_stop_secs = 10).await;
    let (url, sha, _droplet) = served_droplet().await;
    let mut l = lrp(&url, &sha, "trap 'echo got TERM; exit 0' TERM; sleep 1000 & wait", 30);
    l.desired.health_check.kind = HealthCheckType::Process;
    c.send_work(&l).await;
    c.report("start", &l, Duration::from_secs(30)).await;
    let t = Instant::now();
    c.stop(&l).await;
    c.report("remove", &l, Duration::from_secs(30)).await;
    assert!(t.elapsed() < Duration::from_secs(5), "stopped after {:?}", t.elapsed());
    c.wait_log(&l, "APP/PROC/WEB", "got TERM", Duration::from_secs(5)).await;
    c.shut_down().await;
}
