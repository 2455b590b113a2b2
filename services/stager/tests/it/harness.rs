//! The test plays the api: token endpoint, package and buildpack downloads, the claim (and
//! heartbeat) of a build, droplet upload and completion callback, recording what the stager
//! did in order; and listens to the STG log on the bus.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use bus::{BusExt, DynBus};
use sha2::{Digest, Sha256};
use wire::envelope::Envelope;
use wire::staging::{BuildpackRef, StagingClaim, StagingRequest, StagingResult};

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[derive(Default)]
struct Store {
    blobs: Mutex<HashMap<String, Vec<u8>>>,
    droplets: Mutex<HashMap<String, Vec<u8>>>,
    results: Mutex<HashMap<String, StagingResult>>,
    /// Every claim as `(build, stager id, granted)`, in order.
    claims: Mutex<Vec<(String, String, bool)>>,
    /// Builds whose claims are answered 409 (as the api does for one no longer STAGING).
    refused: Mutex<HashSet<String>>,
    /// What the stager did, as `(build, "claim" | "package" | "droplet" | "completion")`.
    events: Mutex<Vec<(String, &'static str)>>,
}

impl Store {
    fn event(&self, build: &str, what: &'static str) {
        self.events.lock().expect("lock").push((build.to_owned(), what));
    }
}

const TOKEN: &str = "test-token";

fn authorized(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("bearer {TOKEN}"))
}

fn api_routes(store: Arc<Store>) -> Router {
    Router::new()
        .route("/oauth/token", post(|| async { Json(serde_json::json!({"access_token": TOKEN, "token_type": "bearer", "expires_in": 3600})) }))
        .route("/blobs/{name}", get(|State(s): State<Arc<Store>>, h: HeaderMap, UrlPath(n): UrlPath<String>| async move {
            if !authorized(&h) { return Err(StatusCode::UNAUTHORIZED) }
            if let Some(build) = n.strip_prefix("pkg-").and_then(|b| b.strip_suffix(".zip")) {
                s.event(build, "package");
            }
            s.blobs.lock().expect("lock").get(&n).cloned().map(Bytes::from).ok_or(StatusCode::NOT_FOUND)
        }))
        .route("/droplets/{build}", put(|State(s): State<Arc<Store>>, h: HeaderMap, UrlPath(b): UrlPath<String>, body: Bytes| async move {
            if !authorized(&h) { return StatusCode::UNAUTHORIZED }
            s.event(&b, "droplet");
            s.droplets.lock().expect("lock").insert(b, body.to_vec());
            StatusCode::CREATED
        }))
        .route("/completions/{build}", post(|State(s): State<Arc<Store>>, h: HeaderMap, UrlPath(b): UrlPath<String>, Json(r): Json<StagingResult>| async move {
            if !authorized(&h) || r.build_guid != b { return StatusCode::BAD_REQUEST }
            s.event(&b, "completion");
            s.results.lock().expect("lock").insert(b, r);
            StatusCode::OK
        }))
        .route("/claims/{build}", post(|State(s): State<Arc<Store>>, h: HeaderMap, UrlPath(b): UrlPath<String>, Json(c): Json<StagingClaim>| async move {
            if !authorized(&h) { return StatusCode::UNAUTHORIZED }
            s.event(&b, "claim");
            let mut claims = s.claims.lock().expect("lock");
            // The first stager's claim wins, as at the api.
            let other = claims.iter().any(|(build, id, granted)| *build == b && *granted && *id != c.stager_id);
            let granted = !other && !s.refused.lock().expect("lock").contains(&b);
            claims.push((b, c.stager_id, granted));
            if granted { StatusCode::OK } else { StatusCode::CONFLICT }
        }))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(store)
}

pub struct Harness {
    pub bus: DynBus,
    pub api_url: String,
    store: Arc<Store>,
    pub work: tempfile::TempDir,
    logs: Arc<Mutex<Vec<(String, String)>>>,
    shutdown: kit::Shutdown,
    stager_stop: kit::Shutdown,
    pub buildpacks: BTreeMap<String, BuildpackRef>,
    /// `http://<status_addr>` of the stager.
    pub status_url: String,
}

/// A finished staging as the api saw it.
pub struct Staging {
    pub result: StagingResult,
    pub droplet: Option<Vec<u8>>,
    pub log: Vec<String>,
}

