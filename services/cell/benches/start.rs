//! How fast a cell starts instances, on real runc containers of a real droplet (port health
//! check), as root with the test stack; for a Python `http.server` app, then for the smallest
//! listener the stack can run (what is left is the cell's own share):
//!
//! 1. start request → healthy (the cell's `start` report) for an instance whose droplet layer is
//!    cached: p50/p99 over 20 starts, one at a time. Goal ≤ 300 ms.
//! 2. 100 instances of one app in one work request → all healthy. Goal ≤ 10 s.
//!
//! Also prints where the time of a start goes, from the cell's own `CELL` log lines (a cell logs
//! each instance's steps — image, network, rootfs, healthy — in its `instance healthy` line).
//! Run: `cargo bench -p cell --bench start` (root; the stack in `PAAS_TEST_STACK_DIR`).

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bus::DynBus;
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use wire::envelope::Envelope;
use wire::lrp::{ActualLrp, CellPresence, InstanceReport, LrpStart, Work};

const STARTS: usize = 20;
const MANY: u32 = 100;

/// The scheduler's side: when each report arrived.
struct Timeline(mpsc::UnboundedSender<(String, String, Option<String>, Instant)>);

impl cell::report::Reporter for Timeline {
    fn presence<'a>(&'a self, _: &'a CellPresence) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    fn report<'a>(
        &'a self,
        kind: &'a str,
        r: &'a InstanceReport,
    ) -> BoxFuture<'a, Result<(), String>> {
        let at = Instant::now();
        let guid = r.instance.instance_guid.clone();
        let _ = self.0.send((kind.to_owned(), guid, r.crash_reason.clone(), at));
        Box::pin(async { Ok(()) })
    }
    fn evacuate<'a>(&'a self, _: &'a InstanceReport) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async { Ok(false) })
    }
    /// The benchmark's scheduler has nothing on the cell beyond what the cell holds.
    fn actual<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<ActualLrp>, String>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

struct Reports {
    rx: mpsc::UnboundedReceiver<(String, String, Option<String>, Instant)>,
    seen: HashMap<(String, String), Instant>,
}

impl Reports {
    /// Wait for the `kind` report of every guid in `guids`; when each came.
    async fn wait_all(&mut self, kind: &str, guids: &[String]) -> Vec<Instant> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let done: Option<Vec<Instant>> = guids
                .iter()
                .map(|g| self.seen.get(&(kind.to_owned(), g.clone())).copied())
                .collect();
            if let Some(done) = done {
                return done;
            }
            let next = tokio::time::timeout_at(deadline, self.rx.recv()).await;
            let (k, guid, reason, at) =
                next.expect("reports in time").expect("the cell is running");
            assert!(k != "crash", "instance {guid} crashed: {reason:?}");
            self.seen.insert((k, guid), at);
        }
    }
}

fn droplet(dir: &Path) -> (PathBuf, String) {
    let root = dir.join("droplet");
    for d in ["app", "deps", "profile.d", "tmp", "logs"] {
        std::fs::create_dir_all(root.join(d)).expect("dir");
    }
    std::fs::write(root.join("app/index.html"), "hello\n").expect("index");
    std::fs::write(root.join("staging_info.yml"), "start_command: serve\n").expect("info");
    let tgz = dir.join("droplet.tgz");
    let written = archive::write_tar_gz(&root, &tgz).expect("tgz");
    (tgz, written.sha256)
}

