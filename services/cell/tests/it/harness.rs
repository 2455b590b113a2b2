//! A real cell for the tests: built from its configuration with either backend (runc: its own
//! bridge, subnet and nftables table; both: their own host-port range), a fake scheduler that
//! records every report, the in-process bus with every envelope collected, and cleanup of
//! whatever a failed test left.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::{DynBus, InProcessBus};
use futures::future::BoxFuture;
use testkit::tokens::Issuer;
use wire::envelope::Envelope;
use wire::lrp::{ActualLrp, ActualState, CellPresence, InstanceReport, LrpStart, Work};

use crate::container::stack_rootfs;

#[derive(Default)]
pub struct FakeScheduler {
    reports: Mutex<Vec<(String, InstanceReport)>>,
    /// How many more evacuation requests are answered "keep the container" (then "stop it").
    pub keep_evacuating: std::sync::atomic::AtomicUsize,
    /// Whether a presence heartbeat said the cell is evacuating.
    pub saw_evacuating: std::sync::atomic::AtomicBool,
    /// Instances this scheduler believes are on the cell besides what its reports say (as
    /// left by an earlier run of the cell).
    pub known: Mutex<Vec<ActualLrp>>,
    /// The routes a claim is answered with (none: the answer says nothing of routes).
    pub claim_routes: Mutex<Option<Vec<wire::lrp::Route>>>,
    /// Instances this scheduler no longer has on the cell, whatever the reports say (placed
    /// elsewhere while the cell was cut off).
    pub forgotten: Mutex<Vec<String>>,
}

impl cell::report::Reporter for FakeScheduler {
    fn claim<'a>(
        &'a self,
        r: &'a InstanceReport,
    ) -> BoxFuture<'a, Result<Option<Vec<wire::lrp::Route>>, String>> {
        let routes = self.claim_routes.lock().expect("lock").clone();
        Box::pin(async move { self.report("claim", r).await.map(|()| routes) })
    }
    fn presence<'a>(&'a self, p: &'a CellPresence) -> BoxFuture<'a, Result<(), String>> {
        if p.evacuating {
            self.saw_evacuating.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Box::pin(async { Ok(()) })
    }
    fn evacuate<'a>(&'a self, r: &'a InstanceReport) -> BoxFuture<'a, Result<bool, String>> {
        use std::sync::atomic::Ordering;
        self.reports.lock().expect("lock").push(("evacuate".to_owned(), r.clone()));
        let keep = self
            .keep_evacuating
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        Box::pin(async move { Ok(keep) })
    }
    fn report<'a>(
        &'a self,
        kind: &'a str,
        r: &'a InstanceReport,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.reports.lock().expect("lock").push((kind.to_owned(), r.clone()));
        if kind == "remove" || kind == "crash" {
            self.known
                .lock()
                .expect("lock")
                .retain(|a| a.instance_guid != r.instance.instance_guid);
        }
        Box::pin(async { Ok(()) })
    }
    /// What the reports made of each instance (claimed, running, or gone after a crash or
    /// removal), plus the `known` ones.
    fn actual<'a>(&'a self, cell_id: &'a str) -> BoxFuture<'a, Result<Vec<ActualLrp>, String>> {
        let mut by_guid: std::collections::BTreeMap<String, ActualLrp> = self
            .known
            .lock()
            .expect("lock")
            .iter()
            .map(|a| (a.instance_guid.clone(), a.clone()))
            .collect();
        for (kind, r) in self.reports.lock().expect("lock").iter() {
            let state = match kind.as_str() {
                "claim" => ActualState::Claimed,
                "start" => ActualState::Running,
                "crash" | "remove" => {
                    by_guid.remove(&r.instance.instance_guid);
                    continue;
                }
                _ => continue,
            };
            by_guid.insert(r.instance.instance_guid.clone(), actual_lrp(r, state));
        }
        let forgotten = self.forgotten.lock().expect("lock").clone();
        let list = by_guid
            .into_values()
            .filter(|a| a.cell_id == cell_id && !forgotten.contains(&a.instance_guid))
            .collect();
        Box::pin(async move { Ok(list) })
    }
}

/// A scheduler record of an instance from a report about it.
pub fn actual_lrp(r: &InstanceReport, state: ActualState) -> ActualLrp {
    ActualLrp {
        process_guid: r.instance.process_guid.clone(),
        index: r.instance.index,
        domain: "cf-apps".into(),
        instance_guid: r.instance.instance_guid.clone(),
        cell_id: r.cell_id.clone(),
        state,
        presence: Default::default(),
        address: r.address.clone(),
        instance_address: r.instance_address.clone(),
        ports: r.ports.clone(),
        crash_count: 0,
        crash_reason: String::new(),
        placement_error: String::new(),
        since: 0,
        routable: true,
    }
}

