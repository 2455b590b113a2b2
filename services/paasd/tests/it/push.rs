//! One real push through every service of `paasd dev`: the api takes the upload, a stager runs
//! the real buildpacks in a runc container on the real stack, the scheduler places the
//! instance, a cell runs it under runc, the router serves it by host name, and the logs
//! service has the staging, API, cell, router and app lines. Driven with the cf CLI's call
//! sequence.

use std::time::Duration;

use serde_json::{json, Value};

use crate::{Paasd, Ports};

/// Containers, mounts, bridge and nft table of this test's cell, removed even on failure.
pub struct CellCleanup {
    pub data: String,
    pub bridge: String,
    pub table: String,
}

impl Drop for CellCleanup {
    fn drop(&mut self) {
        let sh = |c: String| {
            let _ = std::process::Command::new("sh").args(["-c", &c]).output();
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

pub struct Cf {
    pub api: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Cf {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url =
            if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.api) };
        let mut req = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("api request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Value {
        let (st, v) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(st, 200, "GET {path}: {v}");
        v
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (st, v) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!((200..300).contains(&st), "POST {path}: {st} {v}");
        v
    }
}

fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, body) in files {
        let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
        zip.start_file(*path, opts).expect("zip entry");
        std::io::Write::write_all(&mut zip, body.as_bytes()).expect("zip write");
    }
    zip.finish().expect("zip").into_inner()
}

/// Env for a cell (and stager) on runc with a network of its own (`slot` keeps tests of one
/// process apart), and the guard that removes what it leaves.
pub fn runc_cell(dir: &std::path::Path, slot: u32) -> (CellCleanup, Vec<(&'static str, String)>) {
    let n = (std::process::id() % 1000) * 4 + slot;
    let bridge = format!("pp{n}");
    let table = format!("paas_p{n}");
    let stacks = stack::test_cache_dir().display().to_string();
    let low = 62000 + slot * 100;
    let env = vec![
        ("PAAS_CELL_BACKEND", "runc".to_owned()),
        ("PAAS_CELL_EVACUATION_TIMEOUT_SECS", "0".to_owned()),
        ("PAAS_CELL_BRIDGE", bridge.clone()),
        ("PAAS_CELL_NFT_TABLE", table.clone()),
        ("PAAS_CELL_SUBNET", format!("10.{}.{}.0", 240 + slot, n % 250)),
        ("PAAS_CELL_HOST_PORT_MIN", low.to_string()),
        ("PAAS_CELL_HOST_PORT_MAX", (low + 99).to_string()),
        ("PAAS_CELL_STACKS_DIR", stacks.clone()),
        ("PAAS_STAGER_STACKS_DIR", stacks),
    ];
    (CellCleanup { data: dir.display().to_string(), bridge, table }, env)
}

/// The cf CLI's push of a Procfile app named `hello` through the api at `api`; returns the
/// app guid once the router at `router` serves it, and the admin's client.
pub async fn push_hello(api: &str, router: &str, admin_password: &str) -> (String, Cf) {
    let api = api.to_owned();
    let http = reqwest::Client::new();
    let tok: Value = http
        .post(format!("{api}/oauth/token"))
        .basic_auth("cf", Some(""))
        .form(&[("grant_type", "password"), ("username", "admin"), ("password", admin_password)])
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("token");
    let cf = Cf {
        api: api.clone(),
        token: tok["access_token"].as_str().expect("token").to_owned(),
        http: http.clone(),
    };

    let org = cf.post("/v3/organizations", json!({"name": "e2e"})).await["guid"]
        .as_str()
        .expect("org")
        .to_owned();
    let space = cf
        .post(
            "/v3/spaces",
            json!({"name": "dev", "relationships": {"organization": {"data": {"guid": org}}}}),
        )
        .await["guid"]
        .as_str()
        .expect("space")
        .to_owned();
    let manifest = "applications:\n- name: hello\n  memory: 128M\n  default-route: true\n";
    let res = http
        .post(format!("{api}/v3/spaces/{space}/actions/apply_manifest"))
        .bearer_auth(&cf.token)
        .header("content-type", "application/x-yaml")
        .body(manifest)
        .send()
        .await
        .expect("apply_manifest");
    assert_eq!(res.status(), 202);
    let job = res.headers()["location"].to_str().expect("location").to_owned();
    testkit::eventually("manifest applied", Duration::from_secs(20), || async {
        (cf.get(&job).await["state"] == "COMPLETE").then_some(())
    })
    .await
    .expect("job complete");
    let app = cf.get(&format!("/v3/apps?names=hello&space_guids={space}")).await["resources"][0]
        ["guid"]
        .as_str()
        .expect("app")
        .to_owned();
    let pkg = cf
        .post(
            "/v3/packages",
            json!({"type": "bits", "relationships": {"app": {"data": {"guid": app}}}}),
        )
        .await["guid"]
        .as_str()
        .expect("package")
        .to_owned();
    let bits = zip_of(&[
        ("Procfile", "web: python3 -m http.server $PORT\n"),
        ("hello.txt", "hello from a real push\n"),
    ]);
    let form = reqwest::multipart::Form::new()
        .text("resources", "[]")
        .part("bits", reqwest::multipart::Part::bytes(bits).file_name("package.zip"));
    let res = http
        .post(format!("{api}/v3/packages/{pkg}/upload"))
        .bearer_auth(&cf.token)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), 200);
    let build = cf.post("/v3/builds", json!({"package": {"guid": pkg}})).await["guid"]
        .as_str()
        .expect("build")
        .to_owned();
    let build = testkit::eventually("staged", Duration::from_secs(180), || async {
        let b = cf.get(&format!("/v3/builds/{build}")).await;
        (b["state"] != "STAGING").then_some(b)
    })
    .await
    .expect("staging finished");
    assert_eq!(build["state"], "STAGED", "{build}");
    let droplet = build["droplet"]["guid"].as_str().expect("droplet");
    let (st, _) = cf
        .call(
            reqwest::Method::PATCH,
            &format!("/v3/apps/{app}/relationships/current_droplet"),
            Some(json!({"data": {"guid": droplet}})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        cf.post(&format!("/v3/apps/{app}/actions/restart"), json!({})).await["state"],
        "STARTED"
    );
    testkit::eventually("running", Duration::from_secs(120), || async {
        let s = cf.get(&format!("/v3/processes/{app}/stats")).await;
        assert_ne!(s["resources"][0]["state"], "CRASHED", "{s}");
        (s["resources"][0]["state"] == "RUNNING").then_some(())
    })
    .await
    .expect("instance running");

    let body =
        testkit::eventually("served through the router", Duration::from_secs(30), || async {
            let res = http
                .get(format!("{router}/hello.txt"))
                .header("host", "hello.apps.localhost")
                .send()
                .await
                .ok()?;
            (res.status() == 200).then_some(())?;
            res.text().await.ok()
        })
        .await
        .expect("router serves the app");
    assert_eq!(body, "hello from a real push\n");

    (app, cf)
}

