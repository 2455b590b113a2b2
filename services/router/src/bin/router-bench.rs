//! `router-bench`: wrk against the router and against nginx (Debian package) as a reverse
//! proxy to the same backend — bare (no extra headers, no access log), with a buffered
//! `combined` access log, and doing the router's job (the request headers the router adds, an
//! access line per request with the fields of the router's) — in turns in the same run on the
//! same machine; prints each round's ratios, then the medians of requests/s, p99 latency and
//! each proxy's CPU time per request.
//!
//! `router-bench serve [<seconds>]` runs only the backend and the router (60 s by default),
//! for a load generator and profiler of one's own. `router-bench registry [<routes>]` measures
//! how many registrations a second the route table takes with that many routes (10,000 by
//! default): heartbeats as the router applies them, and with a new snapshot after each one.
//!
//! `cargo run --release -p router --bin router-bench [-- <seconds per turn> [<rounds>]]` (needs
//! `nginx`, `wrk` and `taskset` on PATH; 5 s turns and 5 rounds by default). The backend (hyper,
//! fixed 1 KiB body) and the router run in this process, each on threads of its own (the
//! backend's runtime `bench-backend`; the router's workers and the runtime of its other tasks,
//! the access-log publisher among them, `router-*`: the router's CPU time is theirs), the
//! route registered through an in-process bus; nginx runs from a config in a temp dir with as
//! many worker processes as the router has worker threads (`BENCH_WORKERS`, else one per CPU left to the proxies). Each
//! round runs the router and the three nginx in turn and back again (A B C D D C B A, each
//! turn `<seconds per turn>` long), so that drift on the machine falls on all alike, and prints
//! the ratios of their averages: a round is one alternating run. The medians follow, with
//! each proxy's CPU time per request and the backend's (what that proxy's requests cost the
//! app). With three CPUs or more, wrk gets the last CPU to itself and everything else the
//! others, so the load generator never takes CPU from a proxy. wrk sends only `Host`;
//! `BENCH_CLIENT=browser` adds the eight other fields a browser sends with a page request.

use std::convert::Infallible;
use std::error::Error;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bus::{BusExt as _, DynBus, InProcessBus};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

const HOST: &str = "bench.apps.localhost";

/// A hyper server answering every request with the same 1 KiB body, on `rt`: threads of its
/// own, so that the router's threads are only the router's.
fn backend(rt: &tokio::runtime::Handle) -> Res<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    l.set_nonblocking(true)?;
    let addr = l.local_addr()?;
    let body = Bytes::from(vec![b'x'; 1024]);
    rt.spawn(async move {
        let Ok(l) = tokio::net::TcpListener::from_std(l) else { return };
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        while let Ok((s, _)) = l.accept().await {
            let _ = s.set_nodelay(true);
            let body = body.clone();
            let builder = builder.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let body = body.clone();
                    async move { Ok::<_, Infallible>(hyper::Response::new(Full::new(body))) }
                });
                let _ = builder.serve_connection(TokioIo::new(s), svc).await;
            });
        }
    });
    Ok(addr)
}

/// One raw GET; true on a 200.
async fn probe(addr: SocketAddr, host: &str) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else { return false };
    let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    out.starts_with(b"HTTP/1.1 200")
}