async fn serve_file(path: PathBuf) -> String {
    let app = axum::Router::new().route(
        "/droplet",
        axum::routing::get(move || {
            let path = path.clone();
            async move { tokio::fs::read(path).await.unwrap_or_default() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/droplet", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// An app of the benchmark: what it runs.
#[derive(Clone, Copy)]
struct App {
    name: &'static str,
    command: &'static str,
}

/// A Python `http.server` (a real app: ~90 ms of CPU to start), then the smallest listener
/// the stack can run (perl), which leaves the cell's own share of a start.
const APPS: [App; 2] = [
    App { name: "python http.server", command: "exec python3 -m http.server $PORT" },
    App {
        name: "minimal listener",
        command: "exec perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalPort => \
                  $ENV{PORT}, Listen => 64, ReuseAddr => 1) or die; \
                  while (accept(my $c, $s)) { close $c }'",
    },
];

struct Bench {
    app: App,
    url: String,
    token: String,
    http: reqwest::Client,
    reports: Reports,
    cell_lines: Arc<Mutex<Vec<Envelope>>>,
    droplet_url: String,
    sha: String,
}

impl Bench {
    fn lrp(&self, process: &str, index: u32) -> LrpStart {
        let process = format!("{process}-{}", self.app.name.replace(' ', "-"));
        let desired = serde_json::from_value(serde_json::json!({
            "process_guid": process, "log_guid": format!("app-{process}"), "instances": MANY,
            "memory_mb": 128, "disk_mb": 256, "stack": "bookworm",
            "start_command": self.app.command,
            "image": {"droplet_guid": "d", "droplet_url": self.droplet_url, "droplet_sha256": self.sha},
            "health_check": {"type": "port"},
            "routes": [{"uri": "bench.apps.localhost"}]
        }))
        .expect("desired");
        LrpStart { desired, index, instance_guid: uuid::Uuid::new_v4().to_string() }
    }

    async fn post<T: serde::Serialize>(&self, path: &str, body: &T) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.url))
            .header("authorization", &self.token)
            .json(body)
            .send()
            .await
            .expect("cell API")
    }

    async fn work(&self, lrps: Vec<LrpStart>) {
        let res = self.post("/internal/v1/work", &Work { lrps }).await;
        let result: wire::lrp::WorkResult = res.json().await.expect("work result");
        assert!(result.failed.is_empty(), "the cell refused work: {:?}", result.failed);
    }

    async fn stop(&mut self, lrps: &[LrpStart]) -> Duration {
        let t = Instant::now();
        for l in lrps {
            let key = wire::lrp::InstanceKey {
                process_guid: l.desired.process_guid.clone(),
                index: l.index,
                instance_guid: l.instance_guid.clone(),
            };
            let res =
                self.post("/internal/v1/stop", &wire::lrp::StopRequest { instance: key }).await;
            assert_eq!(res.status(), 202);
        }
        let guids: Vec<String> = lrps.iter().map(|l| l.instance_guid.clone()).collect();
        self.reports.wait_all("remove", &guids).await;
        t.elapsed()
    }

    /// When the cell logged each of its start-up lines for the instance (Unix ns).
    fn phases(&self, l: &LrpStart) -> HashMap<&'static str, i64> {
        let mut out = HashMap::new();
        for e in self.cell_lines.lock().expect("lock").iter() {
            if e.source_id != l.desired.log_guid || e.instance_id != l.index.to_string() {
                continue;
            }
            let text = e.log_text().unwrap_or_default();
            for (key, prefix) in [
                ("creating", "Creating container"),
                ("created", "Successfully created container"),
                ("healthy", "Container became healthy"),
            ] {
                if text.starts_with(prefix) {
                    out.insert(key, e.timestamp);
                }
            }
        }
        out
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

async fn start_cell(
    tmp: &Path,
) -> (Bench, kit::Shutdown, tokio::task::JoinHandle<Result<(), cell::Error>>, cell::Config) {
    let pid = std::process::id();
    let stacks = stack::test_cache_dir();
    stack::find(&stacks, stack::DEFAULT_STACK).expect("the test stack (deploy/test.sh builds it)");
    let cfg = cell::Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        cell_id: format!("bench-cell-{pid}"),
        memory_mb: 16384,
        disk_mb: 65536,
        data_dir: tmp.join("cell"),
        stacks_dir: stacks,
        backend: "runc".into(),
        bridge: format!("pbn{}", pid % 100_000),
        subnet: Ipv4Addr::new(10, 211, u8::try_from(pid % 200 + 20).expect("fits"), 0),
        nft_table: format!("paas_bench_{pid}"),
        host_port_min: 65100,
        host_port_max: 65299,
        graceful_stop_secs: 5,
        ..Default::default()
    };
    let issuer = testkit::tokens::Issuer::new("k", "http://api.test/oauth/token");
    let (tx, rx) = mpsc::unbounded_channel();
    let bus: DynBus = Arc::new(bus::InProcessBus::new());
    let cell_lines = Arc::new(Mutex::new(Vec::new()));
    let mut sub = bus.subscribe("logs.cell").await.expect("subscribe");
    let sink = cell_lines.clone();
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Ok(e) = serde_json::from_slice::<Envelope>(&m.payload) {
                sink.lock().expect("lock").push(e);
            }
        }
    });
    let parts = cell::Parts {
        host: Arc::new(::container::RealHost),
        reporter: Arc::new(Timeline(tx)),
        verifier: Arc::new(issuer.verifier()),
        token: None,
    };
    let service = cell::build_with(cfg.clone(), cell::Deps { bus }, parts).await.expect("build");
    let url = format!("http://{}", service.local_addr());
    let shutdown = kit::Shutdown::new();
    let task = tokio::spawn(service.run(shutdown.clone()));
    testkit::wait_http_ok(&format!("{url}/readyz"), Duration::from_secs(10)).await.expect("ready");
    let (tgz, sha) = droplet(tmp);
    let droplet_url = serve_file(tgz).await;
    let bench = Bench {
        app: APPS[0],
        url,
        token: issuer.token(&[auth::SCOPE_INTERNAL], 3600),
        http: reqwest::Client::new(),
        reports: Reports { rx, seen: HashMap::new() },
        cell_lines,
        droplet_url,
        sha,
    };
    (bench, shutdown, task, cfg)
}

