//! Stagers' claims of builds, on both engines: the first claim of a STAGING build wins (also
//! when stagers race), the winner's claims again are its heartbeats, another stager's and any
//! claim of a finished build are refused (409), an unknown build is 404, and only components
//! may claim. A claimed build whose heartbeats stop is failed with a reason after the heartbeat
//! timeout; an unclaimed one has its request sent again every claim timeout, and a stager that
//! claims it late still stages it.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{json, Value};
use sqlx::Row as _;
use testkit::{Engine, TestDb};
use wire::staging::StagingRequest;

use crate::harness::{self, Client, Platform};

/// A `builds` row as stored.
#[derive(Debug)]
struct Row {
    state: String,
    error: String,
    stager_id: Option<String>,
    heartbeat_at: Option<i64>,
    updated_at: i64,
}

async fn row(db: &kit::db::Db, guid: &str) -> Row {
    let r = sqlx::query(
        "SELECT state, error, stager_id, heartbeat_at, updated_at FROM builds WHERE guid = $1",
    )
    .bind(guid)
    .fetch_one(&db.pool)
    .await
    .expect("build row");
    Row {
        state: r.get("state"),
        error: r.get("error"),
        stager_id: r.get("stager_id"),
        heartbeat_at: r.get("heartbeat_at"),
        updated_at: r.get("updated_at"),
    }
}