async fn wait_ok(addr: SocketAddr, host: &str, what: &str) -> Res<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !probe(addr, host).await {
        if Instant::now() > deadline {
            return Err(format!("{what} did not answer 200 on {addr}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn start_router(backend: SocketAddr) -> Res<(SocketAddr, kit::Shutdown)> {
    let bus: DynBus = Arc::new(InProcessBus::new());
    let config = router::Config {
        addr: "127.0.0.1:0".parse()?,
        status_addr: "127.0.0.1:0".parse()?,
        workers: workers(),
        ..Default::default()
    };
    let service = router::build(config, router::Deps { bus: bus.clone() }).await?;
    let addr = service.local_addr();
    let shutdown = kit::Shutdown::new();
    tokio::spawn(service.run(shutdown.clone()));
    let reg = wire::routing::RegistryMessage {
        host: backend.ip().to_string(),
        port: backend.port(),
        uris: vec![HOST.into()],
        app: std::env::var("BENCH_APP").unwrap_or("bench-app".into()),
        private_instance_id: "bench-instance".into(),
        private_instance_index: "0".into(),
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        bus.publish_json(wire::subjects::ROUTER_REGISTER, &reg).await?;
        if probe(addr, HOST).await {
            // Registered again every 20 s, as a cell does, so the route outlives its TTL
            // however long the run.
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(20));
                loop {
                    tokio::select! {
                        _ = tick.tick() => {
                            let _ = bus.publish_json(wire::subjects::ROUTER_REGISTER, &reg).await;
                        }
                        () = stop.cancelled() => return,
                    }
                }
            });
            return Ok((addr, shutdown));
        }
        if Instant::now() > deadline {
            return Err("the router never routed the benchmark host".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Worker threads of the router and worker processes of nginx.
fn workers() -> usize {
    std::env::var("BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// With three CPUs or more, the last one for wrk alone: this process (and so nginx, started
/// from it) is kept off it. Returns the CPU wrk is pinned to.
fn pin() -> Option<usize> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    if cpus < 3 {
        return None;
    }
    let wrk = cpus - 1;
    let rest = format!("0-{}", wrk - 1);
    let pid = std::process::id().to_string();
    let ok = Command::new("taskset")
        .args(["-a", "-p", "-c", &rest, &pid])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(wrk)
}

fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// How an nginx peer is set up.
#[derive(Debug, Clone, Copy)]
enum Nginx {
    /// `Host` and `X-Forwarded-For` only, no access log: the least a proxy does.
    Bare,
    /// As bare, with a buffered `combined` access log.
    Logged,
    /// The router's work: the request headers the router adds (`X-Forwarded-Proto`,
    /// `X-Request-Start`, a request id, the `X-CF-*` instance headers), so the backend parses as
    /// much as behind the router, and a buffered access line per request with the fields of the
    /// router's `RTR` line.
    Job,
}

impl Nginx {
    const ALL: [Self; 3] = [Self::Bare, Self::Logged, Self::Job];

    fn name(self) -> &'static str {
        match self {
            Self::Bare => "bare",
            Self::Logged => "combined log",
            Self::Job => "router's job",
        }
    }
}

/// nginx as a keep-alive reverse proxy to `backend`, set up as `kind` says (buffered logs, as a
/// tuned nginx would write them).
fn start_nginx(
    dir: &Path,
    backend: SocketAddr,
    kind: Nginx,
    workers: usize,
) -> Res<(SocketAddr, Child)> {
    std::fs::create_dir_all(dir)?;
    let port = free_port()?;
    let d = dir.display();
    let (log, headers) = match kind {
        Nginx::Bare => ("access_log off".to_owned(), ""),
        Nginx::Logged => (format!("access_log {d}/access.log combined buffer=64k flush=1s"), ""),
        Nginx::Job => (
            format!(
                "log_format rtr '$host - [$time_iso8601] \"$request\" $status $content_length \
                 $body_bytes_sent \"$http_referer\" \"$http_user_agent\" \"$remote_addr:$remote_port\" \
                 \"$upstream_addr\" x_forwarded_for:\"$proxy_add_x_forwarded_for\" \
                 x_forwarded_proto:\"$scheme\" vcap_request_id:\"$request_id\" \
                 response_time:$request_time gorouter_time:$upstream_header_time \
                 app_id:\"bench-app\" app_index:\"0\" instance_id:\"bench-instance\" \
                 x_cf_routererror:\"-\"';\n  access_log {d}/access.log rtr buffer=64k flush=1s"
            ),
            "proxy_set_header X-Forwarded-Proto $scheme;\n      \
             proxy_set_header X-Request-Start $msec;\n      \
             proxy_set_header X-Vcap-Request-Id $request_id;\n      \
             proxy_set_header X-CF-ApplicationID bench-app;\n      \
             proxy_set_header X-CF-InstanceIndex 0;\n      \
             proxy_set_header X-CF-InstanceID bench-instance;\n      ",
        ),
    };
    let conf = format!(
        "worker_processes {workers};\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  {log};\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         upstream app {{ server {backend}; keepalive 100; }}\n\
         server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://app;\n\
         proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_set_header Host $host;\n\
         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n      {headers}}}\n  }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf)?;
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&path)
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run nginx: {e}"))?;
    Ok((SocketAddr::from(([127, 0, 0, 1], port)), child))
}

/// requests/s and p99 in milliseconds from wrk's output.
fn parse_wrk(out: &str) -> Res<(f64, f64)> {
    let rps = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or("no Requests/sec in wrk output")?;
    let p99 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(str::trim)
        .and_then(|v| {
            let split = v.find(|c: char| c.is_ascii_alphabetic())?;
            let (n, unit) = v.split_at(split);
            let n: f64 = n.parse().ok()?;
            match unit {
                "us" => Some(n / 1000.0),
                "ms" => Some(n),
                "s" => Some(n * 1000.0),
                "m" => Some(n * 60_000.0),
                _ => None,
            }
        })
        .ok_or("no 99% line in wrk output")?;
    let errors = out.lines().find(|l| l.contains("Non-2xx") || l.contains("Socket errors"));
    if let Some(e) = errors {
        eprintln!("wrk: {}", e.trim());
    }
    Ok((rps, p99))
}

/// The fields a browser sends with a page request besides `Host`, for `BENCH_CLIENT=browser`:
/// wrk alone sends only `Host`, and a proxy's cost per field does not show.
const BROWSER_FIELDS: &[&str] = &[
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
     Chrome/120.0.0.0 Safari/537.36",
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8",
    "Accept-Language: en-US,en;q=0.9",
    "Accept-Encoding: gzip, deflate, br",
    "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark",
    "Referer: http://bench.apps.localhost/home",
    "Sec-Fetch-Mode: navigate",
    "Sec-Ch-Ua-Platform: \"Linux\"",
];

/// Whether wrk sends [`BROWSER_FIELDS`] too (`BENCH_CLIENT=browser`; `wrk`, the default,
/// sends `Host` only).
fn browser() -> Res<bool> {
    client_is_browser(std::env::var("BENCH_CLIENT").ok().as_deref())
}

fn client_is_browser(client: Option<&str>) -> Res<bool> {
    match client {
        None | Some("wrk") => Ok(false),
        Some("browser") => Ok(true),
        Some(other) => Err(format!("BENCH_CLIENT is wrk or browser, not {other:?}").into()),
    }
}

async fn wrk(addr: SocketAddr, host: &str, secs: u64, cpu: Option<usize>) -> Res<(f64, f64)> {
    let mut args =
        vec!["-t2".to_owned(), "-c64".to_owned(), format!("-d{secs}s"), "--latency".to_owned()];
    let fields = if browser()? { BROWSER_FIELDS } else { &[] };
    for field in
        std::iter::once(format!("Host: {host}")).chain(fields.iter().map(|f| f.to_string()))
    {
        args.extend(["-H".to_owned(), field]);
    }
    args.push(format!("http://{addr}/"));
    let program = match cpu {
        Some(cpu) => {
            args.splice(0..0, ["-c".to_owned(), cpu.to_string(), "wrk".to_owned()]);
            "taskset"
        }
        None => "wrk",
    };
    let out = tokio::task::spawn_blocking(move || Command::new(program).args(&args).output())
        .await?
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr)).into());
    }
    parse_wrk(&text)
}

