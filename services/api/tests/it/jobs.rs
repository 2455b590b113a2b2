//! Jobs and the apis that run them, on both engines: each api refreshes the heartbeat of the
//! jobs it runs; a starting api leaves the jobs of another live api alone; a PROCESSING job
//! whose api stopped heartbeating (or, from before heartbeats, whose last change is that old)
//! is failed with a reason once `job_stale_ms` has passed; an api's own long job lives past
//! that; and a job cut off by the end of the drain is failed at once.

use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::Row as _;
use testkit::{Engine, TestDb};

use crate::harness::{self, Client, Platform};

const HEARTBEAT_MS: u64 = 100;
const STALE_MS: u64 = 1000;
const STOPPED: &str =
    "The api running this job stopped before it finished; run the operation again.";

fn quick(c: &mut api::Config) {
    c.job_heartbeat_ms = HEARTBEAT_MS;
    c.job_stale_ms = STALE_MS;
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A `jobs` row as stored.
#[derive(Debug)]
struct Row {
    state: String,
    errors: String,
    heartbeat_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

async fn row(db: &kit::db::Db, guid: &str) -> Row {
    let r = sqlx::query(
        "SELECT state, errors, heartbeat_at, created_at, updated_at FROM jobs WHERE guid = $1",
    )
    .bind(guid)
    .fetch_one(&db.pool)
    .await
    .expect("job row");
    Row {
        state: r.get("state"),
        errors: r.get("errors"),
        heartbeat_at: r.get("heartbeat_at"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

/// A PROCESSING job of the api `runner`, as that api would have written it.
async fn insert_job(db: &kit::db::Db, guid: &str, runner: &str, heartbeat_at: i64) {
    sqlx::query(
        "INSERT INTO jobs (guid, operation, state, errors, warnings, resource_type, resource_guid, \
         runner, heartbeat_at, created_at, updated_at) \
         VALUES ($1, 'app.delete', 'PROCESSING', '[]', '[]', '', '', $2, $3, $3, $3)",
    )
    .bind(guid)
    .bind(runner)
    .bind(heartbeat_at)
    .execute(&db.pool)
    .await
    .expect("insert job");
}

/// A job of `p` deleting a started app, each of its (three) calls to the scheduler taking
/// `delay_ms`; the job's guid, PROCESSING.
async fn long_job(p: &Platform, org: &str, delay_ms: u64) -> String {
    let admin = Client::new(&p.url, &p.admin_token);
    let (_, space) = crate::push::org_and_space(&admin, org).await;
    let app = crate::route_bindings::started_app(&admin, &space).await;
    p.scheduler_delay.store(delay_ms, Ordering::SeqCst);
    let res = admin
        .http
        .delete(format!("{}/v3/apps/{app}", p.url))
        .bearer_auth(&p.admin_token)
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 202);
    let loc = res.headers()["location"].to_str().expect("location");
    loc.rsplit('/').next().expect("job guid").to_owned()
}

/// The job as the API shows it failed by [`STOPPED`].
async fn assert_failed_as_stopped(p: &Platform, guid: &str) {
    let admin = Client::new(&p.url, &p.admin_token);
    let (_, job) = admin.get(&format!("/v3/jobs/{guid}")).await;
    assert_eq!(job["state"], "FAILED", "{job}");
    assert_eq!(job["errors"][0]["detail"], STOPPED, "{job}");
    assert_eq!(job["errors"][0]["title"], "UnknownError", "{job}");
}

/// Two apis on one database: the second one's start (and its sweeps after) leave the job the
/// first runs alone, which completes; a job of an api that is gone is failed by that start.
#[tokio::test]
async fn a_starting_api_leaves_the_jobs_of_a_live_api_alone() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let conn = db.connect().await.expect("connect");
        // The first api takes long to call a job of an api gone stale: only the second fails it.
        let a = harness::start(&db, |c| {
            c.job_heartbeat_ms = HEARTBEAT_MS;
            c.job_stale_ms = 60_000;
        })
        .await;
        let job = long_job(&a, "acme", 2000).await;
        // Older than the second api's `job_stale_ms`: only the heartbeat keeps it fresh.
        tokio::time::sleep(Duration::from_millis(STALE_MS * 3 / 2)).await;
        insert_job(&conn, "job-of-a-gone-api", "gone-runner", now_ms() - 5 * STALE_MS as i64).await;

        let b = harness::start(&db, quick).await;
        assert_eq!(row(&conn, "job-of-a-gone-api").await.state, "FAILED", "{engine:?}");
        assert_failed_as_stopped(&b, "job-of-a-gone-api").await;
        let r = row(&conn, &job).await;
        assert_eq!(r.state, "PROCESSING", "{engine:?}: the start failed a live api's job: {r:?}");
        assert!(
            r.heartbeat_at.expect("heartbeat") >= r.created_at + STALE_MS as i64,
            "{engine:?}: the job's heartbeat was not refreshed: {r:?}"
        );
        // The second api sweeps every HEARTBEAT_MS meanwhile.
        let done = Client::new(&b.url, &b.admin_token).wait_job(&format!("/v3/jobs/{job}")).await;
        assert_eq!(done["state"], "COMPLETE", "{engine:?}: {done}");
        b.stop().await;
        a.stop().await;
        conn.pool.close().await;
    }
}

/// A job whose api stopped heartbeating is left PROCESSING while its heartbeat is fresh and
/// failed with the reason once it is `job_stale_ms` old.
#[tokio::test]
async fn a_job_whose_api_stopped_heartbeating_fails_after_stale() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let conn = db.connect().await.expect("connect");
        let p = harness::start(&db, quick).await;
        insert_job(&conn, "job-of-a-dead-api", "dead-runner", now_ms()).await;
        tokio::time::sleep(Duration::from_millis(STALE_MS / 2)).await;
        let r = row(&conn, "job-of-a-dead-api").await;
        assert_eq!(r.state, "PROCESSING", "{engine:?}: failed while fresh: {r:?}");

        let r = testkit::eventually("the job failed", Duration::from_secs(10), || async {
            let r = row(&conn, "job-of-a-dead-api").await;
            (r.state != "PROCESSING").then_some(r)
        })
        .await
        .expect("the job of the dead api failed");
        assert_eq!(r.state, "FAILED", "{engine:?}: {r:?}");
        assert!(r.errors.contains(STOPPED), "{engine:?}: {r:?}");
        let beat = r.heartbeat_at.expect("heartbeat");
        assert!(r.updated_at - beat >= STALE_MS as i64, "{engine:?}: failed too early: {r:?}");
        assert_eq!(beat, r.created_at, "{engine:?}: nobody beats for a dead api: {r:?}");
        assert_failed_as_stopped(&p, "job-of-a-dead-api").await;
        p.stop().await;
        conn.pool.close().await;
    }
}

