//! What a user does, end to end, with the real `paas` CLI against a real platform on runc —
//! once as `paasd dev` (one process, SQLite, in-process bus) and once as seven `paasd run`
//! processes joined by NATS, with the api and the scheduler on PostgreSQL: log in, create an
//! org, a space and a developer, push four fixture apps from their manifests (static,
//! Python with a PyPI dependency, Node.js with an npm dependency, a binary with a Procfile),
//! reach each through the router, scale, kill an instance, read and follow logs, re-push,
//! ssh into an instance, run a task, stop/start/restart/delete, and be refused another
//! tenant's apps. It also measures the time
//! from `paas push` to the first 200 through the router. A second journey re-pushes, rolls
//! back, canary-deploys and ships a crashing release of a 3-instance app under a steady request
//! load through the router, and requires not one failed request.

#[path = "push/quickstart.rs"]
mod quickstart;

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A binary built next to this test by `cargo test --workspace`.
fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    assert!(p.exists(), "{} is missing: run the suite with `cargo test --workspace`", p.display());
    p
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Containers, mounts, bridge and nft table of one platform's cell.
struct CellCleanup {
    data: String,
    bridge: String,
    table: String,
}

impl Drop for CellCleanup {
    fn drop(&mut self) {
        let sh = |c: String| {
            let _ = Command::new("sh").args(["-c", &c]).output();
        };
        let d = &self.data;
        sh(format!(
            "runc list -f json | tr '{{' '\\n' | grep '{d}' | sed 's/.*\"id\":\"\\([^\"]*\\)\".*/\\1/' | xargs -r -n1 runc delete --force"
        ));
        sh(format!("grep '{d}' /proc/mounts | cut -d' ' -f2 | xargs -r -n1 umount -l"));
        sh(format!("ip link del {} 2>/dev/null", self.bridge));
        sh(format!(
            "nft delete table ip {0} 2>/dev/null; nft delete table bridge {0} 2>/dev/null",
            self.table
        ));
    }
}

struct Ports {
    api: u16,
    router: u16,
    router_status: u16,
    logs: u16,
    scheduler: u16,
    cell: u16,
    stager: u16,
    ssh: u16,
}

/// A running platform.
struct Platform {
    api: String,
    router: String,
    /// The router's status listener (`/routes`, `/readyz`).
    router_status: String,
    admin_password: String,
    /// The stager's `work_dir` (its builds, buildpack and app caches).
    stager_work: PathBuf,
    _procs: Vec<Proc>,
    _cleanup: CellCleanup,
    _dir: tempfile::TempDir,
    _extra: Vec<Box<dyn std::any::Any>>,
}

impl Drop for Platform {
    /// Stop in reverse start order (cells before the scheduler they report to).
    fn drop(&mut self) {
        while let Some(p) = self._procs.pop() {
            drop(p);
        }
    }
}

fn base_env(dir: &Path, p: &Ports, slot: u32) -> (Vec<(String, String)>, CellCleanup) {
    let n = (std::process::id() % 1000) * 10 + slot;
    let a = |port: u16| format!("127.0.0.1:{port}");
    let stacks = stack::test_cache_dir().display().to_string();
    let env: Vec<(&str, String)> = vec![
        ("PAAS_API_ADDR", a(p.api)),
        ("PAAS_ROUTER_ADDR", a(p.router)),
        ("PAAS_ROUTER_STATUS_ADDR", a(p.router_status)),
        ("PAAS_LOGS_ADDR", a(p.logs)),
        ("PAAS_SCHEDULER_ADDR", a(p.scheduler)),
        ("PAAS_CELL_ADDR", a(p.cell)),
        ("PAAS_STAGER_STATUS_ADDR", a(p.stager)),
        ("PAAS_SSH_ADDR", a(p.ssh)),
        ("PAAS_DASHBOARD_ADDR", "127.0.0.1:0".into()),
        ("PAAS_CELL_BACKEND", "runc".into()),
        // The test stops cells with SIGTERM: no waiting for a hand-over to other cells.
        ("PAAS_CELL_EVACUATION_TIMEOUT_SECS", "0".into()),
        ("PAAS_CELL_BRIDGE", format!("pe{n}")),
        ("PAAS_CELL_NFT_TABLE", format!("paas_e{n}")),
        ("PAAS_CELL_SUBNET", format!("10.{}.{}.0", 230 + slot, n % 250)),
        ("PAAS_CELL_HOST_PORT_MIN", (63000 + slot * 200).to_string()),
        ("PAAS_CELL_HOST_PORT_MAX", (63199 + slot * 200).to_string()),
        ("PAAS_CELL_STACKS_DIR", stacks.clone()),
        ("PAAS_STAGER_STACKS_DIR", stacks),
        ("PAAS_ADMIN_PASSWORD", "e2e-admin-password".into()),
        ("RUST_LOG", "warn".into()),
    ];
    let cleanup = CellCleanup {
        data: dir.display().to_string(),
        bridge: format!("pe{n}"),
        table: format!("paas_e{n}"),
    };
    (env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(), cleanup)
}

fn spawn(args: &[&str], env: &[(String, String)], data: &Path) -> Proc {
    let mut cmd = Command::new(bin("paasd"));
    cmd.args(args).env("PAAS_DATA_DIR", data).stdout(Stdio::null()).stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc(cmd.spawn().expect("paasd starts"))
}

fn ports() -> Ports {
    let f = testkit::free_port;
    Ports {
        api: f(),
        router: f(),
        router_status: f(),
        logs: f(),
        scheduler: f(),
        cell: f(),
        stager: f(),
        ssh: f(),
    }
}