/// CPU time (user + system, in clock ticks) of the threads of `pid` whose name starts with
/// `prefix` (all threads when empty).
fn cpu_ticks(pid: u32, prefix: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|stat| {
            let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            if !name.starts_with(prefix) {
                return None;
            }
            // Fields after the name: state is field 3, utime 14 and stime 15.
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

/// The pids of the children of `parent` (nginx's worker processes).
fn children(parent: u32) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else { return Vec::new() };
    procs
        .flatten()
        .filter_map(|p| p.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().is_some_and(|s| {
                s.rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(parent)
            })
        })
        .collect()
}

/// The CPU time one proxy used, in clock ticks, so far.
fn proxy_ticks(nginx: Option<u32>) -> u64 {
    match nginx {
        // The workers and the runtime of the router's other tasks (the access-log publisher).
        None => cpu_ticks(std::process::id(), "router-"),
        Some(master) => {
            cpu_ticks(master, "")
                + children(master).into_iter().map(|p| cpu_ticks(p, "")).sum::<u64>()
        }
    }
}

/// What one turn of wrk against a proxy measured (or a round's or the run's figure).
#[derive(Debug, Clone, Copy)]
struct Turn {
    rps: f64,
    /// p99 latency, ms.
    p99: f64,
    /// The proxy's CPU time per request, µs.
    cpu: f64,
    /// The backend's CPU time per request, µs: what the proxy's requests cost the app (the
    /// router's added fields are parsed there too).
    backend_cpu: f64,
}