/// Jobs from before runners and heartbeats (a database at migration 19): one whose last change
/// is older than `job_stale_ms` is failed by the start, a recent one once it is that old.
#[tokio::test]
async fn jobs_from_before_heartbeats_fail_once_stale() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let conn = db.connect().await.expect("connect");
        let (sqlite, postgres) = kit::migrations!(
            "api",
            [
                (1, "init", "0001_init.sql"),
                (2, "identity", "0002_identity.sql"),
                (3, "platform", "0003_platform.sql"),
                (4, "metadata", "0004_metadata.sql"),
                (5, "space_quotas", "0005_space_quotas.sql"),
                (6, "services", "0006_services.sql"),
                (7, "route_bindings", "0007_route_bindings.sql"),
                (8, "deployments", "0008_deployments.sql"),
                (9, "tasks", "0009_tasks.sql"),
                (10, "ssh", "0010_ssh.sql"),
                (11, "feature_flags", "0011_feature_flags.sql"),
                (12, "app_task_limits", "0012_app_task_limits.sql"),
                (13, "env_var_groups", "0013_env_var_groups.sql"),
                (14, "brokers", "0014_brokers.sql"),
                (15, "service_shares", "0015_service_shares.sql"),
                (16, "usage_events", "0016_usage_events.sql"),
                (17, "service_plan_lifecycle", "0017_service_plan_lifecycle.sql"),
                (18, "docker", "0018_docker.sql"),
                (19, "domain_shares", "0019_domain_shares.sql")
            ]
        );
        conn.migrate(sqlite, postgres).await.expect("migrate to 19");
        let now = now_ms();
        // The recent job's last change is put a little ahead, so that a start slowed down by a
        // busy machine still finds it recent.
        let recent_at = now + 2 * STALE_MS as i64;
        for (guid, at) in [("old-job", now - 10 * STALE_MS as i64), ("recent-job", recent_at)] {
            sqlx::query(
                "INSERT INTO jobs (guid, operation, state, errors, warnings, resource_type, \
                 resource_guid, created_at, updated_at) \
                 VALUES ($1, 'space.delete', 'PROCESSING', '[]', '[]', '', '', $2, $2)",
            )
            .bind(guid)
            .bind(at)
            .execute(&conn.pool)
            .await
            .expect("insert");
        }

        let p = harness::start(&db, quick).await;
        let old = row(&conn, "old-job").await;
        assert_eq!(old.state, "FAILED", "{engine:?}: {old:?}");
        assert_eq!(old.heartbeat_at, None, "{engine:?}: {old:?}");
        assert_failed_as_stopped(&p, "old-job").await;
        let recent = row(&conn, "recent-job").await;
        if now_ms() < recent_at + STALE_MS as i64 {
            assert_eq!(recent.state, "PROCESSING", "{engine:?}: failed while recent: {recent:?}");
        }

        let recent = testkit::eventually("the recent job failed", Duration::from_secs(10), || {
            let conn = &conn;
            async move {
                let r = row(conn, "recent-job").await;
                (r.state != "PROCESSING").then_some(r)
            }
        })
        .await
        .expect("the recent job failed");
        assert_eq!(recent.state, "FAILED", "{engine:?}: {recent:?}");
        assert!(recent.updated_at - recent_at >= STALE_MS as i64, "{engine:?}: {recent:?}");
        assert_failed_as_stopped(&p, "recent-job").await;
        p.stop().await;
        conn.pool.close().await;
    }
}