impl FakeScheduler {
    /// How many reports of `kind` arrived for `guid`.
    pub fn count(&self, kind: &str, guid: &str) -> usize {
        self.reports
            .lock()
            .expect("lock")
            .iter()
            .filter(|(k, r)| k == kind && r.instance.instance_guid == guid)
            .count()
    }

    pub fn find(&self, kind: &str, guid: &str) -> Option<InstanceReport> {
        self.reports
            .lock()
            .expect("lock")
            .iter()
            .find(|(k, r)| k == kind && r.instance.instance_guid == guid)
            .map(|(_, r)| r.clone())
    }
}

/// How the cell under test runs instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Runc,
    Process,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Runc => "runc",
            Self::Process => "process",
        }
    }

    /// The host ports of test slot `slot`: 64000–64999 for runc cells (50 each), 65300–65499
    /// for process cells (10 each) — ranges no other crate's tests use, and apart, because a
    /// runc cell's port mappings catch loopback traffic to its ports on the whole host.
    fn letter(self) -> char {
        match self {
            Self::Runc => 'r',
            Self::Process => 'p',
        }
    }

    fn ports(self, slot: u8) -> (u16, u16) {
        let s = u16::from(slot);
        match self {
            Self::Runc => (64000 + 50 * s, 64000 + 50 * s + 49),
            Self::Process => (65300 + 10 * s, 65300 + 10 * s + 9),
        }
    }
}

pub struct Cell {
    pub url: String,
    pub token: String,
    pub scheduler: Arc<FakeScheduler>,
    pub bus: DynBus,
    pub shutdown: kit::Shutdown,
    pub task: tokio::task::JoinHandle<Result<(), cell::Error>>,
    pub cfg: cell::Config,
    /// Every envelope published on `logs.>` since the cell started, with its subject.
    pub envelopes: Arc<Mutex<Vec<(String, Envelope)>>>,
    // Dropped after the cleanup below (fields drop in order).
    _cleanup: NetCleanup,
    _tmp: tempfile::TempDir,
}

/// A cell on test slot `slot`: the slot picks a host-port range, subnet, bridge and table that
/// no other test of this binary uses, so the tests run side by side (each backend has its own
/// port ranges, so a test runs on both at once).
pub async fn start_cell(backend: Backend, slot: u8) -> Cell {
    start_cell_with(backend, slot, |_| {}).await
}

pub async fn start_cell_with(
    backend: Backend,
    slot: u8,
    adjust: impl FnOnce(&mut cell::Config),
) -> Cell {
    assert!(slot < 20, "slots 0..=19");
    let tmp = tempfile::tempdir().expect("tempdir");
    // As root the process backend runs apps as vcap, who must reach the instance directories.
    open_to_others(tmp.path());
    let pid = std::process::id();
    let stacks = stack_rootfs().parent().and_then(|p| p.parent()).expect("stacks dir").to_owned();
    let (port_min, port_max) = backend.ports(slot);
    // 10.200–10.209 and 10.212–10.221 (10.210 and 10.211 belong to the network test and the
    // benchmark).
    let second = if slot < 10 { 200 + slot } else { 202 + slot };
    let mut cfg = cell::Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        cell_id: format!("test-cell-{}-{slot}-{pid}", backend.as_str()),
        data_dir: tmp.path().join("cell"),
        stacks_dir: stacks,
        backend: backend.as_str().into(),
        // Names of their own per backend too: a test runs on both backends at once in one
        // process (`cargo test`), and each cleanup removes its cell's bridge and tables.
        bridge: format!("pit{slot}{}{}", backend.letter(), pid % 100_000),
        subnet: Ipv4Addr::new(10, second, u8::try_from(pid % 200 + 20).expect("fits"), 0),
        nft_table: format!("paas_it{slot}{}_{pid}", backend.letter()),
        host_port_min: port_min,
        host_port_max: port_max,
        graceful_stop_secs: 2,
        // No router listens here: stops need not wait for one to drop the routes.
        route_drain_ms: 0,
        bulk_sync_secs: 1,
        ..Default::default()
    };
    adjust(&mut cfg);
    let cleanup = NetCleanup(cfg.clone());
    let issuer = Issuer::new("k", "http://api.test/oauth/token");
    let scheduler = Arc::new(FakeScheduler::default());
    let bus: DynBus = Arc::new(InProcessBus::new());
    let envelopes = collect_envelopes(&bus).await;
    let parts = cell::Parts {
        host: Arc::new(::container::RealHost),
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
        token: issuer.token(&[auth::SCOPE_INTERNAL], 3600),
        scheduler,
        bus,
        shutdown,
        task,
        cfg,
        envelopes,
        _cleanup: cleanup,
        _tmp: tmp,
    }
}

