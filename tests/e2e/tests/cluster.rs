//! Several hosts, one platform: three "hosts" on this machine as network namespaces, each with
//! its own address on one bridge, a NATS server clustered with the other two, a cell and a
//! router; two api processes behind a TCP balancer, two schedulers (leader and standby on one
//! PostgreSQL database), a stager and the logs service spread over the hosts; PostgreSQL in the
//! root namespace on the bridge's address. Every process is `paasd run --services X` entered
//! into its host's network namespace.
//!
//! A 6-instance static app is pushed and must be placed on all three cells and served by every
//! router. Then, under a steady request load through the router of a host that survives
//! everything, components are killed with SIGKILL and the figures operators care about are
//! measured and bounded:
//! (a) the scheduler leader: the standby leads within 15 s, and a push under way completes;
//! (b) a cell with its containers (a dead host): its instances run on the others within 20 s,
//!     and the load never fails for longer than a few seconds;
//! (c) an api (the other serves), a router (the others serve), a NATS node (routes keep
//!     flowing: a scale-up is routed by every surviving router);
//! (d) host 1 cut off (its link down): its instances run on host 2's cell within 30 s; when
//!     it comes back the router of host 3 serves without failures. How long its stale copies
//!     take to stop, and what that router does while the host is cut off, are measured and
//!     printed, not bounded: requests on its keep-alive connections to the cut-off instances
//!     wait for answers that cannot come.
//!
//! Ports inside the hosts' namespaces are fixed (nothing else lives there); the root
//! namespace's (PostgreSQL, the balancer) are free ones.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A binary built next to this test by `cargo test --workspace`.
fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    assert!(p.exists(), "{} is missing: run the suite with `cargo test --workspace`", p.display());
    p
}

/// Run a shell line; its output (cleanup steps ignore failures).
fn sh(line: &str) -> Output {
    Command::new("sh").args(["-c", line]).output().expect("sh runs")
}

/// Run a shell line that must succeed.
fn must(line: &str) {
    let out = sh(line);
    assert!(
        out.status.success(),
        "`{line}` failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

const HOSTS: usize = 3;
const NATS_PORT: u16 = 4222;
const NATS_CLUSTER_PORT: u16 = 6222;
const API_PORT: u16 = 9000;
const LOGS_PORT: u16 = 9100;
const SCHEDULER_PORT: u16 = 9200;
const CELL_PORT: u16 = 9300;
const STAGER_PORT: u16 = 9400;
const ROUTER_PORT: u16 = 8080;
const ROUTER_STATUS_PORT: u16 = 8082;
const SECRET: &str = "cluster-component-secret";
const ADMIN_PASSWORD: &str = "cluster-admin-password";

/// The hosts' network: a bridge in the root namespace (`10.251.<n>.1`) and one namespace per
/// host with a veth on it (`10.251.<n>.11`, `.12`, `.13`).
struct Net {
    tag: u32,
    bridge: String,
    hosts: Vec<String>,
    third: u8,
}

impl Net {
    fn create() -> Self {
        let pid = std::process::id();
        let tag = pid % 100_000;
        let third = u8::try_from(pid % 200 + 20).expect("octet");
        let net = Self {
            tag,
            bridge: format!("pcb{tag}"),
            hosts: (1..=HOSTS).map(|k| format!("pcl{tag}h{k}")).collect(),
            third,
        };
        let gw = net.gateway();
        must(&format!(
            "ip link add {b} type bridge && ip addr add {gw}/24 dev {b} && ip link set {b} up",
            b = net.bridge
        ));
        for (k, ns) in net.hosts.iter().enumerate() {
            let ip = net.host_ip(k);
            let veth = format!("pch{tag}{}", k + 1);
            must(&format!(
                "ip netns add {ns} && ip link add {veth} type veth peer name cl0 netns {ns} && \
                 ip link set {veth} master {b} up && ip -n {ns} addr add {ip}/24 dev cl0 && \
                 ip -n {ns} link set cl0 up && ip -n {ns} link set lo up && \
                 ip -n {ns} route add default via {gw}",
                b = net.bridge
            ));
        }
        net
    }

    fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 251, self.third, 1)
    }

    fn host_ip(&self, k: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 251, self.third, 11 + u8::try_from(k).expect("host"))
    }

    fn url(&self, k: usize, port: u16) -> String {
        format!("http://{}:{port}", self.host_ip(k))
    }
}

impl Drop for Net {
    /// The hosts' namespaces take their veths, bridges and nftables with them.
    fn drop(&mut self) {
        for ns in &self.hosts {
            sh(&format!("ip netns del {ns}"));
        }
        sh(&format!("ip link del {}", self.bridge));
    }
}

/// One `paasd` (or `nats-server`) process in a host's namespace.
struct Proc {
    name: String,
    child: Child,
}