/// An app (in a new org) with a READY package; the app's and the package's guids.
async fn app_with_package(c: &Client, org: &str) -> (String, String) {
    let (_, space) = crate::push::org_and_space(c, org).await;
    let app = crate::push::app_in(c, &space, "web").await;
    let (st, pkg) = c
        .post(
            "/v3/packages",
            json!({"type": "bits", "relationships": {"app": {"data": {"guid": app}}}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{pkg}");
    let pkg = pkg["guid"].as_str().expect("package").to_owned();
    let bits = harness::zip_of(&[("app.py", 0o644, b"print('hi')\n")]);
    let (st, up) = c.upload(&pkg, json!([]), Some(bits)).await;
    assert_eq!(st, StatusCode::OK, "{up}");
    (app, pkg)
}

/// A new build of the package: its guid (STAGING).
async fn build(c: &Client, pkg: &str) -> String {
    let (st, b) = c.post("/v3/builds", json!({"package": {"guid": pkg}})).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert_eq!(b["state"], "STAGING", "{b}");
    b["guid"].as_str().expect("build").to_owned()
}

/// `POST /internal/v1/builds/:g/claim` as `stager` with `token` (none: no header).
async fn claim(p: &Platform, token: Option<&str>, build: &str, stager: &str) -> StatusCode {
    let mut req = reqwest::Client::new()
        .post(format!("{}/internal/v1/builds/{build}/claim", p.url))
        .json(&json!({"stager_id": stager}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("claim");
    StatusCode::from_u16(res.status().as_u16()).expect("status")
}

/// The next staging request on the bus.
async fn next_request(sub: &mut bus::Subscription, within: Duration) -> StagingRequest {
    let msg = tokio::time::timeout(within, sub.next())
        .await
        .expect("a staging request in time")
        .expect("message");
    serde_json::from_slice(&msg.payload).expect("staging request")
}

/// The build as the API shows it once it left STAGING.
async fn finished(c: &Client, build: &str) -> Value {
    testkit::eventually("build finished", Duration::from_secs(20), || async {
        let (_, b) = c.get(&format!("/v3/builds/{build}")).await;
        (b["state"] != "STAGING").then_some(b)
    })
    .await
    .expect("build finished")
}

#[tokio::test]
async fn the_first_claim_wins_and_its_stager_heartbeats_with_it() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let conn = db.connect().await.expect("connect");
        let p = harness::start(&db, |_| {}).await;
        p.stager_paused.store(true, Ordering::SeqCst);
        let admin = Client::new(&p.url, &p.admin_token);
        let token = harness::component_token(&p.url).await;
        let (_, pkg) = app_with_package(&admin, "acme").await;
        let b = build(&admin, &pkg).await;
        let fresh = row(&conn, &b).await;
        assert_eq!((fresh.stager_id, fresh.heartbeat_at), (None, None), "{engine:?}");

        // Only components claim.
        assert_eq!(claim(&p, Some(&p.admin_token), &b, "stager-a").await, 403, "{engine:?}");
        assert_eq!(claim(&p, None, &b, "stager-a").await, 401, "{engine:?}");
        assert_eq!(claim(&p, Some("not-a-token"), &b, "stager-a").await, 401, "{engine:?}");
        assert_eq!(row(&conn, &b).await.stager_id, None, "{engine:?}");

        assert_eq!(claim(&p, Some(&token), &b, "stager-a").await, 200, "{engine:?}");
        let first = row(&conn, &b).await;
        assert_eq!(first.stager_id.as_deref(), Some("stager-a"), "{engine:?}");
        let beat = first.heartbeat_at.expect("heartbeat");
        assert_eq!(claim(&p, Some(&token), &b, "stager-b").await, 409, "{engine:?}");
        assert_eq!(row(&conn, &b).await.stager_id.as_deref(), Some("stager-a"), "{engine:?}");
        testkit::eventually("a later millisecond", Duration::from_secs(1), || async {
            (harness_now_ms() > beat).then_some(())
        })
        .await
        .expect("time passes");
        assert_eq!(claim(&p, Some(&token), &b, "stager-a").await, 200, "{engine:?}");
        let again = row(&conn, &b).await;
        assert!(again.heartbeat_at.expect("heartbeat") > beat, "{engine:?}: {again:?}");
        assert_eq!(again.state, "STAGING", "{engine:?}");

        assert_eq!(claim(&p, Some(&token), "no-such-build", "stager-a").await, 404, "{engine:?}");
        assert_eq!(claim(&p, Some(&token), &b, "").await, 422, "{engine:?}");

        // A failed build is not claimed, not even by its own stager.
        let res = reqwest::Client::new()
            .post(format!("{}/internal/v1/builds/{b}/completed", p.url))
            .bearer_auth(&token)
            .json(&json!({"build_guid": b, "status": "failed", "error_id": "StagingError",
                "message": "Staging error: it broke"}))
            .send()
            .await
            .expect("completed");
        assert_eq!(res.status(), 200);
        assert_eq!(row(&conn, &b).await.state, "FAILED", "{engine:?}");
        assert_eq!(claim(&p, Some(&token), &b, "stager-a").await, 409, "{engine:?}");
        assert_eq!(claim(&p, Some(&token), &b, "stager-c").await, 409, "{engine:?}");

        // Stagers racing for one build: exactly one wins.
        let b = build(&admin, &pkg).await;
        let racers = (0..8).map(|i| {
            let (p, token, b) = (&p, &token, &b);
            async move { (i, claim(p, Some(token), b, &format!("racer-{i}")).await) }
        });
        let answers = futures::future::join_all(racers).await;
        let won: Vec<usize> =
            answers.iter().filter(|(_, st)| *st == 200).map(|(i, _)| *i).collect();
        assert_eq!(won.len(), 1, "{engine:?}: {answers:?}");
        assert!(answers.iter().all(|(_, st)| *st == 200 || *st == 409), "{engine:?}: {answers:?}");
        let winner = format!("racer-{}", won[0]);
        assert_eq!(row(&conn, &b).await.stager_id, Some(winner), "{engine:?}");
        p.stop().await;
        conn.pool.close().await;
    }
}

fn harness_now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

const HEARTBEAT_TIMEOUT_SECS: u64 = 2;
const STOPPED: &str = "StagingError - Staging error: the stager staging this build stopped (no heartbeat for 2 s); push again";

/// A claimed build lives as long as its stager heartbeats (longer than the heartbeat timeout),
/// is never sent again, and fails with the reason once the heartbeats stop for the timeout;
/// the app can be pushed again at once.
#[tokio::test]
async fn a_claimed_build_whose_heartbeats_stop_fails_after_the_timeout() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let conn = db.connect().await.expect("connect");
        let p = harness::start(&db, |c| {
            c.staging_heartbeat_timeout_secs = HEARTBEAT_TIMEOUT_SECS;
            c.staging_claim_timeout_secs = 1;
        })
        .await;
        p.stager_paused.store(true, Ordering::SeqCst);
        let admin = Client::new(&p.url, &p.admin_token);
        let token = harness::component_token(&p.url).await;
        let mut sub = p.bus.subscribe(wire::subjects::STAGING_REQUEST).await.expect("subscribe");
        let (_, pkg) = app_with_package(&admin, "acme").await;
        let b = build(&admin, &pkg).await;
        let req = next_request(&mut sub, Duration::from_secs(5)).await;
        assert_eq!(req.build_guid, b);
        assert!(req.claim_url.ends_with(&format!("/internal/v1/builds/{b}/claim")), "{req:?}");
        assert_eq!(claim(&p, Some(&token), &b, "stager-a").await, 200, "{engine:?}");

        // Heartbeats for twice the timeout keep it.
        let until = Instant::now() + Duration::from_secs(2 * HEARTBEAT_TIMEOUT_SECS);
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(claim(&p, Some(&token), &b, "stager-a").await, 200, "{engine:?}");
        }
        assert_eq!(row(&conn, &b).await.state, "STAGING", "{engine:?}");

        let failed = finished(&admin, &b).await;
        assert_eq!(failed["state"], "FAILED", "{engine:?}: {failed}");
        assert_eq!(failed["error"], STOPPED, "{engine:?}: {failed}");
        let r = row(&conn, &b).await;
        assert_eq!(r.error, STOPPED, "{engine:?}");
        let quiet = r.updated_at - r.heartbeat_at.expect("heartbeat");
        assert!(quiet >= 1000 * HEARTBEAT_TIMEOUT_SECS as i64, "{engine:?}: failed early: {r:?}");
        assert_eq!(claim(&p, Some(&token), &b, "stager-a").await, 409, "{engine:?}");

        // Claimed, it was never sent again.
        let more = tokio::time::timeout(Duration::from_millis(50), sub.next()).await;
        assert!(more.is_err(), "{engine:?}: a claimed build's request was sent again");
        // No StagingInProgress: the next push stages.
        p.stager_paused.store(false, Ordering::SeqCst);
        let next = build(&admin, &pkg).await;
        assert_eq!(finished(&admin, &next).await["state"], "STAGED", "{engine:?}");
        p.stop().await;
        conn.pool.close().await;
    }
}