#[tokio::test]
async fn a_push_runs_in_a_container_behind_the_router() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = Ports::free();
    let (_cleanup, runc_env) = runc_cell(dir.path(), 0);
    let mut env = ports.env();
    env.retain(|(k, _)| *k != "PAAS_CELL_BACKEND");
    env.extend(runc_env);
    env.push(("PAAS_ADMIN_PASSWORD", "e2e-admin-password".to_owned()));
    // Under a strict umask, as an operator's shell may have: what paasd writes for the apps'
    // user (builder, droplet, image, instance directories) must still be readable by it.
    let mut paasd = Paasd::spawn_with_umask("077", &["dev"], &env, dir.path());
    ports.wait_ready(&mut paasd, Duration::from_secs(60)).await;
    let api = format!("http://127.0.0.1:{}", ports.api);
    let router = format!("http://127.0.0.1:{}", ports.router);
    let (app, cf) = push_hello(&api, &router, "e2e-admin-password").await;
    let http = cf.http.clone();
    // Every stage wrote to the app's log stream.
    let logs = format!("http://127.0.0.1:{}", ports.logs);
    let types = testkit::eventually("logs of every source", Duration::from_secs(20), || async {
        let read: Value = http
            .get(format!("{logs}/api/v1/read/{app}?envelope_types=LOG&limit=1000"))
            .bearer_auth(&cf.token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let types: Vec<String> = read["envelopes"]["batch"]
            .as_array()?
            .iter()
            .filter_map(|e| e["tags"]["source_type"].as_str().map(str::to_owned))
            .collect();
        ["STG", "API", "CELL", "RTR", "APP/PROC/WEB"]
            .iter()
            .all(|t| types.iter().any(|x| x == t))
            .then_some(types)
    })
    .await
    .expect("log lines");
    assert!(types.iter().any(|t| t == "STG"));

    // paasd killed outright: its container outlives it, the scheduler's database still has
    // the instance running. The next start sweeps the container, the cell's bulk sync tells
    // the scheduler, and the instance is placed again and served.
    let _ = paasd.child.kill();
    let _ = paasd.child.wait();
    let mut paasd = Paasd::spawn(&["dev"], &env, dir.path());
    ports.wait_ready(&mut paasd, Duration::from_secs(60)).await;
    // Served again after the restart (placed anew after the bulk sync).
    routed(&http, &router, "hello.apps.localhost", true, Duration::from_secs(90)).await;
    let stats = cf.get(&format!("/v3/processes/{app}/stats")).await;
    assert_eq!(stats["resources"][0]["state"], "RUNNING", "{stats}");

    // Stopping the app takes its instance off the router (gorouter: 503 `no_endpoints` while
    // the emptied route is remembered, 404 `unknown_route` once it is pruned).
    assert_eq!(
        cf.post(&format!("/v3/apps/{app}/actions/stop"), json!({})).await["state"],
        "STOPPED"
    );
    testkit::eventually("unrouted", Duration::from_secs(60), || async {
        let res = http
            .get(format!("{router}/hello.txt"))
            .header("host", "hello.apps.localhost")
            .send()
            .await
            .ok()?;
        let why = res.headers().get("x-cf-routererror")?.to_str().ok()?.to_owned();
        (why == "no_endpoints" || why == "unknown_route").then_some(())
    })
    .await
    .expect("stopped app is no longer routed");
}

