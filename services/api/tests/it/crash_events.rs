//! An instance crash published on `app.events` (as the scheduler does) becomes an
//! `audit.app.process.crash` event of the app with Cloud Controller's data, on both engines.

use std::time::Duration;

use axum::http::StatusCode;
use bus::BusExt as _;
use serde_json::{json, Value};
use testkit::{Engine, TestDb};

use crate::harness::{self, Client};

#[tokio::test]
async fn a_crash_on_the_bus_is_an_audit_event_with_cc_data() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let c = Client::new(&p.url, &p.admin_token);
        let (_, space) = crate::push::org_and_space(&c, "crashes").await;
        let (st, app) = c
            .post(
                "/v3/apps",
                json!({"name": "crashy", "relationships": {"space": {"data": {"guid": space}}}}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{app}");
        let app = app["guid"].as_str().expect("guid").to_owned();
        let (_, procs) = c.get(&format!("/v3/apps/{app}/processes")).await;
        let process = procs["resources"][0]["guid"].as_str().expect("web process").to_owned();

        let event = wire::events::AppEvent {
            app_guid: app.clone(),
            process_guid: format!("{process}-1"),
            index: 0,
            instance_guid: "inst-1".into(),
            cell_id: "cell-z1".into(),
            kind: wire::events::AppEventKind::Crash {
                reason: "APP/PROC/WEB: Exited with status 1".into(),
                exit_status: Some(1),
                crash_count: 2,
            },
            timestamp: 1_700_000_000_000_000_000,
        };
        let path = format!("/v3/audit_events?target_guids={app}&types=audit.app.process.crash");
        let crash = testkit::eventually("the crash event", Duration::from_secs(10), || async {
            // The subscriber may not be listening yet: publish until the event is recorded.
            p.bus.publish_json(wire::subjects::APP_EVENTS, &event).await.expect("publish");
            let (st, v) = c.get(&path).await;
            assert_eq!(st, StatusCode::OK, "{v}");
            v["resources"].as_array().and_then(|r| r.first().cloned())
        })
        .await
        .unwrap_or_else(|e| panic!("{engine:?}: {e}"));

        assert_eq!(crash["type"], "audit.app.process.crash");
        assert_eq!(crash["target"]["guid"], app.as_str());
        let data: &Value = &crash["data"];
        assert_eq!(data["index"], 0, "{data}");
        assert_eq!(data["reason"], "CRASHED", "{data}");
        assert_eq!(data["exit_description"], "APP/PROC/WEB: Exited with status 1");
        assert_eq!(data["crash_count"], 2);
        assert_eq!(data["crash_timestamp"], 1_700_000_000_000_000_000_i64);
        assert_eq!(data["instance"], "inst-1");
        assert_eq!(data["cell_id"], "cell-z1");
        p.stop().await;
    }
}