/// wrk against one proxy.
async fn measure(addr: SocketAddr, secs: u64, nginx: Option<u32>, cpu: Option<usize>) -> Res<Turn> {
    let me = std::process::id();
    let before = (proxy_ticks(nginx), cpu_ticks(me, "bench-backend"));
    let (rps, p99) = wrk(addr, HOST, secs, cpu).await?;
    let after = (proxy_ticks(nginx), cpu_ticks(me, "bench-backend"));
    // Linux reports thread CPU times in USER_HZ (100 per second).
    let per_request = |ticks: u64, since: u64| {
        ticks.saturating_sub(since) as f64 * 10_000.0 / (rps * secs as f64).max(1.0)
    };
    Ok(Turn {
        rps,
        p99,
        cpu: per_request(after.0, before.0),
        backend_cpu: per_request(after.1, before.1),
    })
}

async fn run(
    secs: u64,
    rounds: usize,
    cpu: Option<usize>,
    backend_rt: tokio::runtime::Handle,
) -> Res<()> {
    let workers = workers();
    let backend = backend(&backend_rt)?;
    let (router, shutdown) = start_router(backend).await?;
    let dir = std::env::temp_dir().join(format!("router-bench-{}", std::process::id()));
    let mut peers: Vec<(Nginx, SocketAddr, Child)> = Vec::new();
    for kind in Nginx::ALL {
        match start_nginx(&dir.join(kind.name().replace([' ', '\''], "-")), backend, kind, workers)
        {
            Ok((addr, child)) => peers.push((kind, addr, child)),
            Err(e) => {
                peers.into_iter().for_each(|(_, _, c)| stop_nginx(c));
                return Err(e);
            }
        }
    }
    let result = async {
        for (_, addr, _) in &peers {
            wait_ok(*addr, HOST, "nginx").await?;
        }
        // Warm all up (connection pools, page cache), then measure in turns, round after
        // round, so drift on the machine falls on all alike.
        let mut targets = vec![(router, None)];
        targets.extend(peers.iter().map(|(_, addr, child)| (*addr, Some(child.id()))));
        for (addr, _) in &targets {
            wrk(*addr, HOST, 1, cpu).await?;
        }
        let placement = match cpu {
            Some(c) => format!("wrk alone on CPU {c}"),
            None => "wrk sharing the CPUs (fewer than 3)".to_owned(),
        };
        let client = if browser()? { "a browser's 9 request fields" } else { "Host only" };
        println!(
            "wrk -t2 -c64 -d{secs}s ({client}), 1 KiB body, same backend, same machine; \
             {workers} router worker threads and nginx worker processes; {placement}"
        );
        let mut runs: Vec<Vec<Turn>> = vec![Vec::new(); targets.len()];
        for round in 1..=rounds {
            // Each proxy twice, in the order A B C D D C B A: the VM's speed drifts by 10 %
            // and more within seconds, and a drift that runs through the round falls on every
            // proxy's two turns alike (their mean time in the round is the same).
            let mut turns: Vec<Vec<Turn>> = vec![Vec::new(); targets.len()];
            let order = (0..targets.len()).chain((0..targets.len()).rev());
            for i in order {
                let (addr, pid) = targets[i];
                turns[i].push(measure(addr, secs, pid, cpu).await?);
            }
            for (i, t) in turns.iter().enumerate() {
                runs[i].push(combine(t));
            }
            let r = runs[0][round - 1];
            let mut line = format!("round {round}: router {:.0} req/s", r.rps);
            for (i, (kind, _, _)) in peers.iter().enumerate() {
                let n = runs[i + 1][round - 1];
                line.push_str(&format!(
                    "; nginx {}: {:.0}, {:.2}x, p99 {:+.3} ms",
                    kind.name(),
                    n.rps,
                    r.rps / n.rps,
                    r.p99 - n.p99
                ));
            }
            println!("{line}");
        }
        let medians: Vec<Turn> = runs.iter().map(|v| medians(v)).collect();
        println!("medians of {rounds} rounds:");
        let names = std::iter::once("router".to_owned())
            .chain(peers.iter().map(|(kind, _, _)| format!("nginx ({})", kind.name())));
        for (name, m) in names.zip(&medians) {
            println!(
                "{name:<22} {:>8.0} req/s  p99 {:.3} ms  cpu {:.1} us/req  backend cpu {:.1} us/req",
                m.rps, m.p99, m.cpu, m.backend_cpu
            );
        }
        let r = medians[0];
        for (i, (kind, _, _)) in peers.iter().enumerate() {
            let n = medians[i + 1];
            println!(
                "router/nginx ({}): {:.2}x req/s, p99 {:+.3} ms",
                kind.name(),
                r.rps / n.rps,
                r.p99 - n.p99
            );
        }
        Ok::<_, Box<dyn Error + Send + Sync>>(())
    }
    .await;
    peers.into_iter().for_each(|(_, _, c)| stop_nginx(c));
    shutdown.cancel();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// One figure from a proxy's turns in a round: requests/s and p99 averaged, CPU per request
/// over all the requests served (weighted by each turn's rate; turns are equally long).
fn combine(turns: &[Turn]) -> Turn {
    let n = turns.len().max(1) as f64;
    let rps: f64 = turns.iter().map(|t| t.rps).sum();
    let weighted =
        |f: fn(&Turn) -> f64| turns.iter().map(|t| f(t) * t.rps).sum::<f64>() / rps.max(1.0);
    Turn {
        rps: rps / n,
        p99: turns.iter().map(|t| t.p99).sum::<f64>() / n,
        cpu: weighted(|t| t.cpu),
        backend_cpu: weighted(|t| t.backend_cpu),
    }
}

/// The median of each figure over the rounds.
fn medians(runs: &[Turn]) -> Turn {
    let pick = |f: fn(&Turn) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    Turn {
        rps: pick(|r| r.rps),
        p99: pick(|r| r.p99),
        cpu: pick(|r| r.cpu),
        backend_cpu: pick(|r| r.backend_cpu),
    }
}

/// SIGTERM: nginx's master stops its workers too (a SIGKILL would orphan them).
fn stop_nginx(mut master: Child) {
    let _ = Command::new("kill").args(["-TERM", &master.id().to_string()]).status();
    let _ = master.wait();
}

/// `serve <seconds>`: the backend and the router only, for that long, for a load generator
/// and a profiler of one's own (`valgrind --tool=callgrind` counts the instructions the
/// router runs per request, which a shared VM's timings cannot tell apart).
async fn serve_only(secs: u64, backend_rt: tokio::runtime::Handle) -> Res<()> {
    let backend = backend(&backend_rt)?;
    let (router, shutdown) = start_router(backend).await?;
    println!("router on {router} (Host: {HOST}), backend on {backend}, for {secs} s");
    tokio::time::sleep(Duration::from_secs(secs)).await;
    shutdown.cancel();
    Ok(())
}

/// A registration for route `i`, one instance each, as a cell sends them.
fn registration(i: usize) -> wire::routing::RegistryMessage {
    wire::routing::RegistryMessage {
        host: format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255),
        port: 61_000,
        uris: vec![format!("app-{i}.apps.example.com")],
        app: format!("app-guid-{i}"),
        private_instance_id: format!("instance-{i}"),
        private_instance_index: "0".into(),
        ..Default::default()
    }
}

