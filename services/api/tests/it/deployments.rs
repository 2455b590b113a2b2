//! Deployments and revisions through the api, on both engines, against the harness's
//! scheduler (whose instances are RUNNING as soon as they are desired): a rolling deployment
//! never lets old plus new instances fall below the target and ends DEPLOYED with the old
//! version gone; a canary pauses until continued; cancel puts the previous droplet back;
//! rollback deploys a revision; bad requests and another tenant's deployment are refused; a
//! new deployment, cancel and continue act on a deployment written meanwhile all the same.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};
use testkit::{Engine, TestDb};

use crate::harness::{self, Client, Platform};
use crate::push::{org_and_space, push_bits};

/// The web LRPs of `app` at the scheduler: `(process guid, instances)`.
fn web_lrps(p: &Platform, app: &str) -> Vec<(String, u32)> {
    let d = p.desired.lock().expect("lock");
    d.values()
        .filter(|l| l.process_guid.starts_with(&format!("{app}-")))
        .map(|l| (l.process_guid.clone(), l.instances))
        .collect()
}

/// Poll the deployment until `done` holds, checking on every look that the web LRPs always
/// hold `target` instances or more in all; the deployment then.
async fn watch(
    c: &Client,
    p: &Platform,
    app: &str,
    guid: &str,
    target: u32,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let total: u32 = web_lrps(p, app).iter().map(|(_, i)| i).sum();
        assert!(total >= target, "capacity fell to {total} during the rollout");
        let (st, d) = c.get(&format!("/v3/deployments/{guid}")).await;
        assert_eq!(st, StatusCode::OK, "{d}");
        if done(&d) {
            return d;
        }
        assert!(tokio::time::Instant::now() < deadline, "deployment did not get there: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until the scheduler has only one version of the web process.
async fn one_version(p: &Platform, app: &str) {
    testkit::eventually("one version of web", Duration::from_secs(10), || async {
        (web_lrps(p, app).len() == 1).then_some(())
    })
    .await
    .expect("every older version retired");
}

fn reason(d: &Value) -> &str {
    d["status"]["reason"].as_str().unwrap_or_default()
}

/// A new app named `web` in `space`: its guid.
async fn web_app(c: &Client, space: &str) -> String {
    let (st, app) = c
        .post(
            "/v3/apps",
            json!({"name": "web", "relationships": {"space": {"data": {"guid": space}}}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{app}");
    app["guid"].as_str().expect("guid").to_owned()
}

async fn deploy(c: &Client, body: Value) -> (StatusCode, Value) {
    c.post("/v3/deployments", body).await
}

/// Run `action` while an uncommitted write holds deployment `guid`'s row (as the rollout loop
/// does every tick): check that the action waits on it, commit, and return its answer.
async fn while_written(
    db: &TestDb,
    guid: &str,
    action: impl std::future::Future<Output = (StatusCode, Value)> + Send + 'static,
) -> (StatusCode, Value) {
    let conn = db.connect().await.expect("connect");
    let mut tx = match db.engine {
        Engine::Sqlite => conn.pool.begin_with("BEGIN IMMEDIATE").await,
        Engine::Postgres => conn.pool.begin().await,
    }
    .expect("begin");
    sqlx::query("UPDATE deployments SET updated_at = updated_at + 1 WHERE guid = $1")
        .bind(guid)
        .execute(&mut *tx)
        .await
        .expect("update");
    let action = tokio::spawn(action);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!action.is_finished(), "{:?}: the action waits on the row", db.engine);
    tx.commit().await.expect("commit");
    action.await.expect("join")
}

/// Actions on a deployment that someone else writes at the same moment — a new deployment
/// superseding it, cancel, continue — read it again and succeed: the action reads the row
/// before the other write commits and finds it changed when it writes. The client gets its
/// answer, not a "changed meanwhile" error. (On PostgreSQL the action's write waits on the
/// row and then finds it changed; on SQLite the action's transaction waits for the writer.)
#[tokio::test]
async fn actions_on_a_deployment_written_meanwhile_read_it_again() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |c| c.deployment_tick_ms = 100).await;
        let c = Client::new(&p.url, &p.admin_token);
        let (_, space) = org_and_space(&c, "acme").await;
        let app = web_app(&c, &space).await;
        let (_, d1) = push_bits(&c, &app, &[("app.py", b"print('v1')\n")]).await;
        let (_, d2) = push_bits(&c, &app, &[("app.py", b"print('v2')\n")]).await;
        let body = |d: &str, strategy: &str| {
            json!({"droplet": {"guid": d}, "strategy": strategy, "options": {"web_instances": 2},
                   "relationships": {"app": {"data": {"guid": app}}}})
        };
        let (st, first) = deploy(&c, body(&d1, "rolling")).await;
        assert_eq!(st, StatusCode::CREATED, "{first}");
        // A canary stays active, paused at its first step.
        let canary = |d: String| {
            let (c, p, app, body) = (&c, &p, &app, body(&d, "canary"));
            async move {
                let (st, made) = deploy(c, body).await;
                assert_eq!(st, StatusCode::CREATED, "{made}");
                let guid = made["guid"].as_str().expect("guid").to_owned();
                watch(c, p, app, &guid, 2, |d| reason(d) == "PAUSED").await;
                guid
            }
        };
        let owner = || Client::new(&p.url, &p.admin_token);

        let paused = canary(d2.clone()).await;
        let (st, made) = while_written(&db, &paused, {
            let (c, body) = (owner(), body(&d1, "rolling"));
            async move { deploy(&c, body).await }
        })
        .await;
        assert_eq!(st, StatusCode::CREATED, "{engine:?}: {made}");
        let (_, old) = c.get(&format!("/v3/deployments/{paused}")).await;
        assert_eq!(reason(&old), "SUPERSEDED", "{engine:?}: {old}");
        let made = made["guid"].as_str().expect("guid");
        watch(&c, &p, &app, made, 2, |d| reason(d) == "DEPLOYED").await;
        one_version(&p, &app).await;

        for (action, droplet, then, end) in
            [("continue", &d2, "DEPLOYING", "DEPLOYED"), ("cancel", &d1, "CANCELING", "CANCELED")]
        {
            let paused = canary(droplet.clone()).await;
            let path = format!("/v3/deployments/{paused}/actions/{action}");
            let (st, acted) = while_written(&db, &paused, {
                let c = owner();
                async move { c.post(&path, json!({})).await }
            })
            .await;
            assert_eq!(st, StatusCode::OK, "{engine:?} {action}: {acted}");
            assert_eq!(reason(&acted), then, "{engine:?} {action}: {acted}");
            watch(&c, &p, &app, &paused, 2, |d| reason(d) == end).await;
            one_version(&p, &app).await;
        }
    }
}

#[tokio::test]
async fn rolling_canary_cancel_and_rollback() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |c| c.deployment_tick_ms = 100).await;
        let c = Client::new(&p.url, &p.admin_token);
        let (org, space) = org_and_space(&c, "acme").await;
        let app = web_app(&c, &space).await;
        let (_, d1) = push_bits(&c, &app, &[("app.py", b"print('v1')\n")]).await;

        // A stopped app: the deployment starts it and is DEPLOYED at once.
        let (st, first) = deploy(
            &c,
            json!({"droplet": {"guid": d1}, "relationships": {"app": {"data": {"guid": app}}}}),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{first}");
        assert_eq!(
            first["status"],
            json!({"value": "FINALIZED", "reason": "DEPLOYED", "details": first["status"]["details"]})
        );
        assert_eq!(first["strategy"], "rolling");
        assert_eq!(first["revision"]["version"], 1, "{first}");
        let (_, a) = c.get(&format!("/v3/apps/{app}")).await;
        assert_eq!(a["state"], "STARTED");
        let (st, scaled) =
            c.post(&format!("/v3/processes/{app}/actions/scale"), json!({"instances": 3})).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{scaled}");
        let old = web_lrps(&p, &app);
        assert_eq!(old.len(), 1);
        assert_eq!(old[0].1, 3);

        // Quotas hold what runs after the rollout, not the surge while both versions run.
        let (st, q) = c
            .post("/v3/space_quotas", json!({"name": "three-gigs", "apps": {"total_memory_in_mb": 3072},
                "relationships": {"organization": {"data": {"guid": org}}, "spaces": {"data": [{"guid": space}]}}}))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{q}");
        let (st, e) = deploy(
            &c,
            json!({"options": {"web_instances": 4}, "relationships": {"app": {"data": {"guid": app}}}}),
        )
        .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert!(
            e["errors"][0]["detail"].as_str().unwrap_or_default().contains("Memory quota exceeded"),
            "{e}"
        );

        // Rolling: new droplet, one instance at a time, then the old version is gone.
        let (_, d2) = push_bits(&c, &app, &[("app.py", b"print('v2')\n")]).await;
        let (st, roll) = deploy(
            &c,
            json!({"droplet": {"guid": d2}, "strategy": "rolling",
                   "relationships": {"app": {"data": {"guid": app}}}}),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{roll}");
        assert_eq!(reason(&roll), "DEPLOYING");
        assert_eq!(roll["status"]["value"], "ACTIVE");
        assert_eq!(roll["previous_droplet"]["guid"], d1.as_str());
        assert_eq!(roll["new_processes"][0]["type"], "web");
        let (st, refused) =
            c.post(&format!("/v3/processes/{app}/actions/scale"), json!({"instances": 5})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "no scaling mid-rollout: {refused}");
        let roll_guid = roll["guid"].as_str().expect("guid").to_owned();
        let (_, active) =
            c.get(&format!("/v3/deployments?app_guids={app}&status_values=ACTIVE")).await;
        assert_eq!(active["pagination"]["total_results"], 1, "{active}");
        let done = watch(&c, &p, &app, &roll_guid, 3, |d| reason(d) == "DEPLOYED").await;
        assert_eq!(done["status"]["value"], "FINALIZED");
        assert!(done["status"]["details"]["last_successful_healthcheck"].is_string(), "{done}");
        // The row says DEPLOYED first; the old version's removal reaches the scheduler next.
        let now =
            testkit::eventually("the old version removed", Duration::from_secs(10), || async {
                let now = web_lrps(&p, &app);
                (now.len() == 1).then_some(now)
            })
            .await
            .expect("only the new version is left");
        assert_eq!(now[0].1, 3);
        assert_ne!(now[0].0, old[0].0);
        let (_, cur) = c.get(&format!("/v3/apps/{app}/droplets/current")).await;
        assert_eq!(cur["guid"], d2.as_str());

        // Revisions: one per droplet, described as CC does.
        let (_, revs) = c.get(&format!("/v3/apps/{app}/revisions")).await;
        let descs: Vec<&str> = revs["resources"]
            .as_array()
            .expect("revisions")
            .iter()
            .filter_map(|r| r["description"].as_str())
            .collect();
        assert_eq!(descs, ["Initial revision.", "New droplet deployed."], "{revs}");
        let v1 = revs["resources"][0]["guid"].as_str().expect("guid").to_owned();
        assert_eq!(revs["resources"][0]["deployable"], true);
        let (_, only) = c.get(&format!("/v3/apps/{app}/revisions?versions=2")).await;
        assert_eq!(only["pagination"]["total_results"], 1, "{only}");
        let (_, deployed) = c.get(&format!("/v3/apps/{app}/revisions/deployed")).await;
        assert_eq!(deployed["resources"][0]["version"], 2, "{deployed}");
        let (st, env) = c.get(&format!("/v3/revisions/{v1}/environment_variables")).await;
        assert_eq!(st, StatusCode::OK, "{env}");
        assert!(env["var"].is_object());

        // Canary: one instance, PAUSED, then continued to the end.
        let (st, canary) = deploy(
            &c,
            json!({"revision": {"guid": v1}, "strategy": "canary",
                   "relationships": {"app": {"data": {"guid": app}}}}),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{canary}");
        let cg = canary["guid"].as_str().expect("guid").to_owned();
        let paused = watch(&c, &p, &app, &cg, 3, |d| reason(d) == "PAUSED").await;
        assert_eq!(paused["status"]["value"], "ACTIVE");
        assert_eq!(paused["revision"]["version"], 3, "a rollback is a new revision: {paused}");
        let (st, again) =
            c.post(&format!("/v3/deployments/{roll_guid}/actions/continue"), json!({})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "only a paused one continues: {again}");
        let (st, _) = c.post(&format!("/v3/deployments/{cg}/actions/continue"), json!({})).await;
        assert_eq!(st, StatusCode::OK);
        watch(&c, &p, &app, &cg, 3, |d| reason(d) == "DEPLOYED").await;
        let (_, cur) = c.get(&format!("/v3/apps/{app}/droplets/current")).await;
        assert_eq!(cur["guid"], d1.as_str(), "rolled back to revision 1's droplet");
        let (_, rev3) = c.get(&format!("/v3/apps/{app}/revisions?versions=3")).await;
        assert_eq!(rev3["resources"][0]["description"], "Rolled back to revision 1.");

        // Cancel: the previous droplet is back and the deployment ends CANCELED.
        let (st, dep) = deploy(
            &c,
            json!({"droplet": {"guid": d2}, "strategy": "canary",
                   "options": {"canary": {"steps": [{"instance_weight": 34}, {"instance_weight": 67}]}},
                   "relationships": {"app": {"data": {"guid": app}}}}),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{dep}");
        let dg = dep["guid"].as_str().expect("guid").to_owned();
        watch(&c, &p, &app, &dg, 3, |d| reason(d) == "PAUSED").await;
        let (st, canceling) =
            c.post(&format!("/v3/deployments/{dg}/actions/cancel"), json!({})).await;
        assert_eq!(st, StatusCode::OK, "{canceling}");
        assert_eq!(reason(&canceling), "CANCELING");
        watch(&c, &p, &app, &dg, 3, |d| reason(d) == "CANCELED").await;
        let (_, cur) = c.get(&format!("/v3/apps/{app}/droplets/current")).await;
        assert_eq!(cur["guid"], d1.as_str(), "the previous droplet is back");
        one_version(&p, &app).await;
        let (st, twice) = c.post(&format!("/v3/deployments/{dg}/actions/cancel"), json!({})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{twice}");

        // A new deployment supersedes an active one.
        let (_, a) = deploy(
            &c,
            json!({"droplet": {"guid": d2}, "relationships": {"app": {"data": {"guid": app}}}}),
        )
        .await;
        let (st, b) = deploy(&c, json!({"relationships": {"app": {"data": {"guid": app}}}})).await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let (_, a) = c.get(&format!("/v3/deployments/{}", a["guid"].as_str().expect("guid"))).await;
        assert_eq!(reason(&a), "SUPERSEDED", "{a}");
        watch(&c, &p, &app, b["guid"].as_str().expect("guid"), 3, |d| reason(d) == "DEPLOYED")
            .await;
        one_version(&p, &app).await;
        let (_, legacy) = c.get(&format!("/v3/deployments?app_guids={app}&states=CANCELED")).await;
        assert_eq!(legacy["pagination"]["total_results"], 1, "{legacy}");

        // Bad requests, CC's errors.
        for (body, why) in [
            (
                json!({"strategy": "blue-green", "relationships": {"app": {"data": {"guid": app}}}}),
                "strategy",
            ),
            (
                json!({"options": {"max_in_flight": 0}, "relationships": {"app": {"data": {"guid": app}}}}),
                "max in flight",
            ),
            (
                json!({"droplet": {"guid": "nope"}, "relationships": {"app": {"data": {"guid": app}}}}),
                "droplet",
            ),
            (
                json!({"droplet": {"guid": d1}, "revision": {"guid": v1}, "relationships": {"app": {"data": {"guid": app}}}}),
                "both",
            ),
            (json!({"relationships": {"app": {"data": {"guid": "nope"}}}}), "app"),
        ] {
            let (st, e) = deploy(&c, body).await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {e}");
            assert_eq!(e["errors"][0]["title"], "CF-UnprocessableEntity", "{why}: {e}");
        }
        let (st, e) = c.post("/v3/deployments", json!([1])).await;
        assert!(st.is_client_error(), "{e}");

        // Another tenant sees nothing of it.
        crate::tenancy::create_user(&c, "mallory").await;
        let m =
            Client::new(&p.url, &harness::password_token(&p.url, "mallory", "mallory-pw").await);
        let (st, _) = m.get(&format!("/v3/deployments/{roll_guid}")).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) =
            m.post(&format!("/v3/deployments/{roll_guid}/actions/cancel"), json!({})).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (_, list) = m.get("/v3/deployments").await;
        assert_eq!(list["pagination"]["total_results"], 0, "{list}");
        let (st, _) = m.get(&format!("/v3/revisions/{v1}")).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, e) = deploy(&m, json!({"relationships": {"app": {"data": {"guid": app}}}})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");

        // Stopping the app ends nothing active, and deleting it removes its rows.
        let (st, _) = c.post(&format!("/v3/apps/{app}/actions/stop"), json!({})).await;
        assert_eq!(st, StatusCode::OK);
        let (_, active) =
            c.get(&format!("/v3/deployments?app_guids={app}&status_values=ACTIVE")).await;
        assert_eq!(active["pagination"]["total_results"], 0);
        p.stop().await;
    }
}