impl Harness {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut stager::Config)) -> anyhow::Result<Self> {
        let store = Arc::new(Store::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let api_url = format!("http://{}", listener.local_addr()?);
        let shutdown = kit::Shutdown::new();
        let (stop, routes) = (shutdown.clone(), api_routes(store.clone()));
        tokio::spawn(async move {
            axum::serve(listener, routes)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        });
        let bus: DynBus = Arc::new(bus::InProcessBus::new());
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut sub = bus.subscribe("logs.stg").await?;
        let sink = logs.clone();
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                if let Ok(env) = serde_json::from_slice::<Envelope>(&m.payload) {
                    assert_eq!(env.source_type(), Some("STG"));
                    assert_eq!(env.instance_id, "0");
                    let line = env.log_text().unwrap_or_default();
                    sink.lock().expect("lock").push((env.source_id, line));
                }
            }
        });
        let work = tempfile::tempdir()?;
        let mut config = stager::Config {
            status_addr: "127.0.0.1:0".parse()?,
            api_url: api_url.clone(),
            internal_client_secret: "secret".into(),
            stacks_dir: stack::test_cache_dir(),
            work_dir: work.path().join("stager"),
            ..stager::Config::default()
        };
        tweak(&mut config);
        let service = stager::build(config, stager::Deps { bus: bus.clone() }).await?;
        let ready = service.readiness();
        let status_url = format!("http://{}", service.local_addr());
        let status = format!("{status_url}/readyz");
        let stager_stop = kit::Shutdown::new();
        let stop = stager_stop.clone();
        tokio::spawn(async move { service.run(stop).await });
        testkit::eventually("stager ready", Duration::from_secs(10), || {
            let r = ready.is_ready();
            async move { r.then_some(()) }
        })
        .await?;
        testkit::wait_http_ok(&status, Duration::from_secs(5)).await?;
        let mut h = Harness {
            bus,
            api_url,
            store,
            work,
            logs,
            shutdown,
            stager_stop,
            buildpacks: BTreeMap::new(),
            status_url,
        };
        for (name, _pos, zip) in stager::buildpacks::bundled() {
            h.add_buildpack_zip(&name, zip);
        }
        Ok(h)
    }

    fn add_buildpack_zip(&mut self, name: &str, zip: Vec<u8>) -> BuildpackRef {
        let sha = hex::encode(Sha256::digest(&zip));
        let blob = format!("bp-{name}.zip");
        self.store.blobs.lock().expect("lock").insert(blob.clone(), zip);
        let r = BuildpackRef {
            name: name.into(),
            key: format!("{name}-{}", &sha[..8]),
            url: format!("{}/blobs/{blob}", self.api_url),
            sha256: sha,
        };
        self.buildpacks.insert(name.into(), r.clone());
        r
    }

    /// Zips a fixture directory as a buildpack.
    pub fn add_buildpack_dir(&mut self, name: &str, dir: &Path) -> anyhow::Result<BuildpackRef> {
        Ok(self.add_buildpack_zip(name, zip_dir(dir)?))
    }

    pub fn bp(&self, name: &str) -> BuildpackRef {
        self.buildpacks[name].clone()
    }

    /// The admin buildpacks in position order (as the api sends them for detection).
    pub fn admin_order(&self) -> Vec<BuildpackRef> {
        [
            "staticfile_buildpack",
            "python_buildpack",
            "nodejs_buildpack",
            "go_buildpack",
            "procfile_buildpack",
            "binary_buildpack",
        ]
        .iter()
        .map(|n| self.bp(n))
        .collect()
    }

    /// A request for the fixture app `app`, its package uploaded to the fake api.
    pub fn request(
        &self,
        app: &str,
        buildpacks: Vec<BuildpackRef>,
        skip_detect: bool,
    ) -> anyhow::Result<StagingRequest> {
        let build = uuid::Uuid::new_v4().to_string();
        let app_guid = uuid::Uuid::new_v4().to_string();
        let blob = format!("pkg-{build}.zip");
        self.store
            .blobs
            .lock()
            .expect("lock")
            .insert(blob.clone(), zip_dir(&fixtures().join(app))?);
        Ok(StagingRequest {
            build_guid: build.clone(),
            app_guid,
            package_guid: uuid::Uuid::new_v4().to_string(),
            package_url: format!("{}/blobs/{blob}", self.api_url),
            buildpacks,
            skip_detect,
            stack: stack::DEFAULT_STACK.into(),
            memory_mb: 1024,
            disk_mb: 2048,
            timeout_secs: 600,
            env: BTreeMap::from([
                ("VCAP_APPLICATION".into(), r#"{"application_name":"fixture"}"#.into()),
                ("VCAP_SERVICES".into(), "{}".into()),
            ]),
            droplet_upload_url: format!("{}/droplets/{build}", self.api_url),
            completion_url: format!("{}/completions/{build}", self.api_url),
            claim_url: format!("{}/claims/{build}", self.api_url),
        })
    }

    /// Publishes the request and waits for the completion callback.
    pub async fn stage(&self, req: &StagingRequest) -> anyhow::Result<Staging> {
        self.bus.publish_json(wire::subjects::STAGING_REQUEST, req).await?;
        let limit = Duration::from_secs(req.timeout_secs + 120);
        let result = testkit::eventually("staging result", limit, || {
            let r = self.store.results.lock().expect("lock").get(&req.build_guid).cloned();
            async move { r }
        })
        .await?;
        let droplet = self.store.droplets.lock().expect("lock").get(&req.build_guid).cloned();
        let log = self.log_of(&req.app_guid);
        Ok(Staging { result, droplet, log })
    }

    /// Waits for the completion callback of `build`.
    pub async fn stage_result(
        &self,
        build: &str,
        limit: Duration,
    ) -> anyhow::Result<StagingResult> {
        testkit::eventually("staging result", limit, || {
            let r = self.store.results.lock().expect("lock").get(build).cloned();
            async move { r }
        })
        .await
    }

    /// Shuts the stager down (the fake api keeps running).
    pub fn stop_stager(&self) {
        self.stager_stop.cancel();
    }

    /// The claims of `build` so far as `(stager id, granted)`, in order.
    pub fn claims_of(&self, build: &str) -> Vec<(String, bool)> {
        let claims = self.store.claims.lock().expect("lock");
        claims.iter().filter(|(b, ..)| b == build).map(|(_, id, g)| (id.clone(), *g)).collect()
    }

    /// Answer every claim of `build` from now on with 409.
    pub fn refuse_claims(&self, build: &str) {
        self.store.refused.lock().expect("lock").insert(build.to_owned());
    }

    /// What the stager did for `build`, in order (`claim`, `package`, `droplet`, `completion`).
    pub fn events_of(&self, build: &str) -> Vec<&'static str> {
        let events = self.store.events.lock().expect("lock");
        events.iter().filter(|(b, _)| b == build).map(|(_, w)| *w).collect()
    }

    /// The droplet uploaded for `build`, if any.
    pub fn droplet_of(&self, build: &str) -> Option<Vec<u8>> {
        self.store.droplets.lock().expect("lock").get(build).cloned()
    }

    /// The completion reported for `build`, if any.
    pub fn result_of(&self, build: &str) -> Option<StagingResult> {
        self.store.results.lock().expect("lock").get(build).cloned()
    }

    /// A metric of the stager's `/metrics` (`paas_stager_<name>`), if it is there.
    pub async fn metric(&self, name: &str) -> anyhow::Result<Option<f64>> {
        let text = reqwest::get(format!("{}/metrics", self.status_url)).await?.text().await?;
        let full = format!("paas_stager_{name} ");
        Ok(text.lines().find_map(|l| l.strip_prefix(&full)).and_then(|v| v.trim().parse().ok()))
    }

    pub fn log_of(&self, app_guid: &str) -> Vec<String> {
        self.logs
            .lock()
            .expect("lock")
            .iter()
            .filter(|(a, _)| a == app_guid)
            .map(|(_, l)| l.clone())
            .collect()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.stager_stop.cancel();
    }
}

/// A zip of every file under `dir`, with modes.
pub fn zip_dir(dir: &Path) -> anyhow::Result<Vec<u8>> {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for e in std::fs::read_dir(root.join(rel))? {
            let e = e?;
            let r = rel.join(e.file_name());
            out.push(r.clone());
            if e.file_type()?.is_dir() {
                walk(root, &r, out)?;
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, Path::new(""), &mut files)?;
    Ok(archive::zip_dir(dir, &files, Cursor::new(Vec::new()))?.into_inner())
}