/// `registry <routes>`: the route table's update path with that many routes.
fn registry_only(routes: usize) {
    use router::table::Registry;
    let ttl = Duration::from_secs(120);
    let messages: Vec<_> = (0..routes).map(registration).collect();
    let mut registry = Registry::default();
    let started = Instant::now();
    for m in &messages {
        registry.register(m, ttl);
    }
    let table = registry.snapshot();
    let built = started.elapsed();
    println!(
        "{} routes registered and one snapshot taken in {:.1} ms; {} heartbeats/s at one per route every 20 s",
        table.route_count(),
        built.as_secs_f64() * 1e3,
        routes / 20
    );
    // As the updater applies them: a snapshot only when something changed.
    let started = Instant::now();
    let mut snapshots = 0;
    for m in &messages {
        if registry.register(m, ttl) {
            registry.snapshot();
            snapshots += 1;
        }
    }
    let each = started.elapsed() / u32::try_from(routes.max(1)).unwrap_or(u32::MAX);
    println!(
        "heartbeats, snapshot on change: {:>10.0}/s ({} snapshots)",
        1.0 / each.as_secs_f64().max(1e-12),
        snapshots
    );
    // With a snapshot after every message (how the table took heartbeats before), over at most
    // 2,000 of them: each costs the whole table.
    let sample = routes.min(2000);
    let started = Instant::now();
    for m in &messages[..sample] {
        registry.register(m, ttl);
        registry.snapshot();
    }
    let each = started.elapsed() / u32::try_from(sample).unwrap_or(u32::MAX);
    println!("heartbeats, snapshot on each: {:>10.0}/s", 1.0 / each.as_secs_f64().max(1e-12));
    // A change to every route, once with a snapshot after each (as one at a time), once as a
    // burst the updater takes together (the messages already waiting, then one snapshot).
    let changed = |index: &str| -> Vec<_> {
        messages
            .iter()
            .map(|m| wire::routing::RegistryMessage {
                private_instance_index: index.into(),
                ..m.clone()
            })
            .collect()
    };
    let (one, burst) = (changed("1"), changed("2"));
    let started = Instant::now();
    for m in &one[..sample] {
        if registry.register(m, ttl) {
            registry.snapshot();
        }
    }
    let each = started.elapsed() / u32::try_from(sample).unwrap_or(u32::MAX);
    println!("changes, one at a time:       {:>10.0}/s", 1.0 / each.as_secs_f64().max(1e-12));
    let started = Instant::now();
    let mut any = false;
    for m in &burst {
        any |= registry.register(m, ttl);
    }
    if any {
        registry.snapshot();
    }
    let each = started.elapsed() / u32::try_from(routes).unwrap_or(u32::MAX);
    println!("changes, a burst of {routes}: {:>10.0}/s", 1.0 / each.as_secs_f64().max(1e-12));
}

