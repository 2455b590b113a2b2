//! An api on a random port with a fake scheduler (HTTP, records desired LRPs, reports every
//! desired instance RUNNING) and a fake stager (on the bus: claims the build, downloads the
//! package, uploads a droplet, reports success), for driving the API as the cf CLI does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{json, Value};
use testkit::TestDb;
use wire::lrp::{ActualLrp, ActualState, DesiredLrp, DesiredLrpUpdate, Presence};

pub type Desired = Arc<Mutex<BTreeMap<String, DesiredLrp>>>;

pub struct Platform {
    pub url: String,
    pub admin_token: String,
    pub desired: Desired,
    pub tasks: Tasks,
    /// How long the fake scheduler takes to answer.
    pub scheduler_delay: Delay,
    pub staged: Arc<Mutex<Vec<wire::staging::StagingRequest>>>,
    /// While set, the fake stager leaves every staging request alone (as if none listened).
    pub stager_paused: Arc<std::sync::atomic::AtomicBool>,
    /// The api's bus, for publishing what other components would.
    pub bus: bus::DynBus,
    pub data: tempfile::TempDir,
    shutdown: kit::Shutdown,
    task: tokio::task::JoinHandle<Result<(), api::Error>>,
}

pub const SECRET: &str = "component-secret";

/// `(name, position, zip)` of one tiny buildpack, so builds have something to resolve.
fn buildpacks() -> Vec<(String, u32, Vec<u8>)> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    zip.start_file("bin/detect", opts).expect("zip");
    std::io::Write::write_all(&mut zip, b"#!/bin/sh\nexit 0\n").expect("zip");
    let bytes = zip.finish().expect("zip").into_inner();
    vec![("test_buildpack".into(), 1, bytes)]
}

pub async fn start(db: &TestDb, tweak: impl FnOnce(&mut api::Config)) -> Platform {
    let desired: Desired = Arc::new(Mutex::new(BTreeMap::new()));
    let scheduler_delay = Delay::default();
    let tasks = Tasks::default();
    let sched = fake_scheduler(desired.clone(), tasks.clone(), scheduler_delay.clone()).await;
    let port = testkit::free_port();
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = api::Config {
        addr: format!("127.0.0.1:{port}").parse().expect("addr"),
        external_url: format!("http://127.0.0.1:{port}"),
        data_dir: data.path().join("api"),
        database_url: db.url.clone(),
        admin_password: Some("admin-secret-pw".into()),
        internal_client_secret: SECRET.into(),
        scheduler_url: sched,
        logs_url: "http://127.0.0.1:9".into(),
        ..Default::default()
    };
    tweak(&mut config);
    let bus: bus::DynBus = Arc::new(bus::InProcessBus::new());
    let staged = Arc::new(Mutex::new(Vec::new()));
    let stager_paused = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let url = format!("http://127.0.0.1:{port}");
    fake_stager(bus.clone(), url.clone(), staged.clone(), stager_paused.clone()).await;
    let service =
        api::build(config, api::Deps { bus: bus.clone(), bundled_buildpacks: buildpacks() })
            .await
            .expect("build");
    let shutdown = kit::Shutdown::new();
    let task = tokio::spawn(service.run(shutdown.clone()));
    testkit::wait_http_ok(&format!("{url}/readyz"), Duration::from_secs(10)).await.expect("ready");
    let admin_token = password_token(&url, "admin", "admin-secret-pw").await;
    Platform {
        url,
        admin_token,
        desired,
        tasks,
        scheduler_delay,
        staged,
        stager_paused,
        bus,
        data,
        shutdown,
        task,
    }
}

