//! The cell as the scheduler sees it, on both backends: work in over HTTP with a component
//! token, instances claimed, healthy, RUNNING with routes registered; crashes and health-check
//! timeouts reported with their reasons; stops graceful and released; the app's output and
//! the cell's lines in the app's log stream; metrics gauges.

use std::time::{Duration, Instant};

use wire::envelope::{Envelope, LogStream, Message};
use wire::lrp::{HealthCheckType, LrpStart};

use crate::container::{droplet, serve_file};
use crate::harness::{
    lrp, processes_of_instance, served_droplet, start_cell, start_cell_with, Backend, Cell,
};

on_both_backends!(
    instances_run_crash_time_out_and_stop,
    a_stop_right_after_the_start_reaches_the_app_as_sigterm,
    the_apps_output_and_the_cells_lines_reach_its_log_stream,
    metrics_gauges_report_what_an_instance_uses,
);

/// Wait until nothing of `l` is left on the host: no process, directory, mount or network
/// namespace.
async fn released(c: &Cell, l: &LrpStart) {
    let what = format!("everything of {} released", l.instance_guid);
    let dir = c.instance_dir(l);
    let netns = format!("paas-{}", cell::backend::runc::short_id(&l.instance_guid));
    let left = || {
        let mut left = Vec::new();
        let pids = processes_of_instance(&l.instance_guid);
        if !pids.is_empty() {
            left.push(format!("processes {pids:?}"));
        }
        if dir.exists() {
            left.push(format!("directory {}", dir.display()));
        }
        let mounts = std::fs::read_to_string("/proc/mounts").expect("mounts");
        left.extend(
            mounts.lines().filter(|m| m.contains(&dir.display().to_string())).map(String::from),
        );
        let ns = std::process::Command::new("ip").args(["netns", "list"]).output().expect("ip");
        if String::from_utf8_lossy(&ns.stdout).lines().any(|n| n.starts_with(&netns)) {
            left.push(format!("network namespace {netns}"));
        }
        left
    };
    let done = testkit::eventually(&what, Duration::from_secs(10), || async {
        left().is_empty().then_some(())
    })
    .await;
    assert!(done.is_ok(), "left of {}: {:#?}", l.instance_guid, left());
}

async fn instances_run_crash_time_out_and_stop(backend: Backend) {
    let c = start_cell(backend, 0).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (tgz, sha) = droplet(tmp.path());
    let url = serve_file(tgz).await;
    let mut routes = c.bus.subscribe(wire::subjects::ROUTER_REGISTER).await.expect("subscribe");
    let mut gone = c.bus.subscribe(wire::subjects::ROUTER_UNREGISTER).await.expect("subscribe");

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
    assert_eq!(reg.availability_zone.as_deref(), Some(c.cfg.zone.as_str()), "for zone balancing");
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

    // 2. An app that exits: a crash with its exit status, and what it started is gone too.
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
    released(&c, &crashing).await;

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

    // The bulk sync (every second here) leaves an instance the cell holds alone.
    assert_eq!(c.scheduler.count("remove", &ok.instance_guid), 0, "removed while running");

    // 4. Stop: routes unregistered, removed, and nothing of it left.
    assert!(!processes_of_instance(&ok.instance_guid).is_empty(), "the app runs");
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
    let unregistered = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let msg = gone.next().await.expect("unregister");
            let m: wire::routing::RegistryMessage =
                serde_json::from_slice(&msg.payload).expect("json");
            if m.private_instance_id == ok.instance_guid {
                return m;
            }
        }
    })
    .await
    .expect("its route unregistered in time");
    assert_eq!((unregistered.port, unregistered.uris), (port, vec!["myapp.apps.localhost".into()]));
    released(&c, &ok).await;
    released(&c, &silent).await;
    c.shut_down().await;
}

async fn a_stop_right_after_the_start_reaches_the_app_as_sigterm(backend: Backend) {
    // A process health check reports RUNNING as soon as the app's process runs; a stop at
    // once must still be a graceful SIGTERM, not the SIGKILL after the grace period.
    let c = start_cell_with(backend, 8, |cfg| cfg.graceful_stop_secs = 10).await;
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
    released(&c, &l).await;
    c.shut_down().await;
}

/// Log envelopes of `l` (its source and instance): (subject, source type, stream, text).
fn log_envelopes(c: &Cell, l: &LrpStart) -> Vec<(String, String, LogStream, String)> {
    let envelopes = c.envelopes.lock().expect("lock");
    envelopes
        .iter()
        .filter(|(_, e)| e.source_id == l.desired.log_guid && e.instance_id == l.index.to_string())
        .filter_map(|(subject, e)| match &e.message {
            Message::Log(log) => {
                Some((subject.clone(), e.source_type()?.to_owned(), log.stream, e.log_text()?))
            }
            _ => None,
        })
        .collect()
}