/// `paasd dev` where runc is not to be used (`PAAS_CELL_BACKEND=process`, as on a machine
/// without root or runc): the same push is staged and run as plain processes, served by the
/// router and stopped.
#[tokio::test]
async fn a_push_runs_as_plain_processes_without_runc() {
    let dir = crate::data_dir();
    let ports = Ports::free();
    let mut env = ports.env();
    env.push(("PAAS_ADMIN_PASSWORD", "process-admin-password".to_owned()));
    // The router trusts the test's route service (see below).
    let cert = testkit::route_service::Cert::localhost();
    env.push(("PAAS_ROUTER_ROUTE_SERVICES_CA_FILE", cert.ca_file()));
    // Under a strict umask, as an operator's shell may have: what paasd writes for the apps'
    // user (builder, droplet, image, instance directories) must still be readable by it.
    let mut paasd = Paasd::spawn_with_umask("077", &["dev"], &env, dir.path());
    ports.wait_ready(&mut paasd, Duration::from_secs(60)).await;
    let api = format!("http://127.0.0.1:{}", ports.api);
    let router = format!("http://127.0.0.1:{}", ports.router);
    let (app, cf) = push_hello(&api, &router, "process-admin-password").await;
    // No container: the app runs from its own directory under the cell's data.
    let instances = dir.path().join("cell/instances");
    let dirs = std::fs::read_dir(&instances).map(|d| d.count()).unwrap_or(0);
    assert_eq!(dirs, 1, "one instance directory in {}", instances.display());

    // A route mapped to the running app is served at once, and no longer once unmapped: the
    // scheduler tells the cell, which registers and unregisters it (no restart, no waiting
    // for the routers to prune it).
    let extra = map_route(&cf, &app, "extra").await;
    routed(&cf.http, &router, "extra.apps.localhost", true, AT_ONCE).await;
    let (st, _) = cf
        .call(
            reqwest::Method::DELETE,
            &format!("/v3/routes/{}/destinations/{}", extra.route, extra.destination),
            None,
        )
        .await;
    assert_eq!(st, 204);
    routed(&cf.http, &router, "extra.apps.localhost", false, AT_ONCE).await;
    routed(&cf.http, &router, "hello.apps.localhost", true, AT_ONCE).await;

    // A route service bound to the app's route (cf create-user-provided-service -r,
    // cf bind-route-service): every request goes through it first, and straight to the app
    // again once unbound.
    let (rs_port, seen) = testkit::route_service::start(&cert, router.clone()).await;
    let space = cf.get(&format!("/v3/apps/{app}")).await["relationships"]["space"]["data"]["guid"]
        .as_str()
        .expect("space")
        .to_owned();
    let instance = cf
        .post(
            "/v3/service_instances",
            json!({"type": "user-provided", "name": "guard",
                   "route_service_url": format!("https://localhost:{rs_port}/check"),
                   "relationships": {"space": {"data": {"guid": space}}}}),
        )
        .await["guid"]
        .as_str()
        .expect("instance")
        .to_owned();
    let route = cf.get(&format!("/v3/apps/{app}/routes")).await["resources"][0]["guid"]
        .as_str()
        .expect("route")
        .to_owned();
    let binding = cf
        .post(
            "/v3/service_route_bindings",
            json!({"relationships": {"route": {"data": {"guid": route}},
                   "service_instance": {"data": {"guid": instance}}}}),
        )
        .await["guid"]
        .as_str()
        .expect("binding")
        .to_owned();
    let via_service = || async {
        let res = cf
            .http
            .get(format!("{router}/hello.txt"))
            .header("host", "hello.apps.localhost")
            .send()
            .await
            .ok()?;
        let via = res.headers().get("x-route-service").is_some();
        (res.status() == 200).then_some(via)
    };
    testkit::eventually("through the route service", Duration::from_secs(10), || async {
        via_service().await.filter(|via| *via)
    })
    .await
    .expect("the bound route service reached within seconds");
    let s = seen.lock().expect("lock").last().cloned().expect("seen");
    assert_eq!(s.forwarded_url, "http://hello.apps.localhost/hello.txt");
    assert!(s.signed, "{s:?}");
    let (st, _) = cf
        .call(reqwest::Method::DELETE, &format!("/v3/service_route_bindings/{binding}"), None)
        .await;
    assert_eq!(st, 204);
    testkit::eventually("straight to the app again", Duration::from_secs(10), || async {
        via_service().await.filter(|via| !*via)
    })
    .await
    .expect("unbound within seconds");

    assert_eq!(
        cf.post(&format!("/v3/apps/{app}/actions/stop"), json!({})).await["state"],
        "STOPPED"
    );
    testkit::eventually("instance released", Duration::from_secs(30), || async {
        let left = std::fs::read_dir(&instances).map(|d| d.count()).unwrap_or(0);
        (left == 0).then_some(())
    })
    .await
    .expect("the instance's directory is removed after the stop");
}