async fn ready(urls: &[String]) {
    for u in urls {
        testkit::wait_http_ok(&format!("{u}/readyz"), Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{u}: {e}"));
    }
}

fn url(p: u16) -> String {
    format!("http://127.0.0.1:{p}")
}

fn readyz(p: &Ports) -> Vec<String> {
    [p.api, p.router_status, p.logs, p.scheduler, p.cell, p.stager]
        .iter()
        .map(|x| url(*x))
        .collect()
}

/// `paasd dev`; `slot` (0-9) keeps its bridge, subnet and host ports apart from other tests'.
async fn dev_platform(slot: u32) -> Platform {
    let dir = tempfile::tempdir().expect("tmp");
    let p = ports();
    let (env, cleanup) = base_env(dir.path(), &p, slot);
    let procs = vec![spawn(&["dev"], &env, dir.path())];
    ready(&readyz(&p)).await;
    Platform {
        api: url(p.api),
        router: url(p.router),
        router_status: url(p.router_status),
        admin_password: "e2e-admin-password".into(),
        stager_work: dir.path().join("stager"),
        _procs: procs,
        _cleanup: cleanup,
        _dir: dir,
        _extra: vec![],
    }
}

/// Seven `paasd run` processes over NATS and PostgreSQL; `slot` as for [`dev_platform`].
async fn distributed_platform(slot: u32) -> Platform {
    let nats = testkit::NatsServer::start().await.expect("nats");
    let api_db = testkit::TestDb::new(testkit::Engine::Postgres).await.expect("api db");
    let sched_db = testkit::TestDb::new(testkit::Engine::Postgres).await.expect("scheduler db");
    let dir = tempfile::tempdir().expect("tmp");
    let p = ports();
    let (mut env, cleanup) = base_env(dir.path(), &p, slot);
    let secret = "e2e-component-secret".to_owned();
    for (k, v) in [
        ("PAAS_BUS_KIND", "nats".to_owned()),
        ("PAAS_BUS_URL", nats.url()),
        ("PAAS_API_DATABASE_URL", api_db.url.clone()),
        ("PAAS_API_EXTERNAL_URL", url(p.api)),
        ("PAAS_API_SCHEDULER_URL", url(p.scheduler)),
        ("PAAS_API_LOGS_URL", url(p.logs)),
        ("PAAS_API_INTERNAL_CLIENT_SECRET", secret.clone()),
        ("PAAS_SCHEDULER_DATABASE_URL", sched_db.url.clone()),
        ("PAAS_SCHEDULER_API_URL", url(p.api)),
        ("PAAS_SCHEDULER_INTERNAL_CLIENT_SECRET", secret.clone()),
        ("PAAS_STAGER_API_URL", url(p.api)),
        ("PAAS_STAGER_INTERNAL_CLIENT_SECRET", secret.clone()),
        ("PAAS_CELL_API_URL", url(p.api)),
        ("PAAS_CELL_SCHEDULER_URL", url(p.scheduler)),
        ("PAAS_CELL_INTERNAL_CLIENT_SECRET", secret.clone()),
        ("PAAS_LOGS_API_URL", url(p.api)),
        ("PAAS_LOGS_INTERNAL_CLIENT_SECRET", secret.clone()),
        ("PAAS_SSH_API_URL", url(p.api)),
        ("PAAS_SSH_SCHEDULER_URL", url(p.scheduler)),
        ("PAAS_SSH_INTERNAL_CLIENT_SECRET", secret),
        // The api advertises the endpoint with the fingerprint of the key the ssh service made.
        ("PAAS_SSH_HOST_KEY_FILE", dir.path().join("ssh-host-key").display().to_string()),
    ] {
        env.push((k.to_owned(), v));
    }
    let mut procs = vec![spawn(&["run", "--services", "ssh"], &env, &dir.path().join("ssh"))];
    let ssh = std::net::SocketAddr::from(([127, 0, 0, 1], p.ssh));
    let listening = (0..600).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        std::net::TcpStream::connect_timeout(&ssh, Duration::from_secs(1)).is_ok()
    });
    assert!(listening, "the ssh service does not listen on {ssh}");
    for (service, port) in [
        ("api", p.api),
        ("logs", p.logs),
        ("scheduler", p.scheduler),
        ("stager", p.stager),
        ("cell", p.cell),
        ("router", p.router_status),
    ] {
        procs.push(spawn(&["run", "--services", service], &env, &dir.path().join(service)));
        ready(&[url(port)]).await;
    }
    Platform {
        api: url(p.api),
        router: url(p.router),
        router_status: url(p.router_status),
        admin_password: "e2e-admin-password".into(),
        stager_work: dir.path().join("stager/stager"),
        _procs: procs,
        _cleanup: cleanup,
        _dir: dir,
        _extra: vec![Box::new(nats), Box::new(api_db), Box::new(sched_db)],
    }
}

/// One user's `paas`, with its own config home.
struct User {
    home: tempfile::TempDir,
}

impl User {
    fn new() -> Self {
        Self { home: tempfile::tempdir().expect("home") }
    }

    fn run_in(&self, dir: Option<&Path>, args: &[&str]) -> Output {
        let mut cmd = Command::new(bin("paas"));
        cmd.args(args)
            .env("PAAS_HOME", self.home.path())
            .env("PAAS_POLL_MS", "200")
            .env("NO_COLOR", "1");
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        cmd.output().expect("paas runs")
    }

    /// Run and require success; returns stdout.
    fn ok(&self, dir: Option<&Path>, args: &[&str]) -> String {
        let out = self.run_in(dir, args);
        let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success(),
            "paas {args:?} failed ({:?}):\n{so}\n{se}",
            out.status.code()
        );
        so.into_owned()
    }
}

async fn get(router: &str, host: &str) -> Option<(u16, String)> {
    let res =
        reqwest::Client::new().get(format!("{router}/")).header("host", host).send().await.ok()?;
    let status = res.status().as_u16();
    Some((status, res.text().await.ok()?))
}