/// An api's own job that runs several times `job_stale_ms` stays PROCESSING, its heartbeat
/// refreshed, and completes.
#[tokio::test]
async fn the_heartbeat_keeps_a_long_job_alive_past_stale() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let conn = db.connect().await.expect("connect");
        let p = harness::start(&db, quick).await;
        let job = long_job(&p, "acme", 3 * STALE_MS / 2).await;
        let r = testkit::eventually("a heartbeat past stale", Duration::from_secs(10), || {
            let (conn, job) = (&conn, &job);
            async move {
                let r = row(conn, job).await;
                (r.state != "PROCESSING"
                    || r.heartbeat_at.is_some_and(|b| b > r.created_at + 2 * STALE_MS as i64))
                .then_some(r)
            }
        })
        .await
        .expect("the job lived past stale");
        assert_eq!(r.state, "PROCESSING", "{engine:?}: {r:?}");

        let admin = Client::new(&p.url, &p.admin_token);
        let done = admin.wait_job(&format!("/v3/jobs/{job}")).await;
        assert_eq!(done["state"], "COMPLETE", "{engine:?}: {done}");
        let r = row(&conn, &job).await;
        assert!(r.updated_at - r.created_at > 2 * STALE_MS as i64, "{engine:?}: {r:?}");
        p.stop().await;
        conn.pool.close().await;
    }
}

/// A job still running when the drain ends is failed by its api as it stops, not left
/// PROCESSING for `job_stale_ms`.
#[tokio::test]
async fn a_job_cut_off_by_the_drain_fails_as_the_api_stops() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |c| {
            quick(c);
            c.drain_secs = 1;
        })
        .await;
        let job = long_job(&p, "acme", 10_000).await;
        p.stop().await;

        let conn = db.connect().await.expect("connect");
        let r = row(&conn, &job).await;
        assert_eq!(r.state, "FAILED", "{engine:?}: {r:?}");
        assert!(r.errors.contains(STOPPED), "{engine:?}: {r:?}");
        conn.pool.close().await;
    }
}
