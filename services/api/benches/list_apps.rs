//! `GET /v3/apps` with 10,000 apps in the database, 50 per page, on SQLite and PostgreSQL:
//! p50/p99 over 400 requests spread over all pages, as an admin and as a space developer
//! (whose listing is filtered by role). Goal: p99 ≤ 20 ms. Run: `cargo bench -p api`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use testkit::{Engine, TestDb};

const APPS: usize = 10_000;
const REQUESTS: usize = 400;

async fn seed(db: &TestDb, space: &str) {
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("connect");
    let now = 1_700_000_000_000i64;
    let mut tx = pool.begin().await.expect("tx");
    for i in 0..APPS {
        let guid = uuid::Uuid::new_v4().to_string();
        let name = format!("app-{i:05}");
        sqlx::query(
            "INSERT INTO apps (guid, name, name_key, space_guid, state, lifecycle_type, buildpacks, stack, image, \
             droplet_guid, env, created_at, updated_at) VALUES ($1, $2, $2, $3, 'STOPPED', 'buildpack', '[]', 'bookworm', '', '', '{}', $4, $4)",
        )
        .bind(&guid)
        .bind(&name)
        .bind(space)
        .bind(now + i as i64)
        .execute(&mut *tx)
        .await
        .expect("insert");
    }
    tx.commit().await.expect("commit");
}

async fn token(url: &str, user: &str, pw: &str) -> String {
    let v: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}/oauth/token"))
        .basic_auth("cf", Some(""))
        .form(&[("grant_type", "password"), ("username", user), ("password", pw)])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    v["access_token"].as_str().expect("token").to_owned()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn measure(http: &reqwest::Client, url: &str, token: &str) -> (Duration, Duration) {
    let pages = APPS / 50;
    let mut times = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        let page = (i * 37) % pages + 1;
        let t = Instant::now();
        let res = http
            .get(format!("{url}/v3/apps?per_page=50&page={page}"))
            .bearer_auth(token)
            .send()
            .await
            .expect("list");
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.expect("json");
        times.push(t.elapsed());
        assert_eq!(body["resources"].as_array().expect("resources").len(), 50);
        assert_eq!(body["pagination"]["total_results"], APPS);
    }
    times.sort();
    (pct(&times, 0.5), pct(&times, 0.99))
}

async fn bench(engine: Engine) {
    let db = TestDb::new(engine).await.expect("db");
    let data = tempfile::tempdir().expect("tempdir");
    let port = testkit::free_port();
    let config = api::Config {
        addr: format!("127.0.0.1:{port}").parse().expect("addr"),
        external_url: format!("http://127.0.0.1:{port}"),
        data_dir: data.path().to_owned(),
        database_url: db.url.clone(),
        admin_password: Some("bench-admin-pw".into()),
        scheduler_url: "http://127.0.0.1:9".into(),
        ..Default::default()
    };
    let bus: bus::DynBus = Arc::new(bus::InProcessBus::new());
    let service =
        api::build(config, api::Deps { bus, bundled_buildpacks: vec![] }).await.expect("build");
    let url = format!("http://127.0.0.1:{port}");
    let stop = kit::Shutdown::new();
    let task = tokio::spawn(service.run(stop.clone()));
    testkit::wait_http_ok(&format!("{url}/readyz"), Duration::from_secs(10)).await.expect("ready");
    let http = reqwest::Client::new();
    let admin = token(&url, "admin", "bench-admin-pw").await;
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{url}{path}")).bearer_auth(&admin).json(&body).send()
    };
    let org: serde_json::Value = post("/v3/organizations", serde_json::json!({"name": "bench"}))
        .await
        .expect("org")
        .json()
        .await
        .expect("json");
    let org = org["guid"].as_str().expect("org").to_owned();
    let space: serde_json::Value = post("/v3/spaces", serde_json::json!({"name": "s", "relationships": {"organization": {"data": {"guid": org}}}}))
        .await
        .expect("space")
        .json()
        .await
        .expect("json");
    let space = space["guid"].as_str().expect("space").to_owned();
    seed(&db, &space).await;
    http.post(format!("{url}/Users"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"userName": "dev", "password": "dev-pw"}))
        .send()
        .await
        .expect("user");
    for (kind, rel, guid) in
        [("organization_user", "organization", &org), ("space_developer", "space", &space)]
    {
        let body = serde_json::json!({"type": kind, "relationships": {"user": {"data": {"username": "dev"}}, rel: {"data": {"guid": guid}}}});
        let res = post("/v3/roles", body).await.expect("role");
        assert_eq!(res.status(), 201);
    }
    let dev = token(&url, "dev", "dev-pw").await;
    measure(&http, &url, &admin).await; // warm-up
    let (a50, a99) = measure(&http, &url, &admin).await;
    let (d50, d99) = measure(&http, &url, &dev).await;
    println!(
        "{engine:?}: GET /v3/apps (10,000 apps, 50/page): admin p50 {:.2} ms p99 {:.2} ms; space developer p50 {:.2} ms p99 {:.2} ms",
        a50.as_secs_f64() * 1e3,
        a99.as_secs_f64() * 1e3,
        d50.as_secs_f64() * 1e3,
        d99.as_secs_f64() * 1e3
    );
    stop.cancel();
    let _ = task.await;
}

#[tokio::main]
async fn main() {
    for engine in Engine::ALL {
        bench(engine).await;
    }
}