/// `chmod 755`: others may enter (the tests' temporary directories are 0700).
pub fn open_to_others(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

async fn collect_envelopes(bus: &DynBus) -> Arc<Mutex<Vec<(String, Envelope)>>> {
    let all = Arc::new(Mutex::new(Vec::new()));
    let mut sub = bus.subscribe(wire::subjects::LOGS_ALL).await.expect("subscribe");
    let sink = all.clone();
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Ok(e) = serde_json::from_slice::<Envelope>(&m.payload) {
                sink.lock().expect("lock").push((m.subject.clone(), e));
            }
        }
    });
    all
}

/// The test droplet, served over HTTP like the api's droplet download: (url, sha256, its dir).
pub async fn served_droplet() -> (String, String, tempfile::TempDir) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (tgz, sha) = crate::container::droplet(tmp.path());
    let url = crate::container::serve_file(tgz).await;
    (url, sha, tmp)
}

/// A one-instance LRP of the test droplet; unique process, app and instance guids.
pub fn lrp(droplet_url: &str, sha: &str, command: &str, start_timeout: u64) -> LrpStart {
    let app = uuid::Uuid::new_v4();
    let desired = serde_json::from_value(serde_json::json!({
        "process_guid": format!("proc-{app}"), "log_guid": app.to_string(), "instances": 1,
        "memory_mb": 128, "disk_mb": 512, "stack": "bookworm", "start_command": command,
        "image": {"droplet_guid": "d", "droplet_url": droplet_url, "droplet_sha256": sha},
        "health_check": {"type": "port", "start_timeout_secs": start_timeout},
        "routes": [{"uri": "myapp.apps.localhost"}]
    }))
    .expect("desired");
    LrpStart { desired, index: 0, instance_guid: uuid::Uuid::new_v4().to_string() }
}

impl Cell {
    pub async fn send_work(&self, l: &LrpStart) {
        let res = reqwest::Client::new()
            .post(format!("{}/internal/v1/work", self.url))
            .header("authorization", &self.token)
            .json(&Work { lrps: vec![l.clone()] })
            .send()
            .await
            .expect("work");
        assert_eq!(res.status(), 200);
        let body: wire::lrp::WorkResult = res.json().await.expect("json");
        assert!(body.failed.is_empty(), "the cell refused the work");
    }

    pub async fn stop(&self, l: &LrpStart) {
        let key = wire::lrp::InstanceKey {
            process_guid: l.desired.process_guid.clone(),
            index: l.index,
            instance_guid: l.instance_guid.clone(),
        };
        let res = reqwest::Client::new()
            .post(format!("{}/internal/v1/stop", self.url))
            .header("authorization", &self.token)
            .json(&wire::lrp::StopRequest { instance: key })
            .send()
            .await
            .expect("stop");
        assert_eq!(res.status(), 202);
    }

    /// The report of `kind` (`claim`, `start`, `crash`, `remove`) for `l`, waiting for it.
    pub async fn report(&self, kind: &str, l: &LrpStart, within: Duration) -> InstanceReport {
        let what = format!("{kind} report of {}", l.instance_guid);
        testkit::eventually(&what, within, || async { self.scheduler.find(kind, &l.instance_guid) })
            .await
            .expect("report")
    }

    /// Log lines of `l`'s app with a source type starting with `source_type`, in order.
    pub fn log_lines(&self, l: &LrpStart, source_type: &str) -> Vec<String> {
        self.envelopes
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, e)| {
                e.source_id == l.desired.log_guid
                    && e.instance_id == l.index.to_string()
                    && e.source_type().is_some_and(|s| s.starts_with(source_type))
            })
            .filter_map(|(_, e)| e.log_text())
            .collect()
    }

    /// Wait for a log line of `l` (source type prefix) containing `needle`; all lines so far.
    pub async fn wait_log(
        &self,
        l: &LrpStart,
        source_type: &str,
        needle: &str,
        within: Duration,
    ) -> Vec<String> {
        let what = format!("a {source_type} line containing {needle:?}");
        let found = testkit::eventually(&what, within, || async {
            let lines = self.log_lines(l, source_type);
            lines.iter().any(|x| x.contains(needle)).then_some(lines)
        })
        .await;
        match found {
            Ok(lines) => lines,
            Err(e) => panic!("{e}; lines so far: {:#?}", self.log_lines(l, "")),
        }
    }

    /// The instance directory of `l` on this cell (runc: bundle, upper layer, rootfs; process:
    /// the droplet's copy).
    pub fn instance_dir(&self, l: &LrpStart) -> PathBuf {
        self.cfg.data_dir.join("instances").join(cell::backend::runc::short_id(&l.instance_guid))
    }

    /// The pid of `l`'s app as its pid file says (runc writes the container's first process;
    /// the process backend the group leader, with its start time).
    pub fn app_pid(&self, l: &LrpStart) -> u32 {
        let text = std::fs::read_to_string(self.instance_dir(l).join("pid")).expect("pid file");
        text.split_whitespace().next().and_then(|p| p.parse().ok()).expect("a pid")
    }

    pub async fn shut_down(self) {
        self.shutdown.cancel();
        self.task.await.expect("join").expect("clean stop");
    }
}