impl Proc {
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP balancer in the test process, as a deployment puts in front of its api replicas:
/// each connection goes to the next backend that accepts it.
fn balancer(
    listener: tokio::net::TcpListener,
    backends: Vec<SocketAddr>,
) -> tokio::task::JoinHandle<()> {
    let next = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else { continue };
            let (backends, next) = (backends.clone(), next.clone());
            tokio::spawn(async move {
                let first = next.fetch_add(1, Ordering::Relaxed);
                for k in 0..backends.len() {
                    let to = backends[(first + k) % backends.len()];
                    let connect = tokio::net::TcpStream::connect(to);
                    if let Ok(Ok(mut out)) =
                        tokio::time::timeout(Duration::from_secs(2), connect).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                        return;
                    }
                }
            });
        }
    })
}

/// Everything the test started; dropping it (also after a panic) stops the processes and
/// removes containers, container namespaces, mounts, the hosts' namespaces and the bridge.
struct Cluster {
    net: Net,
    procs: Vec<Proc>,
    dir: Option<tempfile::TempDir>,
    balancer: Option<tokio::task::JoinHandle<()>>,
    /// The api as clients reach it (the balancer).
    api: String,
    /// The databases of the api and the schedulers, on `pg`.
    api_db: String,
    scheduler_db: String,
    pg: testkit::Postgres,
}

impl Cluster {
    fn dir(&self) -> &Path {
        self.dir.as_ref().expect("dir").path()
    }

