//! Tasks of deleted apps, on both engines: deleting an app (or its space) cancels its running
//! tasks at the scheduler, and the resync cancels any the scheduler still runs for an app the
//! api no longer has.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use testkit::{Engine, TestDb};

use crate::harness::{self, Client};

async fn app_with_droplet(c: &Client, space: &str, name: &str) -> String {
    let app = crate::push::app_in(c, space, name).await;
    let (_, droplet) = crate::push::push_bits(c, &app, &[("app.py", b"print(1)")]).await;
    let (st, d) = c
        .patch(
            &format!("/v3/apps/{app}/relationships/current_droplet"),
            json!({"data": {"guid": droplet}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{d}");
    app
}

async fn run(c: &Client, app: &str) -> String {
    let (st, t) = c.post(&format!("/v3/apps/{app}/tasks"), json!({"command": "sleep 600"})).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{t}");
    assert_eq!(t["state"], "RUNNING", "{t}");
    t["guid"].as_str().expect("task").to_owned()
}

#[tokio::test]
async fn deleted_apps_leave_no_task_running() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |c| c.resync_secs = 1).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (org, space) = crate::push::org_and_space(&admin, "acme").await;
        let doomed = app_with_droplet(&admin, &space, "doomed").await;
        let kept = app_with_droplet(&admin, &space, "kept").await;
        let (a, b) = (run(&admin, &doomed).await, run(&admin, &doomed).await);
        let keep = run(&admin, &kept).await;

        let job = admin.delete_job(&format!("/v3/apps/{doomed}")).await;
        assert_eq!(job["state"], "COMPLETE", "{job}");
        let cancelled = p.tasks.cancelled.lock().expect("lock").clone();
        assert!(cancelled.contains(&a) && cancelled.contains(&b), "{cancelled:?}");
        assert!(!cancelled.contains(&keep), "another app's task runs on: {cancelled:?}");

        // One the scheduler runs for an app the api no longer knows: the resync cancels it.
        p.tasks.hold_unknown("orphan-task");
        testkit::eventually("the orphan is cancelled", Duration::from_secs(10), || async {
            p.tasks
                .cancelled
                .lock()
                .expect("lock")
                .contains(&"orphan-task".to_owned())
                .then_some(())
        })
        .await
        .expect("cancelled by the resync");
        assert!(p.tasks.held.lock().expect("lock").contains_key(&keep), "a known task runs on");

        // A space's deletion cancels its apps' tasks too.
        let (st, o) = admin.post("/v3/spaces", json!({"name": "batch", "relationships": {"organization": {"data": {"guid": org}}}})).await;
        assert_eq!(st, StatusCode::CREATED, "{o}");
        let batch = o["guid"].as_str().expect("space").to_owned();
        let worker = app_with_droplet(&admin, &batch, "worker").await;
        let w = run(&admin, &worker).await;
        let job = admin.delete_job(&format!("/v3/spaces/{batch}")).await;
        assert_eq!(job["state"], "COMPLETE", "{job}");
        assert!(p.tasks.cancelled.lock().expect("lock").contains(&w));
        p.stop().await;
    }
}