/// The processes on the host that belong to instance `instance_guid` (their environment says
/// so), on either backend; zombies have none and do not count.
pub fn processes_of_instance(instance_guid: &str) -> Vec<u32> {
    let needle = format!("CF_INSTANCE_GUID={instance_guid}");
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let environ = std::fs::read(e.path().join("environ")).unwrap_or_default();
        if environ.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

/// Command lines of every process on the host.
pub fn host_cmdlines() -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            out.push(String::from_utf8_lossy(&c).replace('\0', " "));
        }
    }
    out
}

/// Whatever a failed test left: the process groups of its process instances, containers and
/// mounts under the cell's data directory, the network namespaces and veths on its bridge,
/// the bridge and the tables.
pub struct NetCleanup(pub cell::Config);

impl Drop for NetCleanup {
    fn drop(&mut self) {
        let sh = |c: String| {
            let _ = std::process::Command::new("sh").args(["-c", &c]).output();
        };
        let instances = self.0.data_dir.join("instances");
        for dir in std::fs::read_dir(instances).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(dir.path().join("pid")).unwrap_or_default();
            if let Some((pgid, start)) = cell::backend::process::parse_pid_file(&text) {
                if cell::procfs::is_group_of(std::path::Path::new("/proc"), pgid, start) {
                    sh(format!("/usr/bin/kill -KILL -- -{pgid}"));
                }
            }
        }
        let data = self.0.data_dir.display().to_string();
        sh(format!(
            "runc list -f json | python3 -c 'import json,sys; \
             [print(c[\"id\"]) for c in (json.load(sys.stdin) or []) if c[\"bundle\"].startswith(\"{data}\")]' \
             | xargs -r -n1 runc delete --force"
        ));
        sh(format!("grep ' {data}' /proc/self/mountinfo | cut -d' ' -f5 | xargs -r -n1 umount -l"));
        sh(format!(
            "ip -o link show master {0} | grep -o 'link-netns [^ ]*' | cut -d' ' -f2 \
               | xargs -r -n1 ip netns del; \
             ip -o link show master {0} | cut -d: -f2 | cut -d@ -f1 | xargs -r -n1 ip link del; \
             ip link del {0} 2>/dev/null",
            self.0.bridge
        ));
        sh(format!(
            "nft delete table ip {0} 2>/dev/null; nft delete table bridge {0} 2>/dev/null",
            self.0.nft_table
        ));
    }
}

/// `hog` (over its memory) crashes with status 137 "(out of memory)" and a `CELL` line on
/// `logs.cell`; `killed` (a plain SIGKILL, the same status) is not called out of memory.
pub async fn out_of_memory_is_told_apart(c: &Cell, hog: &LrpStart, killed: &LrpStart) {
    let crash = c.report("crash", hog, Duration::from_secs(30)).await;
    assert_eq!(crash.exit_status, Some(137), "{crash:?}");
    assert_eq!(
        crash.crash_reason.as_deref(),
        Some("APP/PROC/WEB: Exited with status 137 (out of memory)")
    );
    let cell_lines = c.wait_log(hog, "CELL", "out of memory", Duration::from_secs(10)).await;
    let subjects: std::collections::BTreeSet<String> = c
        .envelopes
        .lock()
        .expect("lock")
        .iter()
        .filter(|(_, e)| e.source_id == hog.desired.log_guid && e.source_type() == Some("CELL"))
        .map(|(s, _)| s.clone())
        .collect();
    assert_eq!(
        subjects,
        std::collections::BTreeSet::from(["logs.cell".to_owned()]),
        "{cell_lines:?}"
    );

    let other = c.report("crash", killed, Duration::from_secs(30)).await;
    assert_eq!(other.exit_status, Some(137), "{other:?}");
    assert_eq!(other.crash_reason.as_deref(), Some("APP/PROC/WEB: Exited with status 137"));
}