/// Poll the router until `host` answers 200 with `want` in the body.
async fn served(router: &str, host: &str, want: &str) -> String {
    testkit::eventually(&format!("{host} serves '{want}'"), Duration::from_secs(60), || async {
        let (st, body) = get(router, host).await?;
        (st == 200 && body.contains(want)).then_some(body)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read fixture") {
        let e = e.expect("entry");
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
}

/// Fixture folders in a scratch dir (the binary one with the server built for it).
fn fixtures(scratch: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    for f in ["static", "python", "node", "binary"] {
        copy_dir(&src.join(f), &scratch.join(f));
    }
    let server = scratch.join("binary/fixture-server");
    std::fs::copy(env!("CARGO_BIN_EXE_fixture-server"), &server).expect("server");
    scratch.to_owned()
}

async fn user_journey(p: Platform, label: &str) {
    let scratch = tempfile::tempdir().expect("scratch");
    let apps = fixtures(scratch.path());
    let admin = User::new();
    admin.ok(None, &["login", "-a", &p.api, "-u", "admin", "-p", &p.admin_password]);
    admin.ok(None, &["create-org", "acme"]);
    admin.ok(None, &["create-space", "dev", "-o", "acme"]);
    admin.ok(None, &["create-user", "dana", "dana-password"]);
    admin.ok(None, &["set-space-role", "dana", "acme", "dev", "SpaceDeveloper"]);
    let dana = User::new();
    let out = dana.ok(
        None,
        &["login", "-a", &p.api, "-u", "dana", "-p", "dana-password", "-o", "acme", "-s", "dev"],
    );
    assert!(out.contains("org:") && out.contains("acme") && out.contains("dev"), "{out}");

    // 2. Four fixture apps from their manifests, each through the router.
    let mut timings = Vec::new();
    for (dir, host, want) in [
        ("static", "static-site.apps.localhost", "static fixture v1"),
        ("python", "py-app.apps.localhost", "python fixture, six 1.16.0"),
        ("node", "node-app.apps.localhost", "node fixture --x"),
        ("binary", "bin-app.apps.localhost", "binary fixture"),
    ] {
        let started = Instant::now();
        let out = dana.ok(Some(&apps.join(dir)), &["push"]);
        served(&p.router, host, want).await;
        timings.push((dir, started.elapsed()));
        assert!(out.contains("Staging app and tracing logs") && out.contains("running"), "{out}");
    }

    // Push benchmark: warm caches (the same apps again, unchanged).
    for (dir, host, want) in [
        ("static", "static-site.apps.localhost", "static fixture v1"),
        ("python", "py-app.apps.localhost", "python fixture"),
    ] {
        let started = Instant::now();
        dana.ok(Some(&apps.join(dir)), &["push"]);
        served(&p.router, host, want).await;
        eprintln!(
            "[{label}] push bench: {dir} (warm) to first 200 through the router: {:?}",
            started.elapsed()
        );
    }
    for (dir, t) in &timings {
        eprintln!("[{label}] first push of {dir} to first 200: {t:?}");
    }

    // The python app's buildpack cache, kept since its pushes, is cleared through the API
    // (`cf curl`, as cf has no command for it); its next staging starts afresh.
    let py = dana.ok(None, &["app", "py-app", "--guid"]).trim().to_owned();
    let cache = p.stager_work.join("app-cache").join(&py);
    assert!(cache.is_dir(), "the stager keeps {}", cache.display());
    dana.ok(None, &["curl", "-X", "POST", &format!("/v3/apps/{py}/actions/clear_buildpack_cache")]);
    testkit::eventually("the app's buildpack cache cleared", Duration::from_secs(20), || async {
        (!cache.exists()).then_some(())
    })
    .await
    .expect("cache cleared");

    // 3. Three instances, all serving, all reported running.
    dana.ok(None, &["scale", "py-app", "-i", "3"]);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    testkit::eventually("requests spread over three instances", Duration::from_secs(60), || {
        let (router, seen) = (p.router.clone(), seen.clone());
        async move {
            let (_, body) = get(&router, "py-app.apps.localhost").await?;
            let mut seen = seen.lock().ok()?;
            if let Some(i) = body.trim().rsplit(' ').next() {
                seen.insert(i.to_owned());
            }
            (seen.len() == 3).then_some(())
        }
    })
    .await
    .expect("three instances answer");
    let app = dana.ok(None, &["app", "py-app"]);
    let running = app.lines().filter(|l| l.starts_with('#') && l.contains(" running ")).count();
    assert_eq!(running, 3, "three running instances:\n{app}");
    assert!(app.contains("instances:      3/3"), "{app}");
    let json = dana.ok(None, &["app", "py-app", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let stats = v["processes"][0]["stats"].as_array().expect("stats").clone();
    assert!(stats.iter().all(|s| s["state"] == "RUNNING"), "{stats:?}");

    // Route options: least-connection set with update-route reaches every router entry of
    // the route, and goes away again.
    let out = dana.ok(
        None,
        &[
            "update-route",
            "apps.localhost",
            "-n",
            "py-app",
            "--option",
            "loadbalancing=least-connection",
        ],
    );
    assert!(out.contains("Setting route option loadbalancing") && out.contains("OK"), "{out}");
    let out = dana.ok(None, &["route", "apps.localhost", "-n", "py-app"]);
    assert!(out.contains("loadbalancing=least-connection"), "{out}");
    let algorithms = |want: &'static str| {
        let status = p.router_status.clone();
        async move {
            let table: serde_json::Value =
                reqwest::get(format!("{status}/routes")).await.ok()?.json().await.ok()?;
            let eps = table["py-app.apps.localhost"].as_array()?.clone();
            (eps.len() == 3 && eps.iter().all(|e| e["load_balancing_algorithm"] == want))
                .then_some(())
        }
    };
    testkit::eventually("least-connection in the router", Duration::from_secs(30), || {
        algorithms("least-connection")
    })
    .await
    .expect("the router balances py-app by least connection");
    let out = dana.run_in(
        None,
        &["update-route", "apps.localhost", "-n", "py-app", "--option", "loadbalancing=random"],
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("Loadbalancing must be one of"), "{text}");
    dana.ok(
        None,
        &["update-route", "apps.localhost", "-n", "py-app", "--remove-option", "loadbalancing"],
    );
    testkit::eventually("round-robin again", Duration::from_secs(30), || algorithms("round-robin"))
        .await
        .expect("the router balances py-app round-robin again");
    // The protocol the app speaks on the route reaches the router too (and back: the python
    // fixture speaks HTTP/1.1 only).
    let protocols = |want: &'static str| {
        let status = p.router_status.clone();
        async move {
            let table: serde_json::Value =
                reqwest::get(format!("{status}/routes")).await.ok()?.json().await.ok()?;
            let eps = table["py-app.apps.localhost"].as_array()?.clone();
            (eps.len() == 3 && eps.iter().all(|e| e["protocol"] == want)).then_some(())
        }
    };
    for want in ["http2", "http1"] {
        let out = dana.ok(
            None,
            &[
                "update-destination",
                "py-app",
                "apps.localhost",
                "-n",
                "py-app",
                "--app-protocol",
                want,
            ],
        );
        assert!(out.contains(&format!("to {want}")) && out.contains("OK"), "{out}");
        testkit::eventually(&format!("{want} in the router"), Duration::from_secs(30), || {
            protocols(want)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    served(&p.router, "py-app.apps.localhost", "python fixture").await;

    // 4. Kill one instance's process from outside: replaced, and still serving.
    let victim = stats[1]["instance_guid"].as_str().expect("instance").to_owned();
    let container: String = victim.chars().filter(char::is_ascii_alphanumeric).take(12).collect();
    let killed = Command::new("runc")
        .args(["kill", &format!("paas-{container}"), "KILL"])
        .status()
        .expect("runc kill");
    assert!(killed.success(), "instance container exists");
    testkit::eventually("the killed instance is replaced", Duration::from_secs(60), || async {
        let out = dana.run_in(None, &["app", "py-app", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let s = v["processes"][0]["stats"].as_array()?.clone();
        let replaced = s.iter().all(|x| x["state"] == "RUNNING")
            && s.iter().all(|x| x["instance_guid"] != victim.as_str());
        replaced.then_some(())
    })
    .await
    .expect("replaced");
    served(&p.router, "py-app.apps.localhost", "python fixture").await;

    // 5. Logs: recent from every source, and a followed line.
    let recent =
        testkit::eventually("recent logs from every source", Duration::from_secs(30), || async {
            let out =
                String::from_utf8_lossy(&dana.run_in(None, &["logs", "py-app", "--recent"]).stdout)
                    .into_owned();
            ["[STG/", "[APP/PROC/WEB/", "[RTR/", "[API/", "[CELL/"]
                .iter()
                .all(|t| out.contains(t))
                .then_some(out)
        })
        .await
        .expect("every source in recent logs");
    assert!(recent.contains("Installing requirements"), "staging output kept");
    let mut follow = Command::new(bin("paas"))
        .args(["logs", "static-site"])
        .env("PAAS_HOME", dana.home.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("follow");
    let stdout = follow.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let marker = format!("/follow-{}", std::process::id());
    let found = testkit::eventually("followed RTR line", Duration::from_secs(30), || {
        let (router, marker, rx) = (p.router.clone(), marker.clone(), &rx);
        async move {
            let _ = reqwest::Client::new()
                .get(format!("{router}{marker}"))
                .header("host", "static-site.apps.localhost")
                .send()
                .await;
            while let Ok(line) = rx.try_recv() {
                if line.contains("[RTR/") && line.contains(&marker) {
                    return Some(());
                }
            }
            None
        }
    })
    .await;
    let _ = follow.kill();
    let _ = follow.wait();
    found.expect("a request shows up in followed logs");

    // 6. A changed app is re-pushed; stop, start, restart, delete.
    std::fs::write(apps.join("static/index.html"), "<h1>static fixture v2</h1>\n").expect("edit");
    let out = dana.ok(Some(&apps.join("static")), &["push"]);
    assert!(
        out.contains("1 of 2 need uploading") || out.contains("1 of 1 need uploading"),
        "only the changed file travels:\n{out}"
    );
    served(&p.router, "static-site.apps.localhost", "static fixture v2").await;
    dana.ok(None, &["stop", "node-app"]);
    testkit::eventually("stopped app unrouted", Duration::from_secs(30), || async {
        let (st, _) = get(&p.router, "node-app.apps.localhost").await?;
        (st == 404 || st == 503).then_some(())
    })
    .await
    .expect("stopped");
    dana.ok(None, &["start", "node-app"]);
    served(&p.router, "node-app.apps.localhost", "node fixture").await;
    dana.ok(None, &["restart", "bin-app"]);
    served(&p.router, "bin-app.apps.localhost", "binary fixture").await;

    // 7. Into an instance over ssh, and a one-off task, wherever the platform's parts run.
    let out = dana.ok(None, &["ssh", "bin-app", "-c", "echo inside-$(id -u)"]);
    assert!(out.contains("inside-2000"), "{label}: {out}");
    let out = dana.ok(
        None,
        &["run-task", "bin-app", "--command", "echo task-ran", "--name", "once", "--wait"],
    );
    assert!(out.contains("SUCCEEDED"), "{label}: {out}");
    dana.ok(None, &["delete", "bin-app", "-f", "-r"]);
    let out = dana.run_in(None, &["app", "bin-app"]);
    assert_eq!(out.status.code(), Some(4), "deleted app is not found");

    // 8. Another tenant sees nothing of acme.
    admin.ok(None, &["create-org", "rival"]);
    admin.ok(None, &["create-space", "prod", "-o", "rival"]);
    admin.ok(None, &["create-user", "eve", "eve-password"]);
    admin.ok(None, &["set-space-role", "eve", "rival", "prod", "SpaceDeveloper"]);
    let eve = User::new();
    eve.ok(
        None,
        &["login", "-a", &p.api, "-u", "eve", "-p", "eve-password", "-o", "rival", "-s", "prod"],
    );
    let apps_json = eve.ok(None, &["apps", "--json"]);
    assert_eq!(apps_json.trim(), "[]", "eve sees no apps of acme");
    let orgs = eve.ok(None, &["orgs"]);
    assert!(!orgs.contains("acme"), "{orgs}");
    let py_guid = dana.ok(None, &["app", "py-app", "--guid"]).trim().to_owned();
    for args in [
        vec!["curl".to_owned(), format!("/v3/apps/{py_guid}")],
        vec!["curl".into(), format!("/v3/apps/{py_guid}/actions/stop"), "-X".into(), "POST".into()],
    ] {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = eve.run_in(None, &a);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("App not found"),
            "404 for another tenant's app"
        );
    }
    let out = eve.run_in(None, &["target", "-o", "acme"]);
    assert_eq!(out.status.code(), Some(4), "cannot even target acme");

    // 9. acme shares its private domain with rival: rival's app routes on it, behind the router.
    admin.ok(None, &["create-private-domain", "acme", "acme.test"]);
    eve.ok(Some(&apps.join("static")), &["push", "rival-site", "--no-route"]);
    let out = eve.run_in(None, &["map-route", "rival-site", "acme.test", "-n", "shop"]);
    assert!(!out.status.success(), "not shared yet");
    let out = dana.run_in(None, &["share-private-domain", "rival", "acme.test"]);
    assert!(!out.status.success(), "a developer of acme may not share its domain");
    let out = admin.ok(None, &["share-private-domain", "rival", "acme.test"]);
    assert!(out.contains("Sharing domain") && out.contains("OK"), "{out}");
    eve.ok(None, &["map-route", "rival-site", "acme.test", "-n", "shop"]);
    served(&p.router, "shop.acme.test", "static fixture").await;
    let out = admin.run_in(None, &["unshare-private-domain", "rival", "acme.test", "-f"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("associated routes"), "{text}");
    eve.ok(None, &["delete-route", "acme.test", "-n", "shop", "-f"]);
    admin.ok(None, &["unshare-private-domain", "rival", "acme.test", "-f"]);
    let out = eve.run_in(None, &["create-route", "acme.test", "-n", "again"]);
    assert!(!out.status.success(), "no longer shared");
}

#[tokio::test]
async fn a_developer_pushes_and_runs_apps_on_paasd_dev() {
    user_journey(dev_platform(0).await, "dev").await;
}

#[tokio::test]
async fn a_developer_pushes_and_runs_apps_on_separate_processes() {
    user_journey(distributed_platform(1).await, "distributed").await;
}

/// Requests through the router at a steady pace while deployments happen: every answer's
/// status and body, until stopped.
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Result<(u16, String), String>>>,
}

impl Load {
    /// GET `/` of `host` every 5 ms (≥ 100 requests per second), on a fresh connection each
    /// time half of the time, so pooled and new connections both meet the rollout.
    fn start(router: &str, host: &str) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (router, host, flag) = (router.to_owned(), host.to_owned(), stop.clone());
        let task = tokio::spawn(async move {
            let pooled = reqwest::Client::new();
            let mut out = Vec::new();
            // Bounded: at most ten minutes of requests.
            for n in 0..120_000u32 {
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let fresh;
                let client = if n % 2 == 0 {
                    &pooled
                } else {
                    fresh = reqwest::Client::builder()
                        .pool_max_idle_per_host(0)
                        .build()
                        .expect("client");
                    &fresh
                };
                let res = client
                    .get(format!("{router}/"))
                    .header("host", &host)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                out.push(match res {
                    Ok(r) => {
                        let st = r.status().as_u16();
                        Ok((st, r.text().await.unwrap_or_default()))
                    }
                    Err(e) => Err(e.to_string()),
                });
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            out
        });
        Self { stop, task }
    }

    async fn finish(self) -> Vec<Result<(u16, String), String>> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.task.await.expect("load task")
    }
}

/// The binary fixture as a 3-instance app named `roll`, answering with `version`.
fn roll_app(dir: &Path, version: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/binary");
    copy_dir(&src, dir);
    std::fs::copy(env!("CARGO_BIN_EXE_fixture-server"), dir.join("fixture-server"))
        .expect("server");
    std::fs::write(
        dir.join("manifest.yml"),
        "applications:\n- name: roll\n  memory: 64M\n  instances: 3\n  buildpacks:\n  - binary_buildpack\n",
    )
    .expect("manifest");
    std::fs::write(dir.join("version.txt"), version).expect("version");
}

/// Re-push, roll back, canary and a broken release of a 3-instance app while requests flow
/// through the router: not one fails, each comes from the old or the new version.
async fn deployment_journey(p: Platform, label: &str) {
    let scratch = tempfile::tempdir().expect("scratch");
    let app = scratch.path().join("roll");
    roll_app(&app, "v1");
    let dana = User::new();
    let admin = User::new();
    admin.ok(None, &["login", "-a", &p.api, "-u", "admin", "-p", &p.admin_password]);
    admin.ok(None, &["create-org", "acme"]);
    admin.ok(None, &["create-space", "dev", "-o", "acme"]);
    admin.ok(None, &["create-user", "dana", "dana-password"]);
    admin.ok(None, &["set-space-role", "dana", "acme", "dev", "SpaceDeveloper"]);
    dana.ok(
        None,
        &["login", "-a", &p.api, "-u", "dana", "-p", "dana-password", "-o", "acme", "-s", "dev"],
    );
    let host = "roll.apps.localhost";
    dana.ok(Some(&app), &["push"]);
    served(&p.router, host, "version v1").await;
    testkit::eventually("three instances running", Duration::from_secs(60), || async {
        let out = dana.run_in(None, &["app", "roll"]);
        String::from_utf8_lossy(&out.stdout).contains("3/3").then_some(())
    })
    .await
    .expect("3/3");

    let load = Load::start(&p.router, host);
    let started = Instant::now();
    std::fs::write(app.join("version.txt"), "v2").expect("v2");
    let out = dana.ok(Some(&app), &["push", "--strategy", "rolling"]);
    assert!(out.contains("DEPLOYED"), "{out}");
    let rollout = started.elapsed();
    served(&p.router, host, "version v2").await;

    let revs = dana.ok(None, &["revisions", "roll"]);
    assert!(revs.contains("Initial revision.") && revs.contains("New droplet deployed."), "{revs}");
    let out = dana.ok(None, &["rollback", "roll", "--version", "1", "-f"]);
    assert!(out.contains("DEPLOYED"), "{out}");
    served(&p.router, host, "version v1").await;
    let rev = dana.ok(None, &["revision", "roll", "--version", "3"]);
    assert!(rev.contains("Rolled back to revision 1.") && rev.contains("deployed:"), "{rev}");

    std::fs::write(app.join("version.txt"), "v3").expect("v3");
    let out = dana.ok(Some(&app), &["push", "--strategy", "canary"]);
    assert!(out.contains("PAUSED") && out.contains("continue-deployment"), "{out}");
    let shown = dana.ok(None, &["app", "roll"]);
    assert!(shown.contains("Active deployment with status PAUSED"), "{shown}");
    let out = dana.ok(None, &["continue-deployment", "roll"]);
    assert!(out.contains("DEPLOYED"), "{out}");
    served(&p.router, host, "version v3").await;

    // A release that crashes at start: the rollout stops, the old version keeps serving.
    std::fs::write(app.join("version.txt"), "crash").expect("crash");
    let out = dana.run_in(Some(&app), &["push", "--strategy", "rolling"]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a crashing release fails the push:\n{text}");
    assert!(text.contains("not progressing") && text.contains("cancel-deployment"), "{text}");
    let shown = dana.ok(None, &["app", "roll"]);
    assert!(
        shown.contains("Active deployment with status DEPLOYING") && shown.contains("error:"),
        "{shown}"
    );
    let events = dana.ok(None, &["events", "roll"]);
    assert!(events.contains("audit.app.process.crash"), "{events}");
    assert!(events.contains("audit.app.deployment.create"), "{events}");
    dana.ok(None, &["cancel-deployment", "roll"]);
    testkit::eventually("the deployment is canceled", Duration::from_secs(60), || async {
        let out = dana.run_in(None, &["app", "roll"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (!text.contains("Active deployment")).then_some(())
    })
    .await
    .expect("canceled");
    served(&p.router, host, "version v3").await;
    dana.ok(None, &["restart-app-instance", "roll", "0"]);

    let results = load.finish().await;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| match r {
            Ok((200, body)) if body.contains("binary fixture") => None,
            Ok((st, body)) => Some(format!("{st}: {body}")),
            Err(e) => Some(e.clone()),
        })
        .collect();
    eprintln!(
        "[{label}] {} requests during the deployments, {} failed; rolling deployment of 3 \
         instances (push → FINALIZED): {rollout:?}",
        results.len(),
        failed.len()
    );
    assert!(results.len() > 500, "the load ran: {} requests", results.len());
    assert!(failed.is_empty(), "failed requests: {:?}", &failed[..failed.len().min(10)]);
    // Another tenant's deployment commands are refused.
    let eve = User::new();
    admin.ok(None, &["create-org", "other"]);
    admin.ok(None, &["create-space", "dev", "-o", "other"]);
    admin.ok(None, &["create-user", "eve", "eve-password"]);
    admin.ok(None, &["set-space-role", "eve", "other", "dev", "SpaceDeveloper"]);
    eve.ok(
        None,
        &["login", "-a", &p.api, "-u", "eve", "-p", "eve-password", "-o", "other", "-s", "dev"],
    );
    let out = eve.run_in(None, &["rollback", "roll", "--version", "1", "-f"]);
    assert_eq!(out.status.code(), Some(4), "another tenant's app is not found");
}

// The CLI runs block their thread: the load runs on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_deploys_without_downtime_on_paasd_dev() {
    deployment_journey(dev_platform(2).await, "dev").await;
}

// The CLI runs block their thread: the load runs on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_deploys_without_downtime_on_separate_processes() {
    deployment_journey(distributed_platform(3).await, "distributed").await;
}

/// Stdout and stderr of a `paas` run, for messages.
fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// What public apps expect of cf and the CF buildpacks: a single-app manifest pushed under
/// another name, Python compile hooks that are not executable, `pkg_resources` at run time
/// (with the buildpack's setuptools, and with the app's own pin), and a Go app with vendored
/// modules on the trixie stack.
#[tokio::test]
async fn public_apps_push_as_on_cloud_foundry() {
    let p = dev_platform(4).await;
    let scratch = tempfile::tempdir().expect("scratch");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    for f in ["renamed", "python-hooks", "python-pkg-resources", "go-vendored"] {
        copy_dir(&src.join(f), &scratch.path().join(f));
    }
    let app = |f: &str| scratch.path().join(f);
    let dev = User::new();
    dev.ok(None, &["login", "-a", &p.api, "-u", "admin", "-p", &p.admin_password]);
    dev.ok(None, &["create-org", "acme"]);
    dev.ok(None, &["create-space", "dev", "-o", "acme"]);
    dev.ok(None, &["target", "-o", "acme", "-s", "dev"]);

    // 1. The name on the command line renames the manifest's single app; with several apps
    //    it must match one of them, as the cf CLI v8 has it.
    let out = dev.ok(Some(&app("renamed")), &["push", "given-name"]);
    assert!(out.contains("Pushing app given-name"), "{out}");
    served(&p.router, "given-name.apps.localhost", "pushed under the name given").await;
    let apps = dev.ok(None, &["apps"]);
    assert!(!apps.contains("name-in-manifest"), "no app of the manifest's name:\n{apps}");
    std::fs::write(
        app("renamed").join("manifest.yml"),
        "applications:\n- name: one\n- name: two\n",
    )
    .expect("two-app manifest");
    let out = dev.run_in(Some(&app("renamed")), &["push", "three"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("Could not find app named 'three' in manifest"), "{}", text(&out));

    // 2. bin/pre_compile and bin/post_compile, not executable, run around the dependencies.
    let hooks = app("python-hooks");
    for h in ["pre_compile", "post_compile"] {
        std::fs::set_permissions(hooks.join("bin").join(h), Permissions::from_mode(0o644))
            .expect("chmod");
    }
    let out = dev.ok(Some(&hooks), &["push"]);
    let at = |needle: &str| out.find(needle).unwrap_or_else(|| panic!("{needle}:\n{out}"));
    let pre = at("Running bin/pre_compile hook");
    at("pre_compile: before the dependencies, tomli importable: no");
    let install = at("Installing requirements with pip");
    let post = at("Running bin/post_compile hook");
    at("post_compile: after the dependencies, tomli 2.0.1");
    assert!(pre < install && install < post, "hooks around the install:\n{out}");
    served(
        &p.router,
        "py-hooks.apps.localhost",
        "pre_compile ran in app; post_compile saw tomli 2.0.1",
    )
    .await;

    // 3. An app whose dependency imports pkg_resources: the buildpack's setuptools has it.
    let out = dev.ok(Some(&app("python-pkg-resources")), &["push"]);
    assert!(
        out.contains("setuptools==80.10.2") && out.contains("(pinned by the buildpack)"),
        "{out}"
    );
    assert!(out.contains("setuptools 80.10.2 in the app's environment"), "{out}");
    served(&p.router, "py-pkg-resources.apps.localhost", "pkg_resources from setuptools 80.10.2")
        .await;
    // The app's own pin wins.
    let reqs = app("python-pkg-resources").join("requirements.txt");
    let mut pinned = std::fs::read_to_string(&reqs).expect("requirements");
    pinned.push_str("setuptools==75.8.0\n");
    std::fs::write(&reqs, pinned).expect("pin");
    let out = dev.ok(Some(&app("python-pkg-resources")), &["push", "py-own-setuptools"]);
    assert!(
        out.contains("requirements.txt names setuptools: its version requirement wins"),
        "{out}"
    );
    assert!(out.contains("setuptools 75.8.0 in the app's environment"), "{out}");
    served(&p.router, "py-own-setuptools.apps.localhost", "pkg_resources from setuptools 75.8.0")
        .await;

    // 4. A Go app with vendored modules: built on trixie (its manifest says so) with nothing
    //    downloaded; bookworm has no Go, and staging there says what to do.
    let go = app("go-vendored");
    let out = dev.run_in(Some(&go), &["push", "go-on-bookworm", "-s", "bookworm"]);
    assert_eq!(out.status.code(), Some(1), "staging fails:\n{}", text(&out));
    assert!(text(&out).contains("stack has no Go: push the app with -s trixie"), "{}", text(&out));
    let out = dev.ok(Some(&go), &["push"]);
    assert!(out.contains("-----> Go: go version go1."), "{out}");
    assert!(out.contains("Building with GOFLAGS=-mod=vendor"), "{out}");
    assert!(out.contains("built bin/hello"), "{out}");
    assert!(out.contains("trixie"), "the summary names the stack:\n{out}");
    served(&p.router, "go-app.apps.localhost", "go fixture, vendored greeting, go1.").await;
    let stacks = dev.ok(None, &["stacks"]);
    assert!(stacks.contains("bookworm") && stacks.contains("trixie"), "{stacks}");
}

/// `paas ssh` with its stdin a terminal (`script` gives it one), fed `input`.
fn ssh_through_a_pty(user: &User, app: &str, input: &str) -> String {
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &format!("{} ssh {app}", bin("paas").display()), "/dev/null"])
        .env("PAAS_HOME", user.home.path())
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("script runs");
    let mut stdin = child.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut stdin, input.as_bytes()).expect("input");
    // The input stays open until the remote shell has exited (its `exit` ends `paas ssh`).
    let out = child.wait_with_output().expect("script ends");
    drop(stdin);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An OpenSSH client, the code as password through `SSH_ASKPASS` (no terminal: `setsid`).
fn openssh(dir: &Path, port: &str, user: &str, code: &str, command: &str) -> Output {
    let askpass = dir.join("askpass.sh");
    std::fs::write(&askpass, format!("#!/bin/sh\necho '{code}'\n")).expect("askpass");
    std::fs::set_permissions(&askpass, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    Command::new("setsid")
        .args([
            "-w",
            "ssh",
            "-p",
            port,
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "NumberOfPasswordPrompts=1",
            &format!("{user}@127.0.0.1"),
            command,
        ])
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdin(Stdio::null())
        .output()
        .expect("ssh runs")
}

#[tokio::test]
async fn a_developer_enters_an_instance_over_ssh() {
    let p = dev_platform(6).await;
    let scratch = tempfile::tempdir().expect("scratch");
    let apps = fixtures(scratch.path());
    let admin = User::new();
    admin.ok(None, &["login", "-a", &p.api, "-u", "admin", "-p", &p.admin_password]);
    admin.ok(None, &["create-org", "acme"]);
    admin.ok(None, &["create-space", "dev", "-o", "acme"]);
    admin.ok(None, &["create-space", "other", "-o", "acme"]);
    admin.ok(None, &["create-user", "dana", "dana-password"]);
    admin.ok(None, &["create-user", "eve", "eve-password"]);
    admin.ok(None, &["set-space-role", "dana", "acme", "dev", "SpaceDeveloper"]);
    admin.ok(None, &["set-space-role", "eve", "acme", "other", "SpaceDeveloper"]);
    let dana = User::new();
    dana.ok(
        None,
        &["login", "-a", &p.api, "-u", "dana", "-p", "dana-password", "-o", "acme", "-s", "dev"],
    );
    dana.ok(Some(&apps.join("binary")), &["push"]);
    served(&p.router, "bin-app.apps.localhost", "binary fixture").await;

    // A command answers from inside the container: vcap, the container's host name.
    let out = dana.ok(None, &["ssh", "bin-app", "-c", "id; hostname"]);
    assert!(out.contains("uid=2000"), "{out}");
    let host =
        String::from_utf8_lossy(&Command::new("hostname").output().expect("hostname").stdout)
            .trim()
            .to_owned();
    assert!(!out.lines().any(|l| l.trim() == host), "the session ran on the host:\n{out}");
    let status = dana.run_in(None, &["ssh", "bin-app", "-c", "echo oops >&2; exit 3"]);
    assert_eq!(status.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&status.stderr).contains("oops"));

    // An interactive shell through a terminal.
    let out = ssh_through_a_pty(&dana, "bin-app", "tty; echo term=$TERM; id -u; exit\n");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("term=xterm") && out.contains("2000"), "{out}");

    // -L to the app's port, answered by the app.
    let local = testkit::free_port().to_string();
    let mut fwd = Command::new(bin("paas"))
        .args(["ssh", "bin-app", "-N", "-L", &format!("{local}:localhost:8080")])
        .env("PAAS_HOME", dana.home.path())
        .stdin(Stdio::null())
        .spawn()
        .expect("forwarding");
    let url = format!("http://127.0.0.1:{local}/");
    let body = testkit::eventually("-L answers", Duration::from_secs(30), || async {
        let res = reqwest::get(&url).await.ok()?;
        res.text().await.ok().filter(|b| b.contains("binary fixture"))
    })
    .await;
    let _ = fwd.kill();
    let _ = fwd.wait();
    body.expect("the app answers through -L");

    // OpenSSH with a one-time code, as against CF; the code works once.
    let root: serde_json::Value =
        reqwest::get(format!("{}/", p.api)).await.expect("root").json().await.expect("json");
    let href = root["links"]["app_ssh"]["href"].as_str().expect("app_ssh").to_owned();
    assert!(root["links"]["app_ssh"]["meta"]["host_key_fingerprint"]
        .as_str()
        .is_some_and(|f| f.starts_with("SHA256:")));
    let port = href.rsplit(':').next().expect("port").to_owned();
    let guid = dana.ok(None, &["app", "bin-app", "--guid"]).trim().to_owned();
    let code = dana.ok(None, &["ssh-code"]).trim().to_owned();
    let login = format!("cf:{guid}/0");
    let out = openssh(scratch.path(), &port, &login, &code, "echo hello-from-$(id -u)");
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(so.contains("hello-from-2000"), "{so}\n{}", String::from_utf8_lossy(&out.stderr));
    let again = openssh(scratch.path(), &port, &login, &code, "true");
    assert!(!again.status.success(), "a used code is refused");

    // Another tenant is refused; so is a disabled app, and a disabled space.
    let eve = User::new();
    eve.ok(
        None,
        &["login", "-a", &p.api, "-u", "eve", "-p", "eve-password", "-o", "acme", "-s", "other"],
    );
    let code = eve.ok(None, &["ssh-code"]).trim().to_owned();
    let out = openssh(scratch.path(), &port, &login, &code, "true");
    assert!(!out.status.success(), "another space's developer is refused");
    dana.ok(None, &["disable-ssh", "bin-app"]);
    let out = dana.run_in(None, &["ssh", "bin-app", "-c", "true"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("enable-ssh"), "{out:?}");
    let code = dana.ok(None, &["ssh-code"]).trim().to_owned();
    assert!(!openssh(scratch.path(), &port, &login, &code, "true").status.success());
    dana.ok(None, &["enable-ssh", "bin-app"]);
    admin.ok(None, &["target", "-o", "acme", "-s", "dev"]);
    admin.ok(None, &["disallow-space-ssh", "dev"]);
    let out = dana.ok(None, &["ssh-enabled", "bin-app"]);
    assert!(out.contains("Disabled for space dev"), "{out}");
    let code = dana.ok(None, &["ssh-code"]).trim().to_owned();
    assert!(!openssh(scratch.path(), &port, &login, &code, "true").status.success());
    admin.ok(None, &["allow-space-ssh", "dev"]);
    dana.ok(None, &["ssh", "bin-app", "-c", "true"]);
    let events = dana.ok(None, &["events", "bin-app"]);
    assert!(events.contains("audit.app.ssh-authorized"), "{events}");
}

/// A backing service on another host: an HTTP store in a network namespace of its own, reached
/// from containers through the host's routing as a database on another machine would be, that
/// appends every POST's path and body to a file.
struct RemoteService {
    netns: String,
    host_veth: String,
    server: Child,
    /// `http://ADDRESS:PORT`.
    url: String,
    log: PathBuf,
}

impl RemoteService {
    fn start(dir: &Path) -> Self {
        let n = std::process::id() % 250;
        let (netns, host_veth, peer) =
            (format!("paas-e2e-svc{n}"), format!("psvc{n}h"), format!("psvc{n}n"));
        let (host_ip, svc_ip) = (format!("10.199.{n}.1"), format!("10.199.{n}.2"));
        let ip = |args: &str| {
            let out = Command::new("sh").args(["-c", &format!("ip {args}")]).output().expect("ip");
            assert!(out.status.success(), "ip {args}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let _ = Command::new("ip").args(["netns", "del", &netns]).output();
        let _ = Command::new("ip").args(["link", "del", &host_veth]).output();
        ip(&format!("netns add {netns}"));
        ip(&format!("link add {host_veth} type veth peer name {peer}"));
        ip(&format!("link set {peer} netns {netns}"));
        ip(&format!("addr add {host_ip}/30 dev {host_veth}"));
        ip(&format!("link set {host_veth} up"));
        ip(&format!("netns exec {netns} ip addr add {svc_ip}/30 dev {peer}"));
        ip(&format!("netns exec {netns} ip link set {peer} up"));
        ip(&format!("netns exec {netns} ip link set lo up"));
        ip(&format!("netns exec {netns} ip route add default via {host_ip}"));
        let log = dir.join("service-writes.txt");
        let script = format!(
            "import http.server, socketserver\n\
             class H(http.server.BaseHTTPRequestHandler):\n\
             \x20def do_POST(self):\n\
             \x20 body = self.rfile.read(int(self.headers['Content-Length'] or 0))\n\
             \x20 open({log:?}, 'a').write(self.path + ' ' + body.decode() + '\\n')\n\
             \x20 self.send_response(201); self.end_headers()\n\
             socketserver.TCPServer(('{svc_ip}', 5480), H).serve_forever()\n",
            log = log.display().to_string()
        );
        let server = Command::new("ip")
            // (TCPServer: HTTPServer would look its name up first, with no DNS in reach.)
            .args(["netns", "exec", &netns, "python3", "-c", &script])
            .stdout(Stdio::null())
            .spawn()
            .expect("service");
        let addr: std::net::SocketAddr = format!("{svc_ip}:5480").parse().expect("addr");
        let up = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
        });
        let service = Self { netns, host_veth, server, url: format!("http://{addr}"), log };
        assert!(up, "the service in {} does not listen on {addr}", service.netns);
        service
    }

    fn writes(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for RemoteService {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).output();
        let _ = Command::new("ip").args(["link", "del", &self.host_veth]).output();
    }
}

/// One-off tasks of a pushed app, as a developer runs migrations and batch jobs: one that
/// succeeds (its output in the app's logs as `APP/TASK/<name>`), one that fails with its exit
/// status, a long one terminated, a migration writing to a bound service on another host;
/// another tenant cannot run one.
#[tokio::test]
async fn a_developer_runs_tasks_on_paasd_dev() {
    let p = dev_platform(5).await;
    let scratch = tempfile::tempdir().expect("scratch");
    let app = scratch.path().join("roll");
    roll_app(&app, "v1");
    let admin = User::new();
    admin.ok(None, &["login", "-a", &p.api, "-u", "admin", "-p", &p.admin_password]);
    admin.ok(None, &["create-org", "acme"]);
    admin.ok(None, &["create-space", "dev", "-o", "acme"]);
    admin.ok(None, &["target", "-o", "acme", "-s", "dev"]);
    admin.ok(Some(&app), &["push", "-i", "1"]);

    let out = admin.ok(
        None,
        &[
            "run-task",
            "roll",
            "--command",
            "echo migrated $MEMORY_LIMIT; cat version.txt",
            "--name",
            "migrate",
            "-m",
            "64M",
            "--wait",
        ],
    );
    assert!(out.contains("SUCCEEDED"), "{out}");
    let logs = testkit::eventually("task output in the logs", Duration::from_secs(30), || async {
        let out = admin.run_in(None, &["logs", "roll", "--recent"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text.contains("APP/TASK/migrate") && text.contains("migrated 64m") && text.contains("v1"))
            .then_some(text)
    })
    .await
    .expect("APP/TASK lines");
    assert!(logs.contains("Exit status 0"), "{logs}");

    let out = admin
        .run_in(None, &["run-task", "roll", "--command", "exit 3", "--name", "broken", "--wait"]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("FAILED") && said.contains("Exited with status 3"), "{said}");

    admin.ok(None, &["run-task", "roll", "--command", "sleep 600", "--name", "long"]);
    testkit::eventually("the long task runs", Duration::from_secs(30), || async {
        let out = admin.run_in(None, &["task", "roll", "3"]);
        String::from_utf8_lossy(&out.stdout).contains("RUNNING").then_some(())
    })
    .await
    .expect("running");
    admin.ok(None, &["terminate-task", "roll", "3"]);
    let shown =
        testkit::eventually("the long task is cancelled", Duration::from_secs(60), || async {
            let out = admin.run_in(None, &["task", "roll", "3"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.contains("FAILED").then_some(text)
        })
        .await
        .expect("cancelled");
    assert!(shown.contains("task was cancelled"), "{shown}");
    let list = admin.ok(None, &["tasks", "roll"]);
    assert!(
        list.contains("migrate") && list.contains("SUCCEEDED") && list.contains("broken"),
        "{list}"
    );
    let out = admin.run_in(None, &["terminate-task", "roll", "1"]);
    assert!(!out.status.success(), "a finished task cannot be terminated");

    // A migration writes to a bound service on another host, found in VCAP_SERVICES.
    let db = RemoteService::start(scratch.path());
    let creds = format!(r#"{{"uri": "{}"}}"#, db.url);
    admin.ok(None, &["cups", "orders-db", "-p", &creds]);
    admin.ok(None, &["bind-service", "roll", "orders-db"]);
    let migrate = "python3 -c 'import json, os, urllib.request as u; \
        c = json.loads(os.environ[\"VCAP_SERVICES\"])[\"user-provided\"][0][\"credentials\"]; \
        u.urlopen(c[\"uri\"] + \"/migrations\", data=b\"0001_create_orders\", timeout=10); \
        print(\"schema migrated\")'";
    let out = admin.run_in(
        None,
        &["run-task", "roll", "--command", migrate, "--name", "db-migrate", "--wait"],
    );
    assert!(
        out.status.success(),
        "{}\nlogs:\n{}\nservice saw: {}",
        text(&out),
        text(&admin.run_in(None, &["logs", "roll", "--recent"])),
        db.writes()
    );
    assert_eq!(db.writes(), "/migrations 0001_create_orders\n", "the service got the write");

    // Another tenant: the app is not found.
    admin.ok(None, &["create-org", "other"]);
    admin.ok(None, &["create-space", "dev", "-o", "other"]);
    admin.ok(None, &["create-user", "eve", "eve-password"]);
    admin.ok(None, &["set-space-role", "eve", "other", "dev", "SpaceDeveloper"]);
    let eve = User::new();
    eve.ok(
        None,
        &["login", "-a", &p.api, "-u", "eve", "-p", "eve-password", "-o", "other", "-s", "dev"],
    );
    let out = eve.run_in(None, &["run-task", "roll", "--command", "id"]);
    assert_eq!(out.status.code(), Some(4), "another tenant's app is not found");
}