pub struct Mapped {
    pub route: String,
    pub destination: String,
}

/// Create `<host>.apps.localhost` in the app's space and map it to the app.
pub async fn map_route(cf: &Cf, app: &str, host: &str) -> Mapped {
    let a = cf.get(&format!("/v3/apps/{app}")).await;
    let space = a["relationships"]["space"]["data"]["guid"].as_str().expect("space");
    let domains = cf.get("/v3/domains?names=apps.localhost").await;
    let domain = domains["resources"][0]["guid"].as_str().expect("domain");
    let route = cf
        .post(
            "/v3/routes",
            json!({"host": host, "relationships": {
                "space": {"data": {"guid": space}}, "domain": {"data": {"guid": domain}}}}),
        )
        .await["guid"]
        .as_str()
        .expect("route")
        .to_owned();
    let d = cf
        .post(
            &format!("/v3/routes/{route}/destinations"),
            json!({"destinations": [{"app": {"guid": app}}]}),
        )
        .await;
    let destination = d["destinations"][0]["guid"].as_str().expect("destination").to_owned();
    Mapped { route, destination }
}

/// Wait until the router serves `host` (or, `false`, no longer does) `within`.
pub async fn routed(
    http: &reqwest::Client,
    router: &str,
    host: &str,
    served: bool,
    within: Duration,
) {
    let what = format!("{host} {}", if served { "served" } else { "unrouted" });
    testkit::eventually(&what, within, || async {
        let res = http.get(format!("{router}/hello.txt")).header("host", host).send().await.ok()?;
        ((res.status() == 200) == served).then_some(())
    })
    .await
    .expect("the router's table as expected in time");
}

/// A route change must reach the routers at once: well within the 20 s re-registration and
/// the 120 s prune.
const AT_ONCE: Duration = Duration::from_secs(10);