async fn the_apps_output_and_the_cells_lines_reach_its_log_stream(backend: Backend) {
    let c = start_cell(backend, 10).await;
    let (url, sha, _droplet) = served_droplet().await;
    let command = "echo to stdout; echo to stderr >&2; \
                   python3 -c 'print(\"x\" * (70 * 1024))'; exec python3 -m http.server $PORT";
    let mut l = lrp(&url, &sha, command, 30);
    l.index = 2;
    c.send_work(&l).await;
    c.report("start", &l, Duration::from_secs(30)).await;
    c.wait_log(&l, "APP/PROC/WEB", "to stderr", Duration::from_secs(10)).await;
    testkit::eventually("the long line, split", Duration::from_secs(10), || async {
        (log_envelopes(&c, &l).iter().filter(|(_, _, _, t)| t.starts_with('x')).count() == 2)
            .then_some(())
    })
    .await
    .expect("two pieces of the long line");
    c.stop(&l).await;
    c.report("remove", &l, Duration::from_secs(30)).await;
    let lines = log_envelopes(&c, &l);

    let app: Vec<_> = lines.iter().filter(|(_, st, _, _)| st == "APP/PROC/WEB").collect();
    assert!(app.iter().all(|(subject, ..)| subject == "logs.app"), "{app:?}");
    let stream_of = |text: &str| app.iter().find(|(.., t)| t == text).map(|(_, _, s, _)| *s);
    assert_eq!(stream_of("to stdout"), Some(LogStream::Out));
    assert_eq!(stream_of("to stderr"), Some(LogStream::Err));
    let pieces: Vec<usize> =
        app.iter().filter(|(.., t)| t.starts_with('x')).map(|(.., t)| t.len()).collect();
    assert_eq!(pieces, vec![60 * 1024, 10 * 1024], "a 70 KiB line in 60 KiB pieces");

    let cell: Vec<&str> = lines
        .iter()
        .filter(|(subject, st, ..)| st == "CELL" && subject == "logs.cell")
        .map(|(.., t)| t.as_str())
        .collect();
    let created = format!("Creating container for app instance {}", l.instance_guid);
    let stopping = format!("Stopping instance {}", l.instance_guid);
    assert_eq!(
        cell,
        vec![
            created.as_str(),
            "Successfully created container",
            "Container became healthy",
            stopping.as_str(),
            "Destroying container"
        ]
    );
    c.shut_down().await;
}

/// The latest gauge values of `l`, by name.
fn latest_gauge(c: &Cell, l: &LrpStart) -> Option<std::collections::BTreeMap<String, f64>> {
    let envelopes = c.envelopes.lock().expect("lock");
    envelopes.iter().rev().find_map(|(_, e): &(String, Envelope)| match &e.message {
        Message::Gauge(g) if e.source_id == l.desired.log_guid => {
            Some(g.metrics.iter().map(|(k, v)| (k.clone(), v.value)).collect())
        }
        _ => None,
    })
}

async fn metrics_gauges_report_what_an_instance_uses(backend: Backend) {
    let c = start_cell_with(backend, 11, |cfg| cfg.metrics_secs = 1).await;
    let (url, sha, _droplet) = served_droplet().await;
    // 48 MiB resident and one core busy.
    let busy = "exec python3 -c 'b = bytearray(48 << 20)\nwhile True: pass'";
    let mut l = lrp(&url, &sha, busy, 30);
    l.desired.health_check.kind = HealthCheckType::Process;
    c.send_work(&l).await;
    c.report("start", &l, Duration::from_secs(30)).await;
    let seen = testkit::eventually("a gauge of a busy 48 MiB app", Duration::from_secs(15), || {
        let g = latest_gauge(&c, &l);
        async move { g.filter(|g| g["memory"] >= f64::from(48 << 20) && g["cpu"] > 10.0) }
    })
    .await;
    let Ok(g) = seen else { panic!("gauges so far: {:?}", latest_gauge(&c, &l)) };
    assert!(g["memory"] < f64::from(128 << 20), "{g:?}");
    assert!(g["cpu"] < 250.0, "one busy thread on a core: {g:?}");
    assert_eq!(g["memory_quota"], f64::from(128 << 20));
    assert_eq!(g["disk_quota"], f64::from(512 << 20));
    assert!(g.contains_key("disk"), "{g:?}");
    c.stop(&l).await;
    c.report("remove", &l, Duration::from_secs(30)).await;
    released(&c, &l).await;
    c.shut_down().await;
}