/// A request no stager took is sent again once the claim timeout passed, and again at most
/// once a claim timeout, with what it had; a stager that claims it then stages it.
#[tokio::test]
async fn an_unclaimed_build_is_sent_again_and_a_late_claim_stages_it() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let conn = db.connect().await.expect("connect");
        let p = harness::start(&db, |c| c.staging_claim_timeout_secs = 1).await;
        p.stager_paused.store(true, Ordering::SeqCst);
        let admin = Client::new(&p.url, &p.admin_token);
        let mut sub = p.bus.subscribe(wire::subjects::STAGING_REQUEST).await.expect("subscribe");
        let (app, pkg) = app_with_package(&admin, "acme").await;
        let b = build(&admin, &pkg).await;
        let first = next_request(&mut sub, Duration::from_secs(5)).await;
        let sent = Instant::now();
        assert_eq!(first.build_guid, b);

        let again = next_request(&mut sub, Duration::from_secs(10)).await;
        let gap = sent.elapsed();
        assert!(gap >= Duration::from_millis(800), "{engine:?}: sent again after {gap:?}");
        assert_eq!(again.build_guid, b, "{engine:?}");
        assert!(again.timeout_secs <= first.timeout_secs, "{engine:?}: {again:?}");
        assert_eq!(StagingRequest { timeout_secs: first.timeout_secs, ..again }, first);
        let r = row(&conn, &b).await;
        assert_eq!((r.state.as_str(), r.stager_id), ("STAGING", None), "{engine:?}");

        let resent = Instant::now();
        let third = next_request(&mut sub, Duration::from_secs(10)).await;
        assert_eq!(third.build_guid, b, "{engine:?}");
        assert!(resent.elapsed() >= Duration::from_millis(800), "{engine:?}: sent too often");

        // A stager listens again: it claims the next copy and stages the build.
        p.stager_paused.store(false, Ordering::SeqCst);
        let done = finished(&admin, &b).await;
        assert_eq!(done["state"], "STAGED", "{engine:?}: {done}");
        let r = row(&conn, &b).await;
        assert_eq!(r.stager_id.as_deref(), Some(harness::FAKE_STAGER), "{engine:?}");
        let staged = p.staged.lock().expect("lock").clone();
        assert_eq!(staged.iter().filter(|s| s.build_guid == b).count(), 1, "{engine:?}");
        assert_eq!(staged[0].app_guid, app);
        p.stop().await;
        conn.pool.close().await;
    }
}