/// One instance at a time: request → healthy, with the cell's phases.
async fn single_starts(b: &mut Bench) {
    let first = b.lrp("warm-up", 0);
    let t = Instant::now();
    b.work(vec![first.clone()]).await;
    b.reports.wait_all("start", std::slice::from_ref(&first.instance_guid)).await;
    println!("first start (droplet downloaded and extracted if new): {}", ms(t.elapsed()));
    b.stop(&[first]).await;

    let mut total = Vec::new();
    let mut stops = Vec::new();
    let mut split: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for i in 0..STARTS {
        let l = b.lrp(&format!("single-{i}"), 0);
        let (t, wall) = (Instant::now(), wire::envelope::now_ns());
        b.work(vec![l.clone()]).await;
        let at = b.reports.wait_all("start", std::slice::from_ref(&l.instance_guid)).await;
        total.push(at[0] - t);
        let p = testkit::eventually("the CELL lines", Duration::from_secs(5), || async {
            Some(b.phases(&l)).filter(|p| p.contains_key("healthy"))
        })
        .await
        .expect("the cell logged the start");
        let span = |from: i64, to: Option<&i64>| {
            Duration::from_nanos(u64::try_from(to.copied().unwrap_or(from) - from).unwrap_or(0))
        };
        let creating = p.get("creating").copied().unwrap_or(wall);
        split.entry("1 request → claimed").or_default().push(span(wall, Some(&creating)));
        split.entry("2 image, network, rootfs").or_default().push(span(creating, p.get("created")));
        let created = p.get("created").copied().unwrap_or(creating);
        split.entry("3 runc, app start, check").or_default().push(span(created, p.get("healthy")));
        stops.push(b.stop(&[l]).await);
    }
    total.sort();
    stops.sort();
    println!(
        "start → healthy, cached image, {STARTS} starts: p50 {}  p99 {}  max {}  (goal p99 ≤ 300 ms)",
        ms(pct(&total, 0.5)),
        ms(pct(&total, 0.99)),
        ms(total[total.len() - 1])
    );
    for (name, mut v) in split {
        v.sort();
        println!("  {name:<27} p50 {}  max {}", ms(pct(&v, 0.5)), ms(v[v.len() - 1]));
    }
    println!("stop → removed: p50 {}  max {}", ms(pct(&stops, 0.5)), ms(stops[stops.len() - 1]));
}

/// One work request with 100 instances of one app → all healthy.
async fn many_starts(b: &mut Bench) {
    let lrps: Vec<LrpStart> = (0..MANY).map(|i| b.lrp("many", i)).collect();
    let guids: Vec<String> = lrps.iter().map(|l| l.instance_guid.clone()).collect();
    let t = Instant::now();
    b.work(lrps.clone()).await;
    let mut at: Vec<Duration> =
        b.reports.wait_all("start", &guids).await.into_iter().map(|i| i - t).collect();
    let all = t.elapsed();
    at.sort();
    println!(
        "{MANY} instances of one app → all healthy: {}  (first {}, median {}; goal ≤ 10 s)",
        ms(at[at.len() - 1]),
        ms(at[0]),
        ms(pct(&at, 0.5))
    );
    assert!(all >= at[at.len() - 1]);
    let stopped = b.stop(&lrps).await;
    println!("{MANY} instances stopped and released: {}", ms(stopped));
}

fn main() {
    let root = std::fs::read_to_string("/proc/self/status")
        .is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:") && l.contains("\t0\t")));
    if !root || !cell::runc_usable() {
        eprintln!("the cell benchmark starts runc containers: run it as root with runc installed");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut b, shutdown, task, cfg) = start_cell(tmp.path()).await;
        for app in APPS {
            b.app = app;
            println!("\n== {}: {}", app.name, app.command);
            single_starts(&mut b).await;
            many_starts(&mut b).await;
        }
        shutdown.cancel();
        task.await.expect("join").expect("clean stop");
        let sh = |c: String| {
            let _ = std::process::Command::new("sh").args(["-c", &c]).output();
        };
        sh(format!("ip link del {} 2>/dev/null", cfg.bridge));
        sh(format!(
            "nft delete table ip {0} 2>/dev/null; nft delete table bridge {0} 2>/dev/null",
            cfg.nft_table
        ));
    });
}
