//! The web dashboard in a real headless Chromium (through chromedriver) against a real
//! `paasd dev` on runc: a developer signs in, finds an app pushed with the `paas` CLI, sees its
//! instance, watches a request through the router appear live in its logs, scales it to three
//! instances and sees them come up, is told "not found" for another tenant's app, and sees app
//! names and log lines full of HTML rendered as text, with no dialog ever opened; an operator
//! sees the platform's cells, routes and health and follows its components' own logs (which a
//! developer may not). Screenshots go to a directory printed in the output.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: build it first (cargo build -p paasd -p paas)",
        p.display()
    );
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

/// Containers, mounts, bridge and nft table of the platform's cell.
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

struct Platform {
    api: String,
    router: String,
    dashboard: String,
    proc: Option<Proc>,
    _cleanup: CellCleanup,
    _dir: tempfile::TempDir,
}

impl Drop for Platform {
    fn drop(&mut self) {
        drop(self.proc.take());
    }
}

const ADMIN_PASSWORD: &str = "e2e-admin-password";
/// Apart from the other e2e platforms (slots 0-6): bridge, nft table, subnet, host ports.
const SLOT: u32 = 7;

async fn dev_platform() -> Platform {
    let dir = tempfile::tempdir().expect("tmp");
    let f = testkit::free_port;
    let (api, router, router_status, logs, scheduler, cell, stager, ssh, dashboard) =
        (f(), f(), f(), f(), f(), f(), f(), f(), f());
    let n = (std::process::id() % 1000) * 10 + SLOT;
    let a = |port: u16| format!("127.0.0.1:{port}");
    let stacks = stack::test_cache_dir().display().to_string();
    let env: Vec<(&str, String)> = vec![
        ("PAAS_API_ADDR", a(api)),
        ("PAAS_ROUTER_ADDR", a(router)),
        ("PAAS_ROUTER_STATUS_ADDR", a(router_status)),
        ("PAAS_LOGS_ADDR", a(logs)),
        ("PAAS_SCHEDULER_ADDR", a(scheduler)),
        ("PAAS_CELL_ADDR", a(cell)),
        ("PAAS_STAGER_STATUS_ADDR", a(stager)),
        ("PAAS_SSH_ADDR", a(ssh)),
        ("PAAS_DASHBOARD_ADDR", a(dashboard)),
        ("PAAS_CELL_BACKEND", "runc".into()),
        ("PAAS_CELL_EVACUATION_TIMEOUT_SECS", "0".into()),
        ("PAAS_CELL_BRIDGE", format!("pe{n}")),
        ("PAAS_CELL_NFT_TABLE", format!("paas_e{n}")),
        ("PAAS_CELL_SUBNET", format!("10.{}.{}.0", 230 + SLOT, n % 250)),
        ("PAAS_CELL_HOST_PORT_MIN", (63000 + SLOT * 200).to_string()),
        ("PAAS_CELL_HOST_PORT_MAX", (63199 + SLOT * 200).to_string()),
        ("PAAS_CELL_STACKS_DIR", stacks.clone()),
        ("PAAS_STAGER_STACKS_DIR", stacks),
        ("PAAS_ADMIN_PASSWORD", ADMIN_PASSWORD.into()),
        // Each service's "started" line (info, from paasd) is shipped as that component's
        // log: the platform logs the operator follows below.
        ("RUST_LOG", "warn,paasd=info".into()),
    ];
    let cleanup = CellCleanup {
        data: dir.path().display().to_string(),
        bridge: format!("pe{n}"),
        table: format!("paas_e{n}"),
    };
    let mut cmd = Command::new(bin("paasd"));
    cmd.arg("dev").env("PAAS_DATA_DIR", dir.path()).stdout(Stdio::null()).stderr(Stdio::inherit());
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let proc = Proc(cmd.spawn().expect("paasd starts"));
    let url = |p: u16| format!("http://127.0.0.1:{p}");
    for p in [api, router_status, logs, scheduler, cell, stager, dashboard] {
        testkit::wait_http_ok(&format!("{}/readyz", url(p)), Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", url(p)));
    }
    Platform {
        api: url(api),
        router: url(router),
        dashboard: url(dashboard),
        proc: Some(proc),
        _cleanup: cleanup,
        _dir: dir,
    }
}

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

    fn ok(&self, dir: Option<&Path>, args: &[&str]) -> String {
        let out = self.run_in(dir, args);
        let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "paas {args:?} failed:\n{so}\n{se}");
        so.into_owned()
    }
}

