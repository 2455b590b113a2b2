//! The cell as the scheduler sees it: work in over HTTP with a component token, instances
//! claimed, healthy, RUNNING with routes registered; crashes and health-check timeouts
//! reported with their reasons; stops released.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::{DynBus, InProcessBus};
use futures::future::BoxFuture;
use testkit::tokens::Issuer;
use wire::lrp::{CellPresence, InstanceReport, LrpStart, Work};

use crate::container::{droplet, serve_file, stack_rootfs};

#[derive(Default)]
struct FakeScheduler {
    reports: Mutex<Vec<(String, InstanceReport)>>,
}

impl cell::report::Reporter for FakeScheduler {
    fn presence<'a>(&'a self, _: &'a CellPresence) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    fn report<'a>(
        &'a self,
        kind: &'a str,
        r: &'a InstanceReport,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.reports.lock().expect("lock").push((kind.to_owned(), r.clone()));
        Box::pin(async { Ok(()) })
    }
}

impl FakeScheduler {
    fn find(&self, kind: &str, guid: &str) -> Option<InstanceReport> {
        self.reports
            .lock()
            .expect("lock")
            .iter()
            .find(|(k, r)| k == kind && r.instance.instance_guid == guid)
            .map(|(_, r)| r.clone())
    }
}

struct Cell {
    url: String,
    token: String,
    scheduler: Arc<FakeScheduler>,
    bus: DynBus,
    shutdown: kit::Shutdown,
    task: tokio::task::JoinHandle<Result<(), cell::Error>>,
    _tmp: tempfile::TempDir,
    cfg: cell::Config,
}

async fn start_cell() -> Cell {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pid = std::process::id();
    let stacks = stack_rootfs().parent().and_then(|p| p.parent()).expect("stacks dir").to_owned();
    let cfg = cell::Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        cell_id: format!("test-cell-{pid}"),
        data_dir: tmp.path().join("cell"),
        stacks_dir: stacks,
        backend: "runc".into(),
        bridge: format!("pit{}", pid % 10_000),
        subnet: Ipv4Addr::new(10, 252, u8::try_from(pid % 200 + 20).expect("fits"), 0),
        nft_table: format!("paas_it{}", pid % 10_000),
        host_port_min: 62200,
        host_port_max: 62299,
        graceful_stop_secs: 2,
        ..Default::default()
    };
    let issuer = Issuer::new("k", "http://api.test/oauth/token");
    let scheduler = Arc::new(FakeScheduler::default());
    let bus: DynBus = Arc::new(InProcessBus::new());
    let parts = cell::Parts {
        os: Arc::new(cell::os::RealOs),
        reporter: scheduler.clone(),
        verifier: Arc::new(issuer.verifier()),
        token: None,
    };
    let service =
        cell::build_with(cfg.clone(), cell::Deps { bus: bus.clone() }, parts).await.expect("build");
    let url = format!("http://{}", service.local_addr());
    let shutdown = kit::Shutdown::new();
    let task = tokio::spawn(service.run(shutdown.clone()));
    testkit::wait_http_ok(&format!("{url}/readyz"), Duration::from_secs(10)).await.expect("ready");
    Cell {
        url,
        token: issuer.token(&[auth::SCOPE_INTERNAL], 600),
        scheduler,
        bus,
        shutdown,
        task,
        _tmp: tmp,
        cfg,
    }
}

fn lrp(droplet_url: &str, sha: &str, command: &str, start_timeout: u64) -> LrpStart {
    let desired = serde_json::from_value(serde_json::json!({
        "process_guid": "proc-1", "log_guid": "app-guid-1", "instances": 1, "memory_mb": 128,
        "disk_mb": 512, "stack": "bookworm", "start_command": command,
        "image": {"droplet_guid": "d", "droplet_url": droplet_url, "droplet_sha256": sha},
        "health_check": {"type": "port", "start_timeout_secs": start_timeout},
        "routes": [{"uri": "myapp.apps.localhost"}]
    }))
    .expect("desired");
    LrpStart { desired, index: 0, instance_guid: uuid::Uuid::new_v4().to_string() }
}

async fn send_work(c: &Cell, l: &LrpStart) {
    let res = reqwest::Client::new()
        .post(format!("{}/internal/v1/work", c.url))
        .header("authorization", &c.token)
        .json(&Work { lrps: vec![l.clone()] })
        .send()
        .await
        .expect("work");
    assert_eq!(res.status(), 200);
    let body: wire::lrp::WorkResult = res.json().await.expect("json");
    assert!(body.failed.is_empty());
}

#[tokio::test]
async fn instances_run_crash_time_out_and_stop() {
    let c = start_cell().await;
    let _cleanup = NetCleanup(c.cfg.clone());
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
    send_work(&c, &ok).await;
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
        (port, vec!["myapp.apps.localhost".to_owned()], "app-guid-1")
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
    send_work(&c, &crashing).await;
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
    send_work(&c, &silent).await;
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
    c.shutdown.cancel();
    c.task.await.expect("join").expect("clean stop");
}

struct NetCleanup(cell::Config);

impl Drop for NetCleanup {
    fn drop(&mut self) {
        let sh = |c: String| {
            let _ = std::process::Command::new("sh").args(["-c", &c]).output();
        };
        sh(format!(
            "for c in $(runc list -q | grep '^paas-'); do runc list -f json | grep -q \"{}\" && runc delete --force $c; done",
            self.0.data_dir.display()
        ));
        sh(format!(
            "grep {} /proc/mounts | cut -d' ' -f2 | xargs -r -n1 umount -l",
            self.0.data_dir.display()
        ));
        sh(format!("ip link del {} 2>/dev/null", self.0.bridge));
        sh(format!(
            "nft delete table ip {0} 2>/dev/null; nft delete table bridge {0} 2>/dev/null",
            self.0.nft_table
        ));
    }
}
