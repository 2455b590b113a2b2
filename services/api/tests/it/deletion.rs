//! A space deletion is one transaction, on both engines: when a statement fails half-way (here a
//! trigger refuses to delete routes, after the apps and service instances went), the job fails
//! and everything is still there — the app with its processes and droplet, its instances at the
//! scheduler, the service instance and its route binding, the routes, the space. Once the
//! refusal is lifted, the same deletion removes everything.

use axum::http::StatusCode;
use serde_json::json;
use testkit::{Engine, TestDb};

use crate::harness::{self, Client, Platform};
use crate::route_bindings::{bind_body, instance, route_guid, started_app};

async fn refuse_route_deletes(db: &TestDb, on: bool) {
    let conn = kit::db::Db::connect(&db.url, 1).await.expect("connect");
    let statements: &[&str] = match (db.engine, on) {
        (Engine::Sqlite, true) => &["CREATE TRIGGER refuse_route_delete BEFORE DELETE ON routes \
             BEGIN SELECT RAISE(ABORT, 'routes may not be deleted now'); END"],
        (Engine::Sqlite, false) => &["DROP TRIGGER refuse_route_delete"],
        (Engine::Postgres, true) => &[
            "CREATE FUNCTION refuse_route_delete() RETURNS trigger AS $$ BEGIN \
             RAISE EXCEPTION 'routes may not be deleted now'; END; $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_route_delete BEFORE DELETE ON routes \
             FOR EACH ROW EXECUTE FUNCTION refuse_route_delete()",
        ],
        (Engine::Postgres, false) => &["DROP TRIGGER refuse_route_delete ON routes"],
    };
    for sql in statements {
        sqlx::query(sql).execute(&conn.pool).await.expect(sql);
    }
    conn.pool.close().await;
}

async fn count(c: &Client, path: &str) -> i64 {
    let (st, v) = c.get(path).await;
    assert_eq!(st, StatusCode::OK, "{path}: {v}");
    v["pagination"]["total_results"].as_i64().expect("total")
}

fn desired_of(p: &Platform, app: &str) -> usize {
    p.desired.lock().expect("lock").values().filter(|l| l.log_guid == app).count()
}

#[tokio::test]
async fn a_space_deletion_that_fails_half_way_leaves_everything_in_place() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (_, space) = crate::push::org_and_space(&admin, "acme").await;
        let app = started_app(&admin, &space).await;
        let rs = instance(&admin, &space, "rs", Some("https://rs.example.com/x")).await;
        let guarded = route_guid(&admin, "guarded").await;
        let (st, b) = admin.post("/v3/service_route_bindings", bind_body(&guarded, &rs)).await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let creds = instance(&admin, &space, "db", None).await;
        let binding = json!({"type": "app", "relationships": {"app": {"data": {"guid": app}}, "service_instance": {"data": {"guid": creds}}}});
        let (st, b) = admin.post("/v3/service_credential_bindings", binding).await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let running = desired_of(&p, &app);
        assert!(running > 0);

        let lists = [
            format!("/v3/apps/{app}/processes"),
            format!("/v3/apps/{app}/droplets"),
            format!("/v3/apps/{app}/packages"),
            format!("/v3/routes?space_guids={space}"),
            format!("/v3/service_instances?space_guids={space}"),
            "/v3/service_route_bindings".to_owned(),
            format!("/v3/service_credential_bindings?app_guids={app}"),
        ];
        let mut before = Vec::new();
        for l in &lists {
            before.push(count(&admin, l).await);
        }
        assert_eq!(before[3], 2, "two routes");
        assert!(before.iter().all(|n| *n > 0), "{before:?}");

        refuse_route_deletes(&db, true).await;
        let job = admin.delete_job(&format!("/v3/spaces/{space}")).await;
        assert_eq!(job["state"], "FAILED", "{engine:?}: {job}");

        let (st, a) = admin.get(&format!("/v3/apps/{app}")).await;
        assert_eq!(st, StatusCode::OK, "{engine:?}: the app went: {a}");
        assert!(a["relationships"]["current_droplet"]["data"].is_object(), "{a}");
        for (l, n) in lists.iter().zip(&before) {
            assert_eq!(count(&admin, l).await, *n, "{engine:?}: {l} changed by a failed deletion");
        }
        assert_eq!(admin.get(&format!("/v3/spaces/{space}")).await.0, StatusCode::OK);
        assert_eq!(
            desired_of(&p, &app),
            running,
            "{engine:?}: a failed deletion stopped instances"
        );

        refuse_route_deletes(&db, false).await;
        let job = admin.delete_job(&format!("/v3/spaces/{space}")).await;
        assert_eq!(job["state"], "COMPLETE", "{engine:?}: {job}");
        assert_eq!(admin.get(&format!("/v3/apps/{app}")).await.0, StatusCode::NOT_FOUND);
        assert_eq!(admin.get(&format!("/v3/spaces/{space}")).await.0, StatusCode::NOT_FOUND);
        assert_eq!(count(&admin, "/v3/routes?hosts=guarded,open").await, 0);
        assert_eq!(count(&admin, "/v3/service_instances?names=rs,db").await, 0);
        assert_eq!(count(&admin, "/v3/service_route_bindings").await, 0);
        assert_eq!(
            count(&admin, &format!("/v3/service_credential_bindings?app_guids={app}")).await,
            0
        );
        assert_eq!(desired_of(&p, &app), 0, "{engine:?}: the deleted app still runs");
        let events = format!("/v3/audit_events?types=audit.app.delete-request&target_guids={app}");
        assert_eq!(count(&admin, &events).await, 1);
        p.stop().await;
    }
}

/// A job still running when the api is told to stop finishes before the api is gone: the
/// shutdown drains the jobs' background work (here a space deletion whose scheduler calls take
/// a second each), so the job is COMPLETE, not left PROCESSING for the next start to fail.
#[tokio::test]
async fn a_job_running_at_shutdown_completes_before_the_api_stops() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (_, space) = crate::push::org_and_space(&admin, "acme").await;
        let app = started_app(&admin, &space).await;
        p.scheduler_delay.store(1000, std::sync::atomic::Ordering::SeqCst);
        let res = admin
            .http
            .delete(format!("{}/v3/spaces/{space}", p.url))
            .bearer_auth(&p.admin_token)
            .send()
            .await
            .expect("delete");
        assert_eq!(res.status(), 202);
        let job = res.headers()["location"]
            .to_str()
            .expect("location")
            .rsplit('/')
            .next()
            .map(str::to_owned);
        let job = job.expect("job guid");
        p.stop().await;

        let conn = kit::db::Db::connect(&db.url, 1).await.expect("connect");
        let state: String = sqlx::query_scalar("SELECT state FROM jobs WHERE guid = $1")
            .bind(&job)
            .fetch_one(&conn.pool)
            .await
            .expect("job row");
        assert_eq!(state, "COMPLETE", "{engine:?}: the deletion was cut off by the shutdown");
        let apps: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM apps WHERE guid = $1")
            .bind(&app)
            .fetch_one(&conn.pool)
            .await
            .expect("count");
        assert_eq!(apps, 0);
        conn.pool.close().await;
    }
}
