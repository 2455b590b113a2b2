//! The HTTP API: component tokens only; desired LRPs in, actual LRPs out.

use std::sync::Arc;
use std::time::Duration;

use testkit::tokens::Issuer;

use crate::fake::{desired, FakeCells};

struct Running {
    url: String,
    issuer: Issuer,
    _shutdown: kit::Shutdown,
    _db: testkit::TestDb,
}

async fn start(engine: testkit::Engine) -> Running {
    let db = testkit::TestDb::new(engine).await.expect("db");
    let issuer = Issuer::new("k1", "http://api.test/oauth/token");
    let config = scheduler::Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        database_url: db.url.clone(),
        ..Default::default()
    };
    let parts = scheduler::Parts {
        clock: Arc::new(scheduler::clock::SystemClock),
        cells: Arc::new(FakeCells::default()),
        verifier: Arc::new(issuer.verifier()),
    };
    let bus: bus::DynBus = Arc::new(bus::InProcessBus::new());
    let service =
        scheduler::build_with(config, scheduler::Deps { bus }, parts).await.expect("build");
    let url = format!("http://{}", service.local_addr());
    let shutdown = kit::Shutdown::new();
    tokio::spawn(service.run(shutdown.clone()));
    testkit::wait_http_ok(&format!("{url}/readyz"), Duration::from_secs(10)).await.expect("ready");
    Running { url, issuer, _shutdown: shutdown, _db: db }
}

#[tokio::test]
async fn desired_lrps_over_http_with_component_tokens() {
    for engine in testkit::Engine::ALL {
        let r = start(engine).await;
        let http = reqwest::Client::new();
        let internal = r.issuer.token(&[auth::SCOPE_INTERNAL], 600);
        let user = r.issuer.token(&["cloud_controller.read"], 600);
        let d = desired("p-1", 2, 256);
        let put = |token: Option<String>| {
            let mut req = http.put(format!("{}/v1/desired_lrps/p-1", r.url)).json(&d);
            if let Some(t) = token {
                req = req.header("authorization", t);
            }
            req.send()
        };
        assert_eq!(put(None).await.expect("send").status(), 401, "{engine:?}");
        assert_eq!(put(Some(user)).await.expect("send").status(), 403);
        assert_eq!(put(Some(internal.clone())).await.expect("send").status(), 201);
        assert_eq!(put(Some(internal.clone())).await.expect("send").status(), 200, "idempotent");
        let actual: Vec<wire::lrp::ActualLrp> = http
            .get(format!("{}/v1/actual_lrps?log_guid=app-1", r.url))
            .header("authorization", &internal)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert_eq!(actual.len(), 2);
        assert!(actual
            .iter()
            .all(|a| a.placement_error == "found no compatible cell for required rootfs"));
        let changed = wire::lrp::DesiredLrp { memory_mb: 512, ..d.clone() };
        let res = http
            .put(format!("{}/v1/desired_lrps/p-1", r.url))
            .header("authorization", &internal)
            .json(&changed)
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 422, "memory changes need a new process guid");
        let patch = |body: serde_json::Value| {
            http.patch(format!("{}/v1/desired_lrps/p-1", r.url))
                .header("authorization", &internal)
                .json(&body)
                .send()
        };
        let res = patch(serde_json::json!({"memory_mb": 512})).await.expect("send");
        assert_eq!(res.status(), 422, "PATCH changes only the updatable fields");
        let res =
            patch(serde_json::json!({"instances": 3, "annotation": "v2"})).await.expect("send");
        assert_eq!(res.status(), 200);
        let d: wire::lrp::DesiredLrp = res.json().await.expect("json");
        assert_eq!((d.instances, d.annotation.as_str()), (3, "v2"));
        let res = http
            .delete(format!("{}/v1/desired_lrps/p-1", r.url))
            .header("authorization", &internal)
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 204);
    }
}