/// chromedriver on a free port, and a headless Chromium session through it.
async fn browser() -> (Proc, Client) {
    let port = testkit::free_port();
    let driver = Proc(
        Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (apt-get install chromium chromium-driver)"),
    );
    testkit::wait_http_ok(&format!("http://127.0.0.1:{port}/status"), Duration::from_secs(20))
        .await
        .expect("chromedriver answers");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"],
        }),
    );
    // A dialog opened by an injected script stays open, so the test can see it.
    caps.insert("unhandledPromptBehavior".into(), serde_json::json!("ignore"));
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a browser session");
    (driver, client)
}

/// Screenshots of each step, kept after the test.
struct Shots {
    dir: PathBuf,
    n: u32,
}

impl Shots {
    async fn take(&mut self, c: &Client, name: &str) {
        self.n += 1;
        let png = c.screenshot().await.expect("screenshot");
        let path = self.dir.join(format!("{:02}-{name}.png", self.n));
        std::fs::write(&path, png).expect("write screenshot");
    }
}

/// Evaluate `js` (a function body returning a value) until it returns something truthy.
async fn until(c: &Client, what: &str, secs: u64, js: &str) -> serde_json::Value {
    testkit::eventually(what, Duration::from_secs(secs), || async {
        let v = c.execute(js, vec![]).await.ok()?;
        let truthy = match &v {
            serde_json::Value::Null | serde_json::Value::Bool(false) => false,
            serde_json::Value::Number(n) => n.as_f64() != Some(0.0),
            serde_json::Value::String(s) => !s.is_empty(),
            _ => true,
        };
        truthy.then_some(v)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn text(c: &Client, js: &str) -> String {
    c.execute(js, vec![]).await.expect("script").as_str().unwrap_or("").to_owned()
}

/// The whole journey in one browser session.
#[tokio::test]
async fn a_developer_watches_and_scales_an_app_in_the_dashboard() {
    let p = dev_platform().await;
    let started = Instant::now();
    let pid = std::process::id();

    // Tenants: dana develops in acme/dev; rival/prod holds someone else's app.
    let admin = User::new();
    admin.ok(None, &["login", "-a", &p.api, "-u", "admin", "-p", ADMIN_PASSWORD]);
    admin.ok(None, &["create-org", "acme"]);
    admin.ok(None, &["create-space", "dev", "-o", "acme"]);
    admin.ok(None, &["create-user", "dana", "dana-password"]);
    admin.ok(None, &["set-space-role", "dana", "acme", "dev", "SpaceDeveloper"]);
    admin.ok(None, &["create-org", "rival"]);
    admin.ok(None, &["create-space", "prod", "-o", "rival"]);
    admin.ok(None, &["target", "-o", "rival", "-s", "prod"]);
    admin.ok(None, &["create-app", "rival-app"]);
    let rival_guid = admin.ok(None, &["app", "rival-app", "--guid"]).trim().to_owned();
    let dana = User::new();
    dana.ok(
        None,
        &["login", "-a", &p.api, "-u", "dana", "-p", "dana-password", "-o", "acme", "-s", "dev"],
    );

    // The binary fixture, printing a line of HTML as it starts.
    let scratch = tempfile::tempdir().expect("scratch");
    let app_dir = scratch.path().join("dash-app");
    std::fs::create_dir_all(&app_dir).expect("mkdir");
    std::fs::copy(env!("CARGO_BIN_EXE_fixture-server"), app_dir.join("fixture-server"))
        .expect("server");
    std::fs::write(
        app_dir.join("manifest.yml"),
        "applications:\n- name: dash-app\n  memory: 64M\n  buildpacks:\n  - binary_buildpack\n",
    )
    .expect("manifest");
    std::fs::write(
        app_dir.join("Procfile"),
        "web: echo '<b id=\"xss-log\">bold</b><img src=x onerror=alert(3)>' && exec ./fixture-server\n",
    )
    .expect("Procfile");
    dana.ok(Some(&app_dir), &["push"]);
    let app_guid = dana.ok(None, &["app", "dash-app", "--guid"]).trim().to_owned();
    let script_name = "<script>alert(1)</script>";
    let img_name = "<img src=x onerror=alert(2)>";
    dana.ok(None, &["create-app", script_name]);
    dana.ok(None, &["create-app", img_name]);
    let script_guid = dana.ok(None, &["app", script_name, "--guid"]).trim().to_owned();
    dana.ok(None, &["set-env", "dash-app", "API_SECRET", "s3cret-value"]);
    eprintln!("platform and apps ready after {:?}", started.elapsed());

    // The dashboard's own headers.
    let res = reqwest::get(format!("{}/login", p.dashboard)).await.expect("login page");
    let hdr = |n: &str| res.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(hdr("content-security-policy").starts_with("default-src 'self'"));
    assert_eq!(hdr("x-content-type-options"), "nosniff");
    assert_eq!(hdr("x-frame-options"), "DENY");

    let dir = std::env::temp_dir().join(format!("paas-dashboard-screenshots-{pid}"));
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    eprintln!("dashboard screenshots: {}", dir.display());
    let mut shots = Shots { dir, n: 0 };
    let browser_started = Instant::now();
    let (_driver, c) = browser().await;

    // 1. Signing in: an unknown browser lands on the sign-in form.
    c.goto(&format!("{}/", p.dashboard)).await.expect("open");
    until(&c, "the sign-in form", 10, "return document.querySelector('#username') !== null").await;
    assert!(c.current_url().await.expect("url").path().ends_with("/login"));
    c.find(Locator::Id("username")).await.expect("username").send_keys("dana").await.expect("type");
    c.find(Locator::Id("password"))
        .await
        .expect("password")
        .send_keys("wrong-password")
        .await
        .expect("type");
    c.find(Locator::Id("signin")).await.expect("button").click().await.expect("submit");
    until(
        &c,
        "a refusal",
        10,
        "const e = document.querySelector('#signin-error'); return e && !e.hidden && e.textContent",
    )
    .await;
    shots.take(&c, "sign-in-refused").await;
    c.find(Locator::Id("username")).await.expect("username").send_keys("dana").await.expect("type");
    c.find(Locator::Id("password"))
        .await
        .expect("password")
        .send_keys("dana-password")
        .await
        .expect("type");
    c.find(Locator::Id("signin")).await.expect("button").click().await.expect("submit");
    until(
        &c,
        "acme among the orgs",
        15,
        "const o = document.querySelector('#orgs'); return o && o.textContent.includes('acme')",
    )
    .await;
    let who = text(&c, "return document.querySelector('#who').textContent").await;
    assert_eq!(who, "dana");
    let orgs = text(&c, "return document.querySelector('#orgs').textContent").await;
    assert!(!orgs.contains("rival"), "dana sees only her org: {orgs}");
    shots.take(&c, "orgs").await;

    // 2. The space: app names full of HTML are text.
    c.find(Locator::LinkText("dev")).await.expect("space link").click().await.expect("open space");
    until(
        &c,
        "the apps of dev",
        15,
        "return document.querySelectorAll('#apps tbody tr').length === 3",
    )
    .await;
    let names = c
        .execute(
            "return [...document.querySelectorAll('#apps .app-link')].map(a => a.textContent)",
            vec![],
        )
        .await
        .expect("names");
    let names: Vec<String> = serde_json::from_value(names).expect("strings");
    assert!(names.contains(&script_name.to_owned()), "{names:?}");
    assert!(names.contains(&img_name.to_owned()), "{names:?}");
    let injected = c
        .execute("return document.querySelectorAll('main img, main script').length", vec![])
        .await
        .expect("count");
    assert_eq!(injected, serde_json::json!(0), "no element made from an app name");
    shots.take(&c, "space").await;

    // 3. The app: one running instance.
    c.find(Locator::LinkText("dash-app")).await.expect("app link").click().await.expect("open app");
    until(
        &c,
        "the app page",
        15,
        "const h = document.querySelector('#app-name'); return h && h.textContent === 'dash-app'",
    )
    .await;
    until(
        &c,
        "one running instance",
        30,
        "return document.querySelectorAll('#instance-rows tr[data-state=RUNNING]').length === 1",
    )
    .await;

    // 4. A request through the router shows up live in the logs; the app's HTML line is text.
    until(
        &c,
        "the log stream",
        15,
        "return document.querySelector('#log-state').textContent === 'live'",
    )
    .await;
    let marker = format!("/dashboard-marker-{pid}");
    let http = reqwest::Client::new();
    testkit::eventually("the request in the page's logs", Duration::from_secs(30), || {
        let (http, c, marker, router) = (&http, &c, &marker, &p.router);
        async move {
            let _ = http
                .get(format!("{router}{marker}"))
                .header("host", "dash-app.apps.localhost")
                .send()
                .await;
            let logs = c
                .execute("return document.querySelector('#log-lines').textContent", vec![])
                .await
                .ok()?;
            logs.as_str()?.contains(marker.as_str()).then_some(())
        }
    })
    .await
    .expect("a followed RTR line");
    let logs = text(&c, "return document.querySelector('#log-lines').textContent").await;
    assert!(logs.contains("[RTR/"), "{logs}");
    assert!(
        logs.contains("<b id=\"xss-log\">bold</b><img src=x onerror=alert(3)>"),
        "the app's HTML line is shown as text: {logs}"
    );
    let injected = c
        .execute(
            "return document.querySelectorAll('#xss-log, main img, main script').length",
            vec![],
        )
        .await
        .expect("count");
    assert_eq!(injected, serde_json::json!(0), "no element made from a log line");
    // Only the router's lines, when only RTR is picked: the stream restarts with that filter.
    for src in ["APP", "STG", "API", "CELL", "LGR"] {
        c.find(Locator::Id(&format!("src-{src}")))
            .await
            .expect("box")
            .click()
            .await
            .expect("uncheck");
    }
    until(&c, "only RTR lines", 15, "const l = [...document.querySelectorAll('#log-lines .src')]; return l.length > 0 && l.every(x => x.textContent.startsWith('[RTR/'))").await;
    c.execute("document.querySelector('#logs').scrollIntoView()", vec![]).await.expect("scroll");
    shots.take(&c, "app-logs").await;

    // 5. Scale to three and watch them come up.
    let input = c.find(Locator::Id("scale-instances")).await.expect("scale input");
    input.clear().await.expect("clear");
    input.send_keys("3").await.expect("type");
    c.find(Locator::Id("btn-scale")).await.expect("scale").click().await.expect("scale");
    until(
        &c,
        "three running instances",
        60,
        "return document.querySelectorAll('#instance-rows tr[data-state=RUNNING]').length === 3",
    )
    .await;
    let status = text(&c, "return document.querySelector('#action-status').textContent").await;
    assert_eq!(status, "Scale: done");
    until(
        &c,
        "a chart per instance",
        10,
        "return document.querySelectorAll('#charts .chart').length === 3",
    )
    .await;
    shots.take(&c, "scaled").await;
    let out = dana.ok(None, &["app", "dash-app"]);
    assert!(out.contains("3/3"), "{out}");

    // Environment values stay hidden until asked for.
    let env = text(&c, "return document.querySelector('#env-body').textContent").await;
    assert!(env.contains("API_SECRET") && !env.contains("s3cret-value"), "masked: {env}");
    c.find(Locator::Css("button[aria-label='Show API_SECRET']"))
        .await
        .expect("show button")
        .click()
        .await
        .expect("show");
    until(
        &c,
        "the revealed value",
        5,
        "return document.querySelector('#env-body').textContent.includes('s3cret-value')",
    )
    .await;

    // Deleting asks first: cancelled, nothing happens; confirmed, the app is gone.
    c.goto(&format!("{}/#/apps/{script_guid}", p.dashboard)).await.expect("open");
    until(&c, "the script-named app", 15, "const h = document.querySelector('#app-name'); return h && h.textContent.startsWith('<script>')").await;
    c.find(Locator::Id("btn-delete")).await.expect("delete").click().await.expect("delete");
    until(&c, "the confirmation", 5, "return document.querySelector('#confirm-delete').open").await;
    shots.take(&c, "confirm-delete").await;
    c.find(Locator::Id("delete-cancel")).await.expect("cancel").click().await.expect("cancel");
    until(
        &c,
        "the confirmation closed",
        5,
        "return !document.querySelector('#confirm-delete').open",
    )
    .await;
    assert!(dana.run_in(None, &["app", script_name]).status.success(), "cancel deletes nothing");
    c.find(Locator::Id("btn-delete")).await.expect("delete").click().await.expect("delete");
    c.find(Locator::Id("delete-confirm")).await.expect("confirm").click().await.expect("confirm");
    until(&c, "back in the space with two apps", 30, "return location.hash.startsWith('#/spaces/') && document.querySelectorAll('#apps tbody tr').length === 2").await;
    assert_eq!(dana.run_in(None, &["app", script_name]).status.code(), Some(4), "deleted");

    // 6. Someone else's app: not found, as the api says.
    c.goto(&format!("{}/#/apps/{rival_guid}", p.dashboard)).await.expect("open");
    until(
        &c,
        "not found",
        15,
        "const h = document.querySelector('#not-found'); return h && h.textContent",
    )
    .await;
    let h = text(&c, "return document.querySelector('#not-found').textContent").await;
    assert_eq!(h, "App not found");
    shots.take(&c, "other-tenant").await;
    let res = reqwest::get(format!("{}/api/v3/apps/{app_guid}", p.dashboard)).await.expect("get");
    assert_eq!(res.status(), 401, "no session, no api");

    // 7. No dialog was ever opened by anything the page showed (an open one would also have
    // failed every script above).
    assert!(c.get_alert_text().await.is_err(), "an alert or dialog is open");
    let no_admin = text(&c, "return String(document.querySelector('#nav-admin').hidden)").await;
    assert_eq!(no_admin, "true", "developers get no platform page");
    // Nor the platform's logs, asked for directly with her session.
    for path in ["/admin/logs/sources", "/admin/logs/stream?source=api"] {
        let status = c
            .execute_async(
                "const [path, done] = arguments; fetch(path, { credentials: 'same-origin' }).then((r) => done(r.status), (e) => done(String(e)));",
                vec![serde_json::json!(path)],
            )
            .await
            .expect("fetch");
        assert_eq!(status, serde_json::json!(403), "{path} for a developer");
    }

    // 8. Sign out; the admin signs in and sees cells, the route table and component health.
    c.find(Locator::Id("signout")).await.expect("sign out").click().await.expect("sign out");
    until(&c, "the sign-in form again", 10, "return document.querySelector('#username') !== null")
        .await;
    c.goto(&format!("{}/#/apps/{app_guid}", p.dashboard)).await.expect("open");
    until(&c, "still signed out", 10, "return document.querySelector('#username') !== null").await;
    c.find(Locator::Id("username"))
        .await
        .expect("username")
        .send_keys("admin")
        .await
        .expect("type");
    c.find(Locator::Id("password"))
        .await
        .expect("password")
        .send_keys(ADMIN_PASSWORD)
        .await
        .expect("type");
    c.find(Locator::Id("signin")).await.expect("button").click().await.expect("submit");
    until(
        &c,
        "the platform link",
        15,
        "const a = document.querySelector('#nav-admin'); return a && !a.hidden",
    )
    .await;
    c.find(Locator::Id("nav-admin")).await.expect("platform").click().await.expect("open");
    until(&c, "every component ready", 15, "const r = document.querySelectorAll('#health tbody tr'); return r.length === 6 && [...r].every(x => x.dataset.ready === 'true')").await;
    let cells = text(&c, "return document.querySelector('#cells tbody').textContent").await;
    assert!(cells.matches("RUNNING").count() >= 3, "three instances placed: {cells}");
    let routes = text(&c, "return document.querySelector('#route-table tbody').textContent").await;
    assert!(routes.contains("dash-app.apps.localhost"), "{routes}");
    shots.take(&c, "platform").await;

    // 9. The components' own logs: the api's, live, then a cell's (a source id with a slash).
    let sources = until(
        &c,
        "the platform's log sources",
        15,
        "const o = [...document.querySelectorAll('#platform-source option')].map(x => x.value); return o.includes('api') && o",
    )
    .await;
    let sources: Vec<String> = serde_json::from_value(sources).expect("strings");
    assert!(!sources.contains(&app_guid), "apps are not platform sources: {sources:?}");
    assert!(sources.iter().any(|s| s.starts_with("router/")), "{sources:?}");
    let select = c.find(Locator::Id("platform-source")).await.expect("source select");
    select.select_by_value("api").await.expect("choose the api");
    until(
        &c,
        "the api's log lines",
        20,
        "return document.querySelector('#platform-log-state').textContent === 'live' && document.querySelectorAll('#platform-logs li').length > 0",
    )
    .await;
    let api_logs = text(&c, "return document.querySelector('#platform-logs').textContent").await;
    assert!(api_logs.contains("[API]") && api_logs.contains("api started"), "{api_logs}");
    c.execute("document.querySelector('#platform').scrollIntoView()", vec![])
        .await
        .expect("scroll");
    shots.take(&c, "platform-logs").await;
    let cell = sources.iter().find(|s| s.starts_with("cell/")).expect("a cell among the sources");
    select.select_by_value(cell).await.expect("choose the cell");
    until(
        &c,
        "the cell's log lines",
        20,
        "const l = [...document.querySelectorAll('#platform-logs .src')]; return l.length > 0 && l.every(x => x.textContent.startsWith('[CELL/'))",
    )
    .await;
    eprintln!("browser part took {:?}", browser_started.elapsed());
    c.close().await.expect("close the browser");
}
