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
    start_with(engine, Arc::new(FakeCells::default())).await
}

async fn start_with(engine: testkit::Engine, cells: Arc<FakeCells>) -> Running {
    let db = testkit::TestDb::new(engine).await.expect("db");
    let issuer = Issuer::new("k1", "http://api.test/oauth/token");
    let config = scheduler::Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        database_url: db.url.clone(),
        ..Default::default()
    };
    let parts = scheduler::Parts {
        clock: Arc::new(scheduler::clock::SystemClock),
        cells,
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

#[tokio::test]
async fn a_route_change_reaches_the_cells_holding_the_process() {
    for engine in testkit::Engine::ALL {
        let cells = Arc::new(FakeCells::default());
        let r = start_with(engine, cells.clone()).await;
        let http = reqwest::Client::new();
        let internal = r.issuer.token(&[auth::SCOPE_INTERNAL], 600);
        let send = |req: reqwest::RequestBuilder| {
            let internal = internal.clone();
            async move {
                let res = req.header("authorization", internal).send().await.expect("send");
                assert!(res.status().is_success(), "{}", res.status());
            }
        };
        let cap = wire::lrp::Capacity { memory_mb: 4096, disk_mb: 100_000, containers: 250 };
        for id in ["c1", "c2"] {
            let presence = wire::lrp::CellPresence {
                cell_id: id.into(),
                rep_url: format!("http://{id}"),
                zone: "z1".into(),
                capacity: cap,
                stacks: vec!["bookworm".into()],
                placement_tags: vec![],
                optional_placement_tags: vec![],
                evacuating: false,
            };
            let state = wire::lrp::CellState {
                cell_id: id.into(),
                available: cap,
                total: cap,
                instances: vec![],
                evacuating: false,
                starting: 0,
            };
            cells.states.lock().expect("lock").insert(format!("http://{id}"), state);
            send(http.post(format!("{}/v1/cells/presence", r.url)).json(&presence)).await;
        }
        let mut d = desired("p-1", 2, 256);
        d.routes =
            serde_json::from_value(serde_json::json!([{"uri": "a.example.com"}])).expect("routes");
        send(http.put(format!("{}/v1/desired_lrps/p-1", r.url)).json(&d)).await;
        let placed = testkit::eventually("both placed", Duration::from_secs(10), || async {
            let p = cells.performed.lock().expect("lock").clone();
            (p.len() == 2).then_some(p)
        })
        .await
        .expect("placed");
        // One instance claimed on its cell; the other cell has not claimed its own yet.
        let (rep_url, start) = &placed[0];
        let cell_id = rep_url.trim_start_matches("http://");
        let key = wire::lrp::InstanceKey {
            process_guid: "p-1".into(),
            index: start.index,
            instance_guid: start.instance_guid.clone(),
        };
        let claim = wire::lrp::InstanceReport::new(key, cell_id);
        send(http.post(format!("{}/v1/actual_lrps/claim", r.url)).json(&claim)).await;
        let rerouted = || cells.rerouted.lock().expect("lock").clone();

        // A change of anything else tells no cell.
        send(
            http.patch(format!("{}/v1/desired_lrps/p-1", r.url))
                .json(&serde_json::json!({"annotation": "v2"})),
        )
        .await;
        // A PATCH of the routes, then a PUT with others: the holding cell hears both, each
        // time with the routes as they are.
        let b = serde_json::json!([{"uri": "b.example.com", "route_service_url": "https://rs.example.com"}]);
        send(
            http.patch(format!("{}/v1/desired_lrps/p-1", r.url))
                .json(&serde_json::json!({"routes": b})),
        )
        .await;
        testkit::eventually("the PATCH told", Duration::from_secs(10), || async {
            (!rerouted().is_empty()).then_some(())
        })
        .await
        .expect("told");
        let told = rerouted();
        assert_eq!(told.len(), 1, "{engine:?}: only the route change is told: {told:?}");
        assert_eq!(told[0].0, *rep_url, "only the cell holding an instance");
        assert_eq!(told[0].1.process_guid, "p-1");
        let uris: Vec<_> = told[0].1.routes.iter().map(|r| r.uri.as_str()).collect();
        assert_eq!(uris, ["b.example.com"]);
        assert_eq!(
            told[0].1.routes[0].route_service_url.as_deref(),
            Some("https://rs.example.com")
        );

        let mut d = desired("p-1", 2, 256);
        d.annotation = "v2".into();
        d.routes =
            serde_json::from_value(serde_json::json!([{"uri": "c.example.com"}])).expect("routes");
        send(http.put(format!("{}/v1/desired_lrps/p-1", r.url)).json(&d)).await;
        let told = testkit::eventually("the PUT told", Duration::from_secs(10), || async {
            let t = rerouted();
            (t.len() == 2).then_some(t)
        })
        .await
        .expect("told");
        assert_eq!(told[1].1.routes[0].uri, "c.example.com");
        // The other instance is claimed only now: its cell was not told, and the claim's
        // answer carries the routes as they are.
        let (rep_url, start) = &placed[1];
        let key = wire::lrp::InstanceKey {
            process_guid: "p-1".into(),
            index: start.index,
            instance_guid: start.instance_guid.clone(),
        };
        let claim = wire::lrp::InstanceReport::new(key, rep_url.trim_start_matches("http://"));
        let answer: wire::lrp::ClaimResult = http
            .post(format!("{}/v1/actual_lrps/claim", r.url))
            .header("authorization", &internal)
            .json(&claim)
            .send()
            .await
            .expect("claim")
            .json()
            .await
            .expect("the claim answers with the routes");
        let uris: Vec<String> = answer.routes.expect("routes").into_iter().map(|r| r.uri).collect();
        assert_eq!(uris, ["c.example.com"]);
        // The same PUT again changes nothing and tells nobody; the next change goes to both
        // cells, each holding a claimed instance now.
        send(http.put(format!("{}/v1/desired_lrps/p-1", r.url)).json(&d)).await;
        send(
            http.patch(format!("{}/v1/desired_lrps/p-1", r.url))
                .json(&serde_json::json!({"routes": []})),
        )
        .await;
        let told = testkit::eventually("the last PATCH told", Duration::from_secs(10), || async {
            let t = rerouted();
            (t.iter().filter(|(_, u)| u.routes.is_empty()).count() == 2).then_some(t)
        })
        .await
        .expect("told");
        assert_eq!(told.len(), 4, "{told:?}");
        let mut cells: Vec<&str> = told[2..].iter().map(|(c, _)| c.as_str()).collect();
        cells.sort_unstable();
        assert_eq!(cells, ["http://c1", "http://c2"]);
    }
}