fn main() -> Res<()> {
    if std::env::args().nth(1).as_deref() == Some("registry") {
        let routes = match std::env::args().nth(2) {
            Some(a) => a
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("usage: router-bench registry <routes>, got {a:?}"))?,
            None => 10_000,
        };
        registry_only(routes);
        return Ok(());
    }
    if std::env::args().nth(1).as_deref() == Some("serve") {
        let secs = match std::env::args().nth(2) {
            Some(a) => a
                .parse::<u64>()
                .map_err(|_| format!("usage: router-bench serve <seconds>, got {a:?}"))?,
            None => 60,
        };
        let (rt, backend_rt) = runtimes()?;
        return rt.block_on(serve_only(secs, backend_rt.handle().clone()));
    }
    let arg =
        |n: usize, default: usize| match std::env::args().nth(n) {
            Some(a) => a.parse::<usize>().ok().filter(|v| *v > 0).ok_or_else(|| {
                format!("usage: router-bench [seconds per turn] [rounds], got {a:?}")
            }),
            None => Ok(default),
        };
    let (secs, rounds) = (arg(1, 5)?, arg(2, 5)?);
    // Before any other thread exists: they all inherit the CPUs left to the proxies.
    let cpu = pin();
    let (rt, backend_rt) = runtimes()?;
    rt.block_on(run(secs as u64, rounds, cpu, backend_rt.handle().clone()))
}

/// The runtime of the router's tasks besides its workers (threads `router-main`, counted as
/// the router's with the workers) and the backend's (threads `bench-backend`).
fn runtimes() -> Res<(tokio::runtime::Runtime, tokio::runtime::Runtime)> {
    let named = |name: &str| {
        tokio::runtime::Builder::new_multi_thread().thread_name(name).enable_all().build()
    };
    Ok((named("router-main")?, named("bench-backend")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rounds_cpu_figures_are_weighted_by_the_requests_each_turn_served() {
        let turns = [
            Turn { rps: 30_000.0, p99: 1.0, cpu: 10.0, backend_cpu: 6.0 },
            Turn { rps: 10_000.0, p99: 3.0, cpu: 20.0, backend_cpu: 10.0 },
        ];
        let t = combine(&turns);
        assert_eq!((t.rps, t.p99), (20_000.0, 2.0));
        assert!((t.cpu - 12.5).abs() < 1e-9, "{}", t.cpu);
        assert!((t.backend_cpu - 7.0).abs() < 1e-9, "{}", t.backend_cpu);
        let m = medians(&[turns[0], turns[1], t]);
        assert_eq!((m.rps, m.cpu, m.backend_cpu), (20_000.0, 12.5, 7.0));
    }

    #[test]
    fn the_client_is_wrk_or_a_browser_and_nothing_else() {
        assert!(!client_is_browser(None).expect("default"));
        assert!(!client_is_browser(Some("wrk")).expect("wrk"));
        assert!(client_is_browser(Some("browser")).expect("browser"));
        let e = client_is_browser(Some("curl")).expect_err("refused");
        assert!(e.to_string().contains("wrk or browser"), "{e}");
        // Each field is one `-H` argument wrk takes as given: a name, ": " and a value.
        for f in BROWSER_FIELDS {
            let (name, value) = f.split_once(": ").expect("name: value");
            assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "{f}");
            assert!(!value.is_empty() && !value.contains(['\r', '\n']), "{f}");
        }
    }
}