impl Platform {
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

pub async fn password_token(url: &str, user: &str, pw: &str) -> String {
    let res: Value = reqwest::Client::new()
        .post(format!("{url}/oauth/token"))
        .basic_auth("cf", Some(""))
        .form(&[("grant_type", "password"), ("username", user), ("password", pw)])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    res["access_token"].as_str().expect("access_token").to_owned()
}

pub async fn component_token(url: &str) -> String {
    let res: Value = reqwest::Client::new()
        .post(format!("{url}/oauth/token"))
        .basic_auth("paas-internal", Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    res["access_token"].as_str().expect("access_token").to_owned()
}

/// A client speaking to the api as one user.
#[derive(Clone)]
pub struct Client {
    pub url: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Client {
    pub fn new(url: &str, token: &str) -> Self {
        Self { url: url.into(), token: token.into(), http: reqwest::Client::new() }
    }

    pub fn full(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.into()
        } else {
            format!("{}{path}", self.url)
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.full(path)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = StatusCode::from_u16(res.status().as_u16()).expect("status");
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    /// POST a YAML body; returns status and `Location`.
    pub async fn post_yaml(&self, path: &str, yaml: &str) -> (StatusCode, Option<String>, Value) {
        let res = self
            .http
            .post(self.full(path))
            .bearer_auth(&self.token)
            .header("content-type", "application/x-yaml")
            .body(yaml.to_owned())
            .send()
            .await
            .expect("request");
        let status = StatusCode::from_u16(res.status().as_u16()).expect("status");
        let loc = res.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = res.text().await.expect("body");
        (status, loc, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// DELETE an asynchronous resource: 202, then the job once it left PROCESSING.
    pub async fn delete_job(&self, path: &str) -> Value {
        let res = self
            .http
            .delete(self.full(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("delete");
        assert_eq!(res.status(), 202, "DELETE {path}");
        let loc = res.headers()["location"].to_str().expect("location").to_owned();
        self.wait_job(&loc).await
    }

    /// Poll a job until it leaves PROCESSING.
    pub async fn wait_job(&self, location: &str) -> Value {
        testkit::eventually("job finished", Duration::from_secs(20), || async {
            let (_, j) = self.get(location).await;
            (j["state"] != "PROCESSING").then_some(j)
        })
        .await
        .expect("job finished")
    }

    /// Multipart upload of `resources` and optional `bits`.
    pub async fn upload(
        &self,
        package: &str,
        resources: Value,
        bits: Option<Vec<u8>>,
    ) -> (StatusCode, Value) {
        let mut form = reqwest::multipart::Form::new().text("resources", resources.to_string());
        if let Some(b) = bits {
            form = form.part("bits", reqwest::multipart::Part::bytes(b).file_name("package.zip"));
        }
        let res = self
            .http
            .post(format!("{}/v3/packages/{package}/upload", self.url))
            .bearer_auth(&self.token)
            .multipart(form)
            .send()
            .await
            .expect("upload");
        let status = StatusCode::from_u16(res.status().as_u16()).expect("status");
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

/// A zip of `(path, mode, content)`.
pub fn zip_of(files: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, mode, body) in files {
        let opts = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
        zip.start_file(*path, opts).expect("zip entry");
        std::io::Write::write_all(&mut zip, body).expect("zip write");
    }
    zip.finish().expect("zip").into_inner()
}

#[derive(serde::Deserialize)]
struct Filter {
    log_guid: Option<String>,
    domain: Option<String>,
    process_guid: Option<String>,
}

/// Milliseconds the fake scheduler waits before answering any request (0: at once).
pub type Delay = Arc<std::sync::atomic::AtomicU64>;

/// The fake scheduler's tasks: held running from their `PUT` until the api cancels them (then
/// gone, their guid in `cancelled`); the test reports their end through the api's callback.
#[derive(Clone, Default)]
pub struct Tasks {
    pub held: Arc<Mutex<BTreeMap<String, wire::task::Task>>>,
    pub cancelled: Arc<Mutex<Vec<String>>>,
}

impl Tasks {
    /// A running task the api never asked for, made like one it held.
    pub fn hold_unknown(&self, guid: &str) {
        let mut def =
            self.held.lock().expect("lock").values().next().expect("a task").definition.clone();
        def.task_guid = guid.into();
        def.log_guid = "deleted-app".into();
        self.take(def);
    }

    fn take(&self, definition: wire::task::TaskDefinition) {
        let t = wire::task::Task {
            definition,
            state: wire::task::TaskState::Running,
            cell_id: "cell-1".into(),
            failed: false,
            failure_reason: String::new(),
            placement_error: String::new(),
            created_at: 0,
            updated_at: 0,
        };
        self.held.lock().expect("lock").insert(t.definition.task_guid.clone(), t);
    }
}

fn task_routes(tasks: Tasks) -> Router {
    Router::new()
        .route(
            "/v1/tasks",
            get(|State(t): State<Tasks>| async move {
                Json(t.held.lock().expect("lock").values().cloned().collect::<Vec<_>>())
            }),
        )
        .route(
            "/v1/tasks/{guid}",
            axum::routing::put(
                |State(t): State<Tasks>, Json(def): Json<wire::task::TaskDefinition>| async move {
                    t.take(def);
                    StatusCode::CREATED
                },
            ),
        )
        .route(
            "/v1/tasks/{guid}/cancel",
            axum::routing::post(|State(t): State<Tasks>, Path(g): Path<String>| async move {
                if t.held.lock().expect("lock").remove(&g).is_none() {
                    return StatusCode::NOT_FOUND;
                }
                t.cancelled.lock().expect("lock").push(g);
                StatusCode::ACCEPTED
            }),
        )
        .with_state(tasks)
}

async fn fake_scheduler(desired: Desired, tasks: Tasks, delay: Delay) -> String {
    let app =
        Router::new()
            .route(
                "/v1/desired_lrps",
                get(|State(d): State<Desired>, Query(f): Query<Filter>| async move {
                    let d = d.lock().expect("lock");
                    let list: Vec<DesiredLrp> = d
                        .values()
                        .filter(|l| f.log_guid.as_ref().is_none_or(|g| &l.log_guid == g))
                        .filter(|l| f.domain.as_ref().is_none_or(|g| &l.domain == g))
                        .cloned()
                        .collect();
                    Json(list)
                }),
            )
            .route(
                "/v1/desired_lrps/{guid}",
                axum::routing::put(
                    |State(d): State<Desired>,
                     Path(g): Path<String>,
                     Json(lrp): Json<DesiredLrp>| async move {
                        let mut d = d.lock().expect("lock");
                        match d.get(&g) {
                            Some(old)
                                if old.start_command != lrp.start_command || old.env != lrp.env =>
                            {
                                StatusCode::UNPROCESSABLE_ENTITY
                            }
                            Some(_) => {
                                d.insert(g, lrp);
                                StatusCode::OK
                            }
                            None => {
                                d.insert(g, lrp);
                                StatusCode::CREATED
                            }
                        }
                    },
                )
                .patch(
                    |State(d): State<Desired>,
                     Path(g): Path<String>,
                     Json(u): Json<DesiredLrpUpdate>| async move {
                        let mut d = d.lock().expect("lock");
                        let Some(l) = d.get_mut(&g) else { return StatusCode::NOT_FOUND };
                        if let Some(i) = u.instances {
                            l.instances = i;
                        }
                        if let Some(r) = u.routes {
                            l.routes = r;
                        }
                        StatusCode::OK
                    },
                )
                .delete(
                    |State(d): State<Desired>, Path(g): Path<String>| async move {
                        if d.lock().expect("lock").remove(&g).is_some() {
                            StatusCode::NO_CONTENT
                        } else {
                            StatusCode::NOT_FOUND
                        }
                    },
                ),
            )
            .route(
                "/v1/actual_lrps",
                get(|State(d): State<Desired>, Query(f): Query<Filter>| async move {
                    let d = d.lock().expect("lock");
                    let mut out = Vec::new();
                    for l in d
                        .values()
                        .filter(|l| f.process_guid.as_ref().is_none_or(|g| &l.process_guid == g))
                    {
                        for i in 0..l.instances {
                            out.push(ActualLrp {
                                process_guid: l.process_guid.clone(),
                                index: i,
                                domain: l.domain.clone(),
                                instance_guid: format!("inst-{i}"),
                                cell_id: "cell-1".into(),
                                state: ActualState::Running,
                                presence: Presence::Ordinary,
                                address: "10.0.0.1".into(),
                                instance_address: "10.255.0.2".into(),
                                ports: vec![wire::lrp::PortMapping {
                                    container_port: 8080,
                                    host_port: 61000,
                                }],
                                crash_count: 0,
                                crash_reason: String::new(),
                                placement_error: String::new(),
                                since: 0,
                                routable: true,
                            });
                        }
                    }
                    Json(out)
                }),
            )
            .route("/v1/actual_lrps/{guid}/{index}", delete(|| async { StatusCode::NO_CONTENT }))
            .with_state(desired)
            .merge(task_routes(tasks))
            .layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    let ms = delay.load(std::sync::atomic::Ordering::SeqCst);
                    async move {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        next.run(req).await
                    }
                },
            ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The fake stager's id in its claims.
pub const FAKE_STAGER: &str = "fake-stager";

/// Stages every request unless paused: claims the build (leaving it when the claim is refused),
/// checks the package is a zip, uploads a droplet, reports success.
async fn fake_stager(
    bus: bus::DynBus,
    api: String,
    seen: Arc<Mutex<Vec<wire::staging::StagingRequest>>>,
    paused: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut sub = bus
        .queue_subscribe(wire::subjects::STAGING_REQUEST, wire::subjects::STAGING_QUEUE)
        .await
        .expect("sub");
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let Ok(req) = serde_json::from_slice::<wire::staging::StagingRequest>(&msg.payload)
            else {
                continue;
            };
            if paused.load(std::sync::atomic::Ordering::SeqCst) {
                continue;
            }
            let http = reqwest::Client::new();
            let token = component_token(&api).await;
            let claim = http
                .post(&req.claim_url)
                .bearer_auth(&token)
                .json(&json!({"stager_id": FAKE_STAGER}))
                .send()
                .await
                .expect("claim");
            if claim.status() == StatusCode::CONFLICT {
                continue;
            }
            assert!(claim.status().is_success(), "claim: {}", claim.status());
            seen.lock().expect("lock").push(req.clone());
            let pkg = http.get(&req.package_url).bearer_auth(&token).send().await.expect("package");
            assert!(pkg.status().is_success(), "package download: {}", pkg.status());
            let bytes = pkg.bytes().await.expect("package bytes");
            assert!(bytes.starts_with(b"PK"), "package is a zip");
            let droplet = format!("droplet of {}", req.app_guid).into_bytes();
            let sha = {
                use sha2::Digest as _;
                hex::encode(sha2::Sha256::digest(&droplet))
            };
            let up = http
                .put(&req.droplet_upload_url)
                .bearer_auth(&token)
                .body(droplet.clone())
                .send()
                .await
                .expect("upload");
            assert!(up.status().is_success(), "droplet upload: {}", up.status());
            let result = json!({
                "build_guid": req.build_guid, "status": "staged",
                "droplet_sha256": sha, "droplet_size": droplet.len(),
                "detected_buildpack": "test_buildpack",
                "buildpacks": [{"key": "test_buildpack-1", "name": "test_buildpack", "version": "1.0", "detect_output": "test"}],
                "process_types": {"web": "python3 app.py", "worker": "python3 worker.py"},
            });
            let done = http
                .post(&req.completion_url)
                .bearer_auth(&token)
                .json(&result)
                .send()
                .await
                .expect("complete");
            assert!(done.status().is_success(), "completion: {}", done.status());
        }
    });
}
