//! The exact call sequence of a cf CLI v8 push, on both engines:
//! from apply_manifest to a STARTED app whose desired state reached the scheduler, then a
//! second push that uploads only the changed file.

use axum::http::StatusCode;
use serde_json::{json, Value};
use testkit::{Engine, TestDb};

use crate::harness::{self, Client};

const MANIFEST: &str = "applications:\n- name: myapp\n  memory: 256M\n  instances: 2\n  default-route: true\n  env:\n    GREETING: hello\n";

/// Org and space for the admin; returns the space guid.
pub async fn org_and_space(c: &Client, org: &str) -> (String, String) {
    let (st, o) = c.post("/v3/organizations", json!({"name": org})).await;
    assert_eq!(st, StatusCode::CREATED, "{o}");
    let org_guid = o["guid"].as_str().expect("org guid").to_owned();
    let (st, s) = c
        .post(
            "/v3/spaces",
            json!({"name": "dev", "relationships": {"organization": {"data": {"guid": org_guid}}}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{s}");
    (org_guid, s["guid"].as_str().expect("space guid").to_owned())
}

/// An app named `name` in `space`; its guid.
pub async fn app_in(c: &Client, space: &str, name: &str) -> String {
    let (st, app) = c
        .post(
            "/v3/apps",
            json!({"name": name, "relationships": {"space": {"data": {"guid": space}}}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{app}");
    app["guid"].as_str().expect("app").to_owned()
}

pub fn resource(path: &str, body: &[u8]) -> Value {
    use sha1::Digest as _;
    json!({"path": path, "mode": "644", "checksum": {"value": hex::encode(sha1::Sha1::digest(body))}, "size_in_bytes": body.len()})
}

/// Steps 5-16 for one version of the app's files; returns (matched resource count, droplet).
pub async fn push_bits(c: &Client, app: &str, files: &[(&str, &[u8])]) -> (usize, String) {
    let all: Vec<Value> = files.iter().map(|(p, b)| resource(p, b)).collect();
    let (st, matched) = c.post("/v3/resource_matches", json!({"resources": all})).await;
    assert_eq!(st, StatusCode::CREATED, "{matched}");
    let matched = matched["resources"].as_array().expect("resources").clone();
    for m in &matched {
        assert!(
            u32::from_str_radix(m["mode"].as_str().expect("mode"), 8).is_ok(),
            "mode echoed: {m}"
        );
    }
    let matched_paths: Vec<&str> = matched.iter().filter_map(|m| m["path"].as_str()).collect();
    let (st, pkg) = c
        .post(
            "/v3/packages",
            json!({"type": "bits", "relationships": {"app": {"data": {"guid": app}}}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{pkg}");
    assert_eq!(pkg["state"], "AWAITING_UPLOAD");
    let pkg = pkg["guid"].as_str().expect("pkg").to_owned();
    let unmatched: Vec<(&str, u32, &[u8])> = files
        .iter()
        .filter(|(p, _)| !matched_paths.contains(p))
        .map(|(p, b)| (*p, 0o644, *b))
        .collect();
    let bits = if unmatched.is_empty() { None } else { Some(harness::zip_of(&unmatched)) };
    let (st, up) = c.upload(&pkg, Value::Array(matched.clone()), bits).await;
    assert_eq!(st, StatusCode::OK, "{up}");
    assert_eq!(up["state"], "READY", "{up}");
    let (st, again) = c.upload(&pkg, json!([]), Some(harness::zip_of(&[("x", 0o644, b"x")]))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{again}");
    assert_eq!(again["errors"][0]["title"], "CF-PackageBitsAlreadyUploaded");

    let (st, build) = c.post("/v3/builds", json!({"package": {"guid": pkg}})).await;
    assert_eq!(st, StatusCode::CREATED, "{build}");
    let build = build["guid"].as_str().expect("build").to_owned();
    let staged =
        testkit::eventually("build staged", std::time::Duration::from_secs(20), || async {
            let b = c.get(&format!("/v3/builds/{build}")).await.1;
            (b["state"] != "STAGING").then_some(b)
        })
        .await
        .expect("build finished");
    assert_eq!(staged["state"], "STAGED", "{staged}");
    let droplet = staged["droplet"]["guid"].as_str().expect("droplet").to_owned();
    let (st, d) = c.get(&format!("/v3/droplets/{droplet}")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(d["state"], "STAGED");
    assert_eq!(d["process_types"]["web"], "python3 app.py");
    (matched.len(), droplet)
}

#[tokio::test]
async fn cf_push_sequence_ends_started_with_desired_state_sent() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let c = Client::new(&p.url, &p.admin_token);
        let (_, space) = org_and_space(&c, "acme").await;

        // 1-3: manifest diff, apply_manifest, job.
        let (st, _, diff) =
            c.post_yaml(&format!("/v3/spaces/{space}/manifest_diff"), MANIFEST).await;
        assert_eq!(st, StatusCode::CREATED, "{diff}");
        assert!(diff["diff"].is_array());
        let (st, loc, _) =
            c.post_yaml(&format!("/v3/spaces/{space}/actions/apply_manifest"), MANIFEST).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let loc = loc.expect("Location");
        assert!(loc.starts_with("http://"), "absolute Location: {loc}");
        let job = c.wait_job(&loc).await;
        assert_eq!(job["state"], "COMPLETE", "{job}");

        // 4: find the app.
        let (_, apps) = c.get(&format!("/v3/apps?names=MyApp&space_guids={space}")).await;
        assert_eq!(apps["pagination"]["total_results"], 1, "{apps}");
        let app = apps["resources"][0]["guid"].as_str().expect("app").to_owned();
        assert_eq!(apps["resources"][0]["state"], "STOPPED");
        let (_, web) = c.get(&format!("/v3/processes/{app}")).await;
        assert_eq!(web["instances"], 2, "{web}");
        assert_eq!(web["memory_in_mb"], 256);
        let (_, routes) = c.get(&format!("/v3/apps/{app}/routes")).await;
        assert_eq!(routes["resources"][0]["url"], "myapp.apps.localhost", "{routes}");

        // 5-16.
        let v1: [(&str, &[u8]); 2] = [("app.py", b"print('v1')\n"), ("lib/util.py", b"X = 1\n")];
        let (matched, droplet) = push_bits(&c, &app, &v1).await;
        assert_eq!(matched, 0, "nothing cached before the first push");
        let staged = p.staged.lock().expect("lock").last().cloned().expect("staging request");
        assert_eq!(staged.app_guid, app);
        assert!(!staged.skip_detect);
        assert_eq!(staged.buildpacks[0].name, "test_buildpack");
        assert!(staged.env["VCAP_APPLICATION"].contains("\"application_name\":\"myapp\""));

        let (st, rel) = c
            .patch(
                &format!("/v3/apps/{app}/relationships/current_droplet"),
                json!({"data": {"guid": droplet}}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{rel}");
        assert_eq!(rel["data"]["guid"], droplet.as_str());
        let (st, started) = c.post(&format!("/v3/apps/{app}/actions/restart"), json!({})).await;
        assert_eq!(st, StatusCode::OK, "{started}");
        assert_eq!(started["state"], "STARTED");

        let (_, procs) = c.get(&format!("/v3/apps/{app}/processes")).await;
        let types: Vec<&str> = procs["resources"]
            .as_array()
            .expect("procs")
            .iter()
            .filter_map(|p| p["type"].as_str())
            .collect();
        assert_eq!(types, ["web", "worker"], "droplet process types became processes");
        let (_, stats) = c.get(&format!("/v3/processes/{app}/stats")).await;
        let stats = stats["resources"].as_array().expect("stats").clone();
        assert_eq!(stats.len(), 2);
        assert!(
            stats.iter().all(|s| s["state"] == "RUNNING"
                && s["uptime"].is_i64()
                && s["mem_quota"] == 256 * 1024 * 1024),
            "{stats:?}"
        );

        // The desired LRP the scheduler got.
        let lrp = {
            let d = p.desired.lock().expect("lock");
            d.values()
                .find(|l| l.process_guid.starts_with(&format!("{app}-")))
                .cloned()
                .expect("desired LRP of web sent")
        };
        assert_eq!(lrp.instances, 2);
        assert_eq!(lrp.memory_mb, 256);
        assert_eq!(lrp.start_command, "python3 app.py");
        assert_eq!(lrp.routes[0].uri, "myapp.apps.localhost");
        assert_eq!(lrp.env["GREETING"], "hello");
        assert_eq!(lrp.env["MEMORY_LIMIT"], "256m");
        assert!(lrp
            .image
            .droplet_url
            .ends_with(&format!("/internal/v1/droplets/{droplet}/download")));
        assert!(lrp.process_guid.starts_with(&format!("{app}-")));

        // 17-21: summary calls.
        let (st, _) = c.get(&format!("/v3/processes/{app}/sidecars")).await;
        assert_eq!(st, StatusCode::OK);
        let (st, cur) = c.get(&format!("/v3/apps/{app}/droplets/current")).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(cur["buildpacks"][0]["name"], "test_buildpack");
        let (st, deps) = c.get(&format!("/v3/deployments?app_guids={app}&status_values=ACTIVE&order_by=-created_at&per_page=1&page=1")).await;
        assert_eq!(st, StatusCode::OK, "{deps}");
        assert_eq!(deps["resources"], json!([]));

        // Second push: only the changed file travels.
        let v2: [(&str, &[u8]); 2] = [("app.py", b"print('v2')\n"), ("lib/util.py", b"X = 1\n")];
        let (matched, droplet2) = push_bits(&c, &app, &v2).await;
        assert_eq!(matched, 1, "the unchanged file came from the cache");
        c.patch(
            &format!("/v3/apps/{app}/relationships/current_droplet"),
            json!({"data": {"guid": droplet2}}),
        )
        .await;
        c.post(&format!("/v3/apps/{app}/actions/restart"), json!({})).await;
        let lrps: Vec<String> = p
            .desired
            .lock()
            .expect("lock")
            .values()
            .filter(|l| l.log_guid == app)
            .map(|l| l.process_guid.clone())
            .collect();
        assert_eq!(lrps.len(), 2, "web and worker (0 instances) of the new version only: {lrps:?}");
        assert!(!lrps.contains(&lrp.process_guid), "the old version was removed");

        // Scale, stop, delete.
        let (st, scaled) = c
            .post(&format!("/v3/apps/{app}/processes/web/actions/scale"), json!({"instances": 3}))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{scaled}");
        assert!(p
            .desired
            .lock()
            .expect("lock")
            .values()
            .any(|l| l.log_guid == app && l.instances == 3));
        let (_, stopped) = c.post(&format!("/v3/apps/{app}/actions/stop"), json!({})).await;
        assert_eq!(stopped["state"], "STOPPED");
        assert!(
            !p.desired.lock().expect("lock").values().any(|l| l.log_guid == app),
            "stopping removes desired state"
        );
        let (_, events) = c.get(&format!("/v3/audit_events?target_guids={app}")).await;
        let kinds: Vec<&str> = events["resources"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["type"].as_str())
            .collect();
        for k in [
            "audit.app.create",
            "audit.app.apply_manifest",
            "audit.app.upload-bits",
            "audit.app.build.create",
            "audit.app.droplet.mapped",
            "audit.app.restart",
            "audit.app.process.scale",
            "audit.app.stop",
        ] {
            assert!(kinds.contains(&k), "{k} in {kinds:?}");
        }
        assert_eq!(c.delete_job(&format!("/v3/apps/{app}")).await["state"], "COMPLETE");
        assert_eq!(c.get(&format!("/v3/apps/{app}")).await.0, StatusCode::NOT_FOUND);
        p.stop().await;
    }
}

#[tokio::test]
async fn bad_manifests_and_bodies_get_cf_errors() {
    let db = TestDb::new(Engine::Sqlite).await.expect("db");
    let p = harness::start(&db, |_| {}).await;
    let c = Client::new(&p.url, &p.admin_token);
    let (_, space) = org_and_space(&c, "errs").await;
    let apply = format!("/v3/spaces/{space}/actions/apply_manifest");
    let (st, _, e) = c.post_yaml(&apply, "applications: [").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    let (st, _, e) =
        c.post_yaml(&apply, "applications:\n- name: a\n  memory: lots\n  instances: -1\n").await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e["errors"].as_array().expect("errors").len() >= 2, "all problems reported: {e}");
    let (st, _, e) = c
        .post_yaml(&apply, "applications:\n- name: b\n  routes:\n  - route: b.nodomain.example\n")
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{e}");
    let (st, _, _) = c
        .post_yaml(&apply, "applications:\n- name: b\n  routes:\n  - route: b.nodomain.example\n")
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (_, apps) = c.get(&format!("/v3/apps?names=b&space_guids={space}")).await;
    assert_eq!(apps["pagination"]["total_results"], 1, "apply_manifest is find-or-create: {apps}");
    let (st, e) = c.send(reqwest::Method::POST, "/v3/apps", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["errors"][0]["title"], "CF-MessageParseError");
    let (st, e) = c
        .post(
            "/v3/apps",
            json!({"name": "b", "relationships": {"space": {"data": {"guid": space}}}}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["errors"][0]["detail"], "App with the name 'b' already exists.");
    let (st, e) = c.get("/v3/apps?colour=red").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(e["errors"][0]["title"], "CF-BadQueryParameter");
    let (st, e) = c.get("/v3/apps/00000000-0000-0000-0000-000000000000").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(e["errors"][0]["detail"], "App not found");
    let (st, e) = Client::new(&p.url, "not-a-token").get("/v3/apps").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(e["errors"][0]["title"], "CF-InvalidAuthToken");
    let res = reqwest::get(format!("{}/v3/apps", p.url)).await.expect("get");
    assert_eq!(res.status(), 401);
    let (_, app) = c.get(&format!("/v3/apps?names=b&space_guids={space}")).await;
    let app = app["resources"][0]["guid"].as_str().expect("app").to_owned();
    let (st, e) = c.post(&format!("/v3/apps/{app}/actions/start"), json!({})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["errors"][0]["detail"], "Assign a droplet before starting this app.");
    p.stop().await;
}