    /// Start `args` in host `k`'s namespace with `env`, its output in `<dir>/logs/<name>.log`.
    fn spawn(
        &mut self,
        name: &str,
        k: usize,
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
    ) {
        let logs = self.dir().join("logs");
        std::fs::create_dir_all(&logs).expect("logs dir");
        let log = std::fs::File::create(logs.join(format!("{name}.log"))).expect("log file");
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.net.hosts[k]))
            .arg("--")
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        for (key, v) in env {
            cmd.env(key, v);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{name} starts: {e}"));
        self.procs.push(Proc { name: name.to_owned(), child });
    }

    fn proc(&mut self, name: &str) -> &mut Proc {
        self.procs.iter_mut().find(|p| p.name == name).unwrap_or_else(|| panic!("no {name}"))
    }

    /// `paasd run --services <service>` on host `k`, with the cluster's settings and `extra`.
    fn paasd(&mut self, name: &str, service: &str, k: usize, extra: &[(&str, String)]) {
        let mut env = self.common_env(k);
        env.extend(extra.iter().map(|(key, v)| ((*key).to_owned(), v.clone())));
        env.push(("PAAS_DATA_DIR".into(), self.dir().join(name).display().to_string()));
        self.spawn(name, k, &bin("paasd"), &["run", "--services", service], &env);
    }

    fn common_env(&self, k: usize) -> Vec<(String, String)> {
        let net = &self.net;
        let ip = net.host_ip(k);
        // This host's NATS first, then the others.
        let nats: Vec<String> = (0..HOSTS)
            .map(|j| (k + j) % HOSTS)
            .map(|j| format!("nats://{}:{NATS_PORT}", net.host_ip(j)))
            .collect();
        let schedulers = format!("{},{}", net.url(0, SCHEDULER_PORT), net.url(1, SCHEDULER_PORT));
        let stacks = stack::test_cache_dir().display().to_string();
        let at = |port: u16| format!("{ip}:{port}");
        let env: Vec<(&str, String)> = vec![
            ("PAAS_BUS_KIND", "nats".into()),
            ("PAAS_BUS_URL", nats.join(",")),
            ("PAAS_API_ADDR", at(API_PORT)),
            ("PAAS_API_EXTERNAL_URL", self.api.clone()),
            ("PAAS_API_DATABASE_URL", self.api_db.clone()),
            ("PAAS_API_SCHEDULER_URL", schedulers.clone()),
            ("PAAS_API_LOGS_URL", net.url(1, LOGS_PORT)),
            ("PAAS_API_INTERNAL_CLIENT_SECRET", SECRET.into()),
            ("PAAS_API_BLOBSTORE_DIR", self.dir().join("blobs").display().to_string()),
            ("PAAS_ADMIN_PASSWORD", ADMIN_PASSWORD.into()),
            ("PAAS_SCHEDULER_ADDR", at(SCHEDULER_PORT)),
            ("PAAS_SCHEDULER_DATABASE_URL", self.scheduler_db.clone()),
            ("PAAS_SCHEDULER_API_URL", self.api.clone()),
            ("PAAS_SCHEDULER_INTERNAL_CLIENT_SECRET", SECRET.into()),
            // A cell whose heartbeats stop is lost after 10 s (default 15 s; heartbeats every
            // 2 s instead of 5 s), which leaves the 20 s bound room on a busy machine.
            ("PAAS_SCHEDULER_CELL_TTL_SECS", "10".into()),
            // A killed stager's build fails 10 s after its last heartbeat (30 s by default).
            ("PAAS_API_STAGING_HEARTBEAT_TIMEOUT_SECS", "10".into()),
            ("PAAS_STAGER_STATUS_ADDR", at(STAGER_PORT)),
            ("PAAS_STAGER_API_URL", self.api.clone()),
            ("PAAS_STAGER_INTERNAL_CLIENT_SECRET", SECRET.into()),
            ("PAAS_STAGER_STACKS_DIR", stacks.clone()),
            ("PAAS_CELL_ADDR", at(CELL_PORT)),
            ("PAAS_CELL_CELL_ID", format!("cell-{}", k + 1)),
            ("PAAS_CELL_EXTERNAL_IP", ip.to_string()),
            ("PAAS_CELL_API_URL", self.api.clone()),
            ("PAAS_CELL_SCHEDULER_URL", schedulers),
            ("PAAS_CELL_INTERNAL_CLIENT_SECRET", SECRET.into()),
            ("PAAS_CELL_BACKEND", "runc".into()),
            ("PAAS_CELL_STACKS_DIR", stacks),
            ("PAAS_CELL_BRIDGE", format!("pcc{}", k + 1)),
            ("PAAS_CELL_NFT_TABLE", format!("paas_cluster{}", k + 1)),
            ("PAAS_CELL_SUBNET", format!("10.{}.{}.0", 252 + k, net.third)),
            ("PAAS_CELL_HEARTBEAT_SECS", "2".into()),
            ("PAAS_CELL_BULK_SYNC_SECS", "5".into()),
            ("PAAS_CELL_EVACUATION_TIMEOUT_SECS", "0".into()),
            ("PAAS_CELL_GRACEFUL_STOP_SECS", "2".into()),
            ("PAAS_LOGS_ADDR", at(LOGS_PORT)),
            ("PAAS_LOGS_API_URL", self.api.clone()),
            ("PAAS_LOGS_INTERNAL_CLIENT_SECRET", SECRET.into()),
            ("PAAS_ROUTER_ADDR", at(ROUTER_PORT)),
            ("PAAS_ROUTER_STATUS_ADDR", at(ROUTER_STATUS_PORT)),
            ("PAAS_ROUTER_INDEX", k.to_string()),
            ("PAAS_ROUTER_WORKERS", "1".into()),
            ("RUST_LOG", "warn,paasd=info,scheduler=info,cell=info".into()),
        ];
        env.into_iter().map(|(key, v)| (key.to_owned(), v)).collect()
    }

    /// The runc containers whose bundles live under `under`: `(id, bundle)`.
    /// `runc list` fails now and then while another container comes or goes: asked again
    /// (`None` when it keeps failing).
    fn containers(under: &Path) -> Option<Vec<String>> {
        let under = under.display().to_string();
        for _ in 0..20 {
            let out = sh("runc list -f json");
            match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                Ok(list) if out.status.success() => {
                    return Some(
                        list.as_array()
                            .map(|a| {
                                a.iter()
                                    .filter(|c| {
                                        c["bundle"].as_str().is_some_and(|b| b.starts_with(&under))
                                    })
                                    .filter_map(|c| c["id"].as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    );
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        None
    }

    /// What a dead host loses: its containers (and with them their processes).
    fn kill_containers(under: &Path) -> usize {
        let ids = Self::containers(under).unwrap_or_default();
        for id in &ids {
            sh(&format!("runc kill {id} KILL; runc delete --force {id}"));
        }
        ids.len()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(b) = self.balancer.take() {
            b.abort();
        }
        // Stop in reverse start order: SIGTERM to all, then SIGKILL to what is left.
        for p in self.procs.iter_mut().rev() {
            if let Ok(None) = p.child.try_wait() {
                let pid = p.child.id().to_string();
                let _ = Command::new("kill").args(["-TERM", &pid]).stderr(Stdio::null()).status();
            }
        }
        let until = Instant::now() + Duration::from_secs(15);
        for p in self.procs.iter_mut().rev() {
            while Instant::now() < until {
                if let Ok(Some(_)) = p.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            p.kill9();
        }
        let Some(dir) = self.dir.take() else { return };
        let d = dir.path().display().to_string();
        Self::kill_containers(dir.path());
        // The containers' network namespaces, named in their bundles.
        sh(&format!(
            "grep -rhoa --include=config.json '/var/run/netns/paas-[A-Za-z0-9-]*' {d} | sort -u | \
             xargs -r -n1 basename | xargs -r -n1 ip netns del"
        ));
        sh(&format!("grep ' {d}' /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l"));
        if std::thread::panicking() || std::env::var_os("PAAS_CLUSTER_KEEP_LOGS").is_some() {
            let kept = dir.keep();
            eprintln!("[cluster] logs kept in {}/logs", kept.display());
        }
    }
}

/// One user's `paas`, with its own config home; runs without blocking the runtime.
struct User {
    home: tempfile::TempDir,
}

impl User {
    fn new() -> Self {
        Self { home: tempfile::tempdir().expect("home") }
    }

    fn command(&self, dir: Option<&Path>, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(bin("paas"));
        cmd.args(args)
            .env("PAAS_HOME", self.home.path())
            .env("PAAS_POLL_MS", "200")
            .env("NO_COLOR", "1")
            .kill_on_drop(true);
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        cmd
    }

    async fn run_in(&self, dir: Option<&Path>, args: &[&str]) -> Output {
        self.command(dir, args).output().await.expect("paas runs")
    }

    /// `paas args` in `dir`, running on while the test goes on.
    fn spawn_in(&self, dir: &Path, args: &[&str]) -> tokio::task::JoinHandle<Output> {
        let out = self.command(Some(dir), args).output();
        tokio::spawn(async move { out.await.expect("paas runs") })
    }

    async fn ok(&self, dir: Option<&Path>, args: &[&str]) -> String {
        let out = self.run_in(dir, args).await;
        let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success(),
            "paas {args:?} failed ({:?}):\n{so}\n{se}",
            out.status.code()
        );
        so.into_owned()
    }

    /// `(state, host)` of each instance of `app`.
    async fn instances(&self, app: &str) -> Option<Vec<(String, String)>> {
        let out = self.run_in(None, &["app", app, "--json"]).await;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let stats = v["processes"][0]["stats"].as_array()?;
        Some(
            stats
                .iter()
                .map(|s| {
                    let state = s["state"].as_str().unwrap_or("").to_owned();
                    (state, s["host"].as_str().unwrap_or("").to_owned())
                })
                .collect(),
        )
    }
}

async fn get(router: &str, host: &str) -> Option<(u16, String)> {
    let res = reqwest::Client::new()
        .get(format!("{router}/"))
        .header("host", host)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .ok()?;
    let status = res.status().as_u16();
    Some((status, res.text().await.ok()?))
}

/// Poll `router` until `host` answers 200 with `want` in the body.
async fn served(router: &str, host: &str, want: &str, within: Duration) {
    testkit::eventually(&format!("{router} serves {host}"), within, || async {
        let (st, body) = get(router, host).await?;
        (st == 200 && body.contains(want)).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// The addresses (`ip:port`) of the endpoints a router holds for `host`.
async fn endpoints(status: &str, host: &str) -> Option<Vec<String>> {
    let v: serde_json::Value =
        reqwest::get(format!("{status}/routes")).await.ok()?.json().await.ok()?;
    let list = v[host].as_array()?;
    Some(list.iter().filter_map(|e| e["address"].as_str().map(str::to_owned)).collect())
}

/// Whether the scheduler at `url` leads (its `paas_scheduler_leader` gauge).
async fn leads(url: &str) -> Option<bool> {
    let text = reqwest::get(format!("{url}/metrics")).await.ok()?.text().await.ok()?;
    let line = text.lines().find(|l| l.starts_with("paas_scheduler_leader "))?;
    Some(line.ends_with(" 1"))
}

#[derive(Default, Clone, Debug)]
struct LoadStats {
    ok: u64,
    failed: u64,
    longest_failure: Duration,
    failing_since: Option<Instant>,
    /// The slowest answer (a router waiting on a backend that does not answer).
    slowest: Duration,
    /// What the failed requests got.
    errors: Vec<String>,
}

/// Requests through one router every 20 ms until stopped (bounded: ten minutes), counting
/// failures (errors and non-200 answers, or no answer within 10 s — longer than the router's
/// 5 s dial timeout, so its own retry is measured) and the longest run of them.
struct Load {
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<LoadStats>>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(router: &str, host: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(LoadStats::default()));
        let (router, host, flag, out) =
            (router.to_owned(), host.to_owned(), stop.clone(), stats.clone());
        let task = tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .pool_max_idle_per_host(0)
                .build()
                .expect("client");
            let until = Instant::now() + Duration::from_secs(600);
            while !flag.load(Ordering::SeqCst) && Instant::now() < until {
                let sent = Instant::now();
                let res = http.get(format!("{router}/")).header("host", &host).send().await;
                let good = matches!(&res, Ok(r) if r.status() == 200);
                let why = match &res {
                    Ok(r) => format!("status {}", r.status()),
                    Err(e) => format!("{e:?}"),
                };
                let now = Instant::now();
                {
                    let mut s = out.lock().expect("stats");
                    s.slowest = s.slowest.max(now - sent);
                    if good {
                        s.ok += 1;
                        s.failing_since = None;
                    } else {
                        s.failed += 1;
                        s.errors.push(why);
                        let since = *s.failing_since.get_or_insert(sent);
                        s.longest_failure = s.longest_failure.max(now - since);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Self { stop, stats, task }
    }

    /// The figures since the last call, and a fresh count.
    fn take(&self) -> LoadStats {
        let mut s = self.stats.lock().expect("stats");
        let out = s.clone();
        *s = LoadStats { failing_since: s.failing_since, ..LoadStats::default() };
        out
    }

    async fn finish(self) -> LoadStats {
        self.stop.store(true, Ordering::SeqCst);
        let Self { stats, task, .. } = self;
        let _ = task.await;
        let s = stats.lock().expect("stats");
        s.clone()
    }
}

/// A buildpack that detects anything and takes ten minutes to compile (a staging to cut off),
/// zipped in `scratch`; its path.
fn slow_buildpack(scratch: &Path) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = scratch.join("slow-buildpack");
    std::fs::create_dir_all(dir.join("bin")).expect("bin");
    for (name, body) in [
        ("detect", "#!/bin/sh\necho slow\n"),
        ("compile", "#!/bin/sh\necho '-----> compiling slowly'\nsleep 600\n"),
        (
            "release",
            "#!/bin/sh\nprintf -- '---\\ndefault_process_types:\\n  web: sleep 100000\\n'\n",
        ),
    ] {
        let path = dir.join("bin").join(name);
        std::fs::write(&path, body).expect("script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("mode");
    }
    let files: Vec<PathBuf> = ["bin", "bin/detect", "bin/compile", "bin/release"]
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let zip = scratch.join("slow-buildpack.zip");
    archive::zip_dir(&dir, &files, std::fs::File::create(&zip).expect("zip")).expect("zipped");
    zip.display().to_string()
}

/// The static fixture named `name`, in `scratch`.
fn static_app(scratch: &Path, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/static");
    let dir = scratch.join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(src.join("index.html"), dir.join("index.html")).expect("index");
    std::fs::write(
        dir.join("manifest.yml"),
        format!("applications:\n- name: {name}\n  memory: 64M\n"),
    )
    .expect("manifest");
    dir
}

async fn start_cluster() -> Cluster {
    let net = Net::create();
    // PostgreSQL of this test's own, on the bridge's address, which every host reaches. It
    // stops when the test process exits.
    let pg = testkit::Postgres::dedicated(net.gateway()).await.expect("postgres");
    let api_db = pg.fresh_database().await.expect("api db");
    let scheduler_db = pg.fresh_database().await.expect("scheduler db");
    let lb = tokio::net::TcpListener::bind((net.gateway(), 0)).await.expect("balancer");
    let api = format!("http://{}", lb.local_addr().expect("addr"));
    let backends = (0..2).map(|k| SocketAddr::from((net.host_ip(k), API_PORT))).collect();
    let mut c = Cluster {
        net,
        procs: Vec::new(),
        dir: Some(tempfile::tempdir().expect("tmp")),
        balancer: Some(balancer(lb, backends)),
        api,
        api_db,
        scheduler_db,
        pg,
    };

    // NATS on every host, each routed to the other two.
    for k in 0..HOSTS {
        let ip = c.net.host_ip(k);
        let routes: Vec<String> = (0..HOSTS)
            .filter(|j| *j != k)
            .map(|j| format!("nats://{}:{NATS_CLUSTER_PORT}", c.net.host_ip(j)))
            .collect();
        let (port, cluster) = (NATS_PORT.to_string(), format!("nats://{ip}:{NATS_CLUSTER_PORT}"));
        let args = [
            "-a",
            &ip.to_string(),
            "-p",
            &port,
            "--cluster_name",
            "paas",
            "--cluster",
            &cluster,
            "--routes",
            &routes.join(","),
        ];
        c.spawn(&format!("nats{}", k + 1), k, Path::new("nats-server"), &args, &[]);
    }
    for k in 0..HOSTS {
        let url = format!("{}:{NATS_PORT}", c.net.host_ip(k));
        testkit::eventually("nats listens", Duration::from_secs(20), || {
            let url = url.clone();
            async move { tokio::net::TcpStream::connect(url).await.ok() }
        })
        .await
        .expect("nats up");
    }
    let ready = |url: String| async move {
        testkit::wait_http_ok(&format!("{url}/readyz"), Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    };
    // api 1 first (migrations, the admin), then the rest.
    c.paasd("api1", "api", 0, &[]);
    ready(c.net.url(0, API_PORT)).await;
    c.paasd("api2", "api", 1, &[]);
    c.paasd("scheduler1", "scheduler", 0, &[]);
    ready(c.net.url(0, SCHEDULER_PORT)).await;
    testkit::eventually("scheduler 1 leads", Duration::from_secs(20), || {
        leads_is(c.net.url(0, SCHEDULER_PORT))
    })
    .await
    .expect("scheduler 1 leads");
    c.paasd("scheduler2", "scheduler", 1, &[]);
    c.paasd("stager", "stager", 0, &[]);
    c.paasd("logs", "logs", 1, &[]);
    for k in 0..HOSTS {
        c.paasd(&format!("cell{}", k + 1), "cell", k, &[]);
        c.paasd(&format!("router{}", k + 1), "router", k, &[]);
    }
    for url in [
        c.net.url(1, API_PORT),
        c.net.url(1, SCHEDULER_PORT),
        c.net.url(0, STAGER_PORT),
        c.net.url(1, LOGS_PORT),
    ] {
        ready(url).await;
    }
    for k in 0..HOSTS {
        ready(c.net.url(k, CELL_PORT)).await;
        ready(c.net.url(k, ROUTER_STATUS_PORT)).await;
    }
    c
}

async fn leads_is(url: String) -> Option<()> {
    leads(&url).await?.then_some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hosts_survive_the_loss_of_each_component() {
    let started = Instant::now();
    let mut c = start_cluster().await;
    eprintln!("[cluster] three hosts up in {:?} ({} processes)", started.elapsed(), c.procs.len());
    let routers: Vec<String> = (0..HOSTS).map(|k| c.net.url(k, ROUTER_PORT)).collect();
    let statuses: Vec<String> = (0..HOSTS).map(|k| c.net.url(k, ROUTER_STATUS_PORT)).collect();
    let hosts: Vec<String> = (0..HOSTS).map(|k| c.net.host_ip(k).to_string()).collect();

    let scratch = tempfile::tempdir().expect("scratch");
    let admin = User::new();
    admin.ok(None, &["login", "-a", &c.api, "-u", "admin", "-p", ADMIN_PASSWORD]).await;
    admin.ok(None, &["create-org", "acme"]).await;
    admin.ok(None, &["create-space", "dev", "-o", "acme"]).await;
    admin.ok(None, &["target", "-o", "acme", "-s", "dev"]).await;

    // A 6-instance app on all three cells, served by every router.
    let host = "web.apps.localhost";
    let pushed = Instant::now();
    admin.ok(Some(&static_app(scratch.path(), "web")), &["push", "-i", "6"]).await;
    let placed =
        testkit::eventually("6 instances running on 3 cells", Duration::from_secs(90), || async {
            let inst = admin.instances("web").await?;
            let running: Vec<&String> =
                inst.iter().filter(|(s, _)| s == "RUNNING").map(|(_, h)| h).collect();
            let on_all = hosts.iter().all(|h| running.contains(&h));
            (running.len() == 6 && on_all).then_some(inst)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for r in &routers {
        served(r, host, "static fixture v1", Duration::from_secs(30)).await;
    }
    let per_cell: Vec<usize> =
        hosts.iter().map(|h| placed.iter().filter(|(_, x)| x == h).count()).collect();
    eprintln!(
        "[cluster] push of 6 instances to served by 3 routers: {:?}; per cell {per_cell:?}",
        pushed.elapsed()
    );

    // Load through the router of host 1, which survives everything below.
    let load = Load::start(&routers[0], host);

    // (a) The scheduler leader dies; a push is under way.
    assert_eq!(leads(&c.net.url(0, SCHEDULER_PORT)).await, Some(true), "scheduler 1 leads");
    let second = static_app(scratch.path(), "second");
    let push = admin.spawn_in(&second, &["push"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Instant::now();
    c.proc("scheduler1").kill9();
    testkit::eventually("scheduler 2 leads", Duration::from_secs(15), || {
        leads_is(c.net.url(1, SCHEDULER_PORT))
    })
    .await
    .expect("the standby leads within 15 s");
    let failover = killed.elapsed();
    let out = tokio::time::timeout(Duration::from_secs(120), push)
        .await
        .expect("push ends")
        .expect("push task");
    assert!(
        out.status.success(),
        "a push during the failover completes:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    served(&routers[0], "second.apps.localhost", "static fixture v1", Duration::from_secs(30))
        .await;
    let a = load.take();
    eprintln!(
        "[cluster] (a) scheduler leader killed: standby leads after {failover:?}; push during the failover took {:?}; load: {} ok, {} failed, longest failure {:?}",
        killed.elapsed(),
        a.ok,
        a.failed,
        a.longest_failure
    );

    // (b) Host 3's cell dies with its containers.
    let lost = Instant::now();
    c.proc("cell3").kill9();
    let gone = Cluster::kill_containers(&c.dir().join("cell3"));
    let healed = testkit::eventually(
        "6 instances running on cells 1 and 2",
        Duration::from_secs(20),
        || async {
            let inst = admin.instances("web").await?;
            let ok = inst.len() == 6 && inst.iter().all(|(s, h)| s == "RUNNING" && *h != hosts[2]);
            ok.then_some(())
        },
    )
    .await;
    let heal = lost.elapsed();
    healed.unwrap_or_else(|e| panic!("{e}"));
    // Let the router settle on the new instances, then count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b = load.take();
    eprintln!(
        "[cluster] (b) cell 3 killed with {gone} containers: 6 instances running elsewhere after {heal:?}; load through router 1: {} ok, {} failed, longest failure {:?}",
        b.ok, b.failed, b.longest_failure
    );
    assert!(
        b.longest_failure <= Duration::from_secs(5),
        "router 1 failed for {:?}: {:?}",
        b.longest_failure,
        b.errors
    );

    // (c) An api, a router and a NATS node die.
    c.proc("api1").kill9();
    let info = reqwest::get(format!("{}/v3/info", c.net.url(1, API_PORT))).await.expect("api 2");
    assert!(info.status().is_success(), "api 2 answers: {}", info.status());
    let apps = admin.ok(None, &["apps"]).await;
    assert!(apps.contains("web") && apps.contains("second"), "through the balancer: {apps}");
    c.proc("router2").kill9();
    for r in [&routers[0], &routers[2]] {
        served(r, host, "static fixture v1", Duration::from_secs(5)).await;
    }
    c.proc("nats1").kill9();
    let scaled = Instant::now();
    admin.ok(None, &["scale", "web", "-i", "9"]).await;
    testkit::eventually("9 instances running", Duration::from_secs(60), || async {
        let inst = admin.instances("web").await?;
        (inst.len() == 9 && inst.iter().all(|(s, _)| s == "RUNNING")).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    for s in [&statuses[0], &statuses[2]] {
        // The dead cell's endpoints stay until pruned; the 9 live ones must all be there.
        testkit::eventually(
            &format!("{s} routes 9 live instances"),
            Duration::from_secs(30),
            || async {
                let live = endpoints(s, host).await?;
                let dead = format!("{}:", hosts[2]);
                (live.iter().filter(|a| !a.starts_with(&dead)).count() == 9).then_some(())
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    for r in [&routers[0], &routers[2]] {
        served(r, host, "static fixture v1", Duration::from_secs(5)).await;
    }
    let stats = load.finish().await;
    eprintln!(
        "[cluster] (c) api 1, router 2 and NATS 1 killed: api 2 and routers 1 and 3 serve; scale to 9 routed after {:?}; load through router 1: {} ok, {} failed, longest failure {:?}",
        scaled.elapsed(),
        stats.ok,
        stats.failed,
        stats.longest_failure
    );
    assert!(
        stats.longest_failure <= Duration::from_secs(5),
        "router 1 failed for {:?}",
        stats.longest_failure
    );

    // (d) Host 1 is cut off (its link down): its cell's instances are placed on host 2's cell
    // while router 3 keeps serving; when it comes back the cell's bulk sync stops its stale copies.
    let load = Load::start(&routers[2], host);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = load.take();
    let on_host1 = Cluster::containers(&c.dir().join("cell1")).expect("runc list").len();
    let link = format!("pch{}1", c.net.tag);
    let cut = Instant::now();
    must(&format!("ip link set {link} down"));
    let healed =
        testkit::eventually("9 instances running on cell 2", Duration::from_secs(30), || async {
            let inst = admin.instances("web").await?;
            let ok = inst.len() == 9 && inst.iter().all(|(s, h)| s == "RUNNING" && *h == hosts[1]);
            ok.then_some(())
        })
        .await;
    let heal = cut.elapsed();
    healed.unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let d = load.take();
    eprintln!(
        "[cluster] (d) host 1 cut off with {on_host1} instances: running on cell 2 after {heal:?}; load through router 3: {} ok, {} failed, longest failure {:?}, slowest answer {:?}",
        d.ok, d.failed, d.longest_failure, d.slowest
    );
    // A request sent on a kept connection to host 1 fails its acknowledgement within about 6 s
    // and is retried on another host; a dial to host 1 times out in 5 s and is retried there
    // too: both within the load's 10 s client timeout.
    assert_eq!(d.failed, 0, "requests through router 3 failed during the cut: {:?}", d.errors);
    // Long enough that the scheduler's stops of the replaced instances give up: what stops
    // them after the return is the cell's own bulk sync.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let late = load.take();
    let back = Instant::now();
    must(&format!("ip link set {link} up"));
    let stale = c.dir().join("cell1");
    // Every stale copy goes: those the scheduler still stops, the rest by the cell's bulk sync
    // (a suspect record is retired as soon as its replacement runs, whatever its cell answers).
    let settled = testkit::eventually(
        "host 1's stale instances stopped",
        Duration::from_secs(30),
        || async { Cluster::containers(&stale)?.is_empty().then_some(()) },
    )
    .await;
    let settle = back.elapsed();
    let left = Cluster::containers(&stale).unwrap_or_default().len();
    let inst = admin.instances("web").await.expect("instances");
    assert_eq!(inst.len(), 9, "the scheduler still has 9 instances of web: {inst:?}");
    assert!(settled.is_ok(), "{left} stale copies still run on host 1 after {settle:?}");
    let stats = load.finish().await;
    eprintln!(
        "[cluster] (d) the 8 s after: load through router 3: {} ok, {} failed, longest failure {:?}, slowest answer {:?}",
        late.ok, late.failed, late.longest_failure, late.slowest
    );
    eprintln!(
        "[cluster] (d) host 1 back: stale copies all stopped: {} after {settle:?} ({left} left); load through router 3: {} ok, {} failed, longest failure {:?}, slowest answer {:?}",
        settled.is_ok(),
        stats.ok, stats.failed, stats.longest_failure, stats.slowest
    );
    assert!(
        stats.longest_failure <= Duration::from_secs(5),
        "router 3 failed for {:?}",
        stats.longest_failure
    );

    // (e) The logs service dies and PostgreSQL restarts, under load through router 3: apps
    // keep serving; the api, the schedulers and the cells reconnect; the logs service, started
    // again as systemd would, has the routers' access lines again.
    let load = Load::start(&routers[2], host);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = load.take();
    c.proc("logs").kill9();
    let restart = Instant::now();
    c.pg.restart().await.expect("postgres restarts");
    let pg_down = restart.elapsed();
    let api_back = testkit::eventually("the api reads again", Duration::from_secs(30), || async {
        admin.run_in(None, &["apps"]).await.status.success().then_some(restart.elapsed())
    })
    .await
    .expect("the api reads after the restart");
    let leader_back = testkit::eventually("a scheduler leads", Duration::from_secs(30), || async {
        for k in 0..2 {
            if leads(&c.net.url(k, SCHEDULER_PORT)).await == Some(true) {
                return Some(restart.elapsed());
            }
        }
        None
    })
    .await
    .expect("a scheduler leads after the restart");
    admin.ok(None, &["scale", "web", "-i", "6"]).await;
    testkit::eventually("scaled to 6 after the restart", Duration::from_secs(60), || async {
        let inst = admin.instances("web").await?;
        (inst.len() == 6 && inst.iter().all(|(s, _)| s == "RUNNING")).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let scaled = restart.elapsed();
    c.paasd("logs-again", "logs", 1, &[]);
    testkit::wait_http_ok(&format!("{}/readyz", c.net.url(1, LOGS_PORT)), Duration::from_secs(60))
        .await
        .expect("the logs service again");
    let logged = Instant::now();
    testkit::eventually(
        "access lines in the new logs service",
        Duration::from_secs(60),
        || async {
            let out = admin.run_in(None, &["logs", "web", "--recent"]).await;
            String::from_utf8_lossy(&out.stdout).contains("[RTR/").then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let e = load.finish().await;
    eprintln!(
        "[cluster] (e) logs service killed and PostgreSQL restarted ({pg_down:?} to accept again): api reads after {api_back:?}, a scheduler leads after {leader_back:?}, scale to 6 done after {scaled:?}; the restarted logs service has access lines after {:?}; load through router 3: {} ok, {} failed, longest failure {:?}, slowest answer {:?}",
        logged.elapsed(),
        e.ok,
        e.failed,
        e.longest_failure,
        e.slowest
    );
    assert!(
        e.longest_failure <= Duration::from_secs(5),
        "router 3 failed for {:?}: {:?}",
        e.longest_failure,
        e.errors
    );

    // (f) The stager dies while it stages a push (a buildpack that takes its time): the build
    // fails with the reason once its heartbeats stop, nothing stays STAGING, and the stager,
    // started again as systemd would, stages the next push.
    admin
        .ok(None, &["create-buildpack", "slow_buildpack", &slow_buildpack(scratch.path()), "9"])
        .await;
    let slow = static_app(scratch.path(), "slow");
    let push = admin.spawn_in(&slow, &["push", "-b", "slow_buildpack"]);
    testkit::eventually("the slow staging runs", Duration::from_secs(60), || async {
        let out = admin.run_in(None, &["curl", "/v3/builds?states=STAGING"]).await;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (v["pagination"]["total_results"] == 1).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // Let the stager take it into its container.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed = Instant::now();
    c.proc("stager").kill9();
    let out = tokio::time::timeout(Duration::from_secs(120), push)
        .await
        .expect("the push ends")
        .expect("push task");
    let failed_after = killed.elapsed();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "the cut-off staging fails the push:\n{text}");
    assert!(text.contains("stager staging this build stopped"), "with the reason:\n{text}");
    let staging = admin.ok(None, &["curl", "/v3/builds?states=STAGING"]).await;
    let v: serde_json::Value = serde_json::from_str(&staging).expect("json");
    assert_eq!(v["pagination"]["total_results"], 0, "nothing stays STAGING: {staging}");
    c.paasd("stager-again", "stager", 0, &[]);
    testkit::wait_http_ok(
        &format!("{}/readyz", c.net.url(0, STAGER_PORT)),
        Duration::from_secs(60),
    )
    .await
    .expect("the stager again");
    let again = Instant::now();
    admin.ok(Some(&slow), &["push", "-b", "staticfile_buildpack"]).await;
    served(&routers[0], "slow.apps.localhost", "static fixture v1", Duration::from_secs(30)).await;
    eprintln!(
        "[cluster] (f) stager killed mid-staging: the push failed with the reason {failed_after:?} after the kill; with the stager started again the next push served after {:?}",
        again.elapsed()
    );
    eprintln!("[cluster] whole run: {:?}", started.elapsed());
    drop(c);
}
