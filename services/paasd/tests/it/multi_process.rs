//! Services in separate `paasd run` processes, joined by a real NATS server: the router's own
//! log lines travel over NATS into the logs process, which counts them by component.

use std::time::Duration;

use crate::{Paasd, Ports};

#[tokio::test]
async fn processes_exchange_messages_over_nats() {
    let nats = testkit::NatsServer::start().await.expect("nats");
    let dir = crate::data_dir();
    let ports = Ports::free();
    let mut env = ports.env();
    env.push(("PAAS_BUS_KIND", "nats".into()));
    env.push(("PAAS_BUS_URL", nats.url()));
    env.push(("PAAS_ROUTER_INDEX", "7".into()));
    env.push(("RUST_LOG", "info".into()));

    let _logs = Paasd::spawn(&["run", "--services", "logs"], &env, &dir.path().join("a"));
    let logs = format!("http://127.0.0.1:{}", ports.logs);
    testkit::wait_http_ok(&format!("{logs}/readyz"), Duration::from_secs(30))
        .await
        .expect("logs ready");
    let _router = Paasd::spawn(&["run", "--services", "router"], &env, &dir.path().join("b"));
    let status = format!("http://127.0.0.1:{}/readyz", ports.router_status);
    testkit::wait_http_ok(&status, Duration::from_secs(30)).await.expect("router ready");

    let client = reqwest::Client::new();
    let found = testkit::eventually(
        "router logs counted by the logs process",
        Duration::from_secs(20),
        || {
            let req = client.get(format!("{logs}/metrics")).send();
            async move {
                let text = req.await.ok()?.text().await.ok()?;
                text.lines()
                    .any(|l| l.contains("platform_envelopes") && l.contains("source=\"router/7\""))
                    .then_some(())
            }
        },
    )
    .await;
    assert!(found.is_ok(), "{found:?}");
}

/// A push through every service, each in its own `paasd run` process: NATS between them,
/// PostgreSQL under the api and the scheduler.
#[tokio::test]
async fn a_push_through_separate_processes_over_nats_and_postgres() {
    let nats = testkit::NatsServer::start().await.expect("nats");
    let api_db = testkit::TestDb::new(testkit::Engine::Postgres).await.expect("api db");
    let sched_db = testkit::TestDb::new(testkit::Engine::Postgres).await.expect("scheduler db");
    let dir = crate::data_dir();
    let ports = Ports::free();
    let (_cleanup, runc_env) = crate::push::runc_cell(dir.path(), 1);
    let url = |p: u16| format!("http://127.0.0.1:{p}");
    let secret = "multi-process-component-secret".to_owned();
    let mut env = ports.env();
    env.retain(|(k, _)| *k != "PAAS_CELL_BACKEND");
    env.extend(runc_env);
    env.extend([
        ("PAAS_BUS_KIND", "nats".to_owned()),
        ("PAAS_BUS_URL", nats.url()),
        ("PAAS_ADMIN_PASSWORD", "multi-admin-password".to_owned()),
        ("PAAS_API_DATABASE_URL", api_db.url.clone()),
        ("PAAS_API_EXTERNAL_URL", url(ports.api)),
        ("PAAS_API_SCHEDULER_URL", url(ports.scheduler)),
        ("PAAS_API_LOGS_URL", url(ports.logs)),
        ("PAAS_API_INTERNAL_CLIENT_SECRET", secret.clone()),
        ("PAAS_SCHEDULER_DATABASE_URL", sched_db.url.clone()),
        ("PAAS_SCHEDULER_API_URL", url(ports.api)),
        ("PAAS_SCHEDULER_INTERNAL_CLIENT_SECRET", secret.clone()),
        ("PAAS_STAGER_API_URL", url(ports.api)),
        ("PAAS_STAGER_INTERNAL_CLIENT_SECRET", secret.clone()),
        ("PAAS_CELL_API_URL", url(ports.api)),
        ("PAAS_CELL_SCHEDULER_URL", url(ports.scheduler)),
        ("PAAS_CELL_INTERNAL_CLIENT_SECRET", secret.clone()),
        ("PAAS_LOGS_API_URL", url(ports.api)),
        ("PAAS_LOGS_INTERNAL_CLIENT_SECRET", secret),
    ]);
    // The first cell hands its instances over when it is stopped (evacuation).
    let mut cell_a_env = env.clone();
    cell_a_env.extend([
        ("PAAS_CELL_CELL_ID", "cell-a".to_owned()),
        ("PAAS_CELL_EVACUATION_TIMEOUT_SECS", "120".to_owned()),
        ("PAAS_CELL_EVACUATION_POLLING_SECS", "1".to_owned()),
    ]);
    let mut procs = Vec::new();
    let mut cell_a = None;
    for (service, ready) in [
        ("api", ports.api),
        ("logs", ports.logs),
        ("scheduler", ports.scheduler),
        ("stager", ports.stager),
        ("cell", ports.cell),
        ("router", ports.router_status),
    ] {
        let home = dir.path().join(service);
        if service == "cell" {
            cell_a = Some(Paasd::spawn(&["run", "--services", service], &cell_a_env, &home));
        } else {
            procs.push(Paasd::spawn(&["run", "--services", service], &env, &home));
        }
        testkit::wait_http_ok(&format!("{}/readyz", url(ready)), Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{service} ready: {e}"));
    }
    let (app, cf) =
        crate::push::push_hello(&url(ports.api), &url(ports.router), "multi-admin-password").await;
    // The instance's stats come from the scheduler's PostgreSQL through the api.
    let stats = cf.get(&format!("/v3/processes/{app}/stats")).await;
    assert_eq!(stats["resources"][0]["state"], "RUNNING", "{stats}");
    // Restarting the api loses nothing: the app is still there and still routed.
    drop(procs.remove(0));
    procs.push(Paasd::spawn(&["run", "--services", "api"], &env, &dir.path().join("api")));
    testkit::wait_http_ok(&format!("{}/readyz", url(ports.api)), Duration::from_secs(60))
        .await
        .expect("api back");
    let res = cf
        .http
        .get(format!("{}/hello.txt", url(ports.router)))
        .header("host", "hello.apps.localhost")
        .send()
        .await
        .expect("router");
    assert_eq!(res.status(), 200);

    // A second cell joins; the first is stopped and evacuates: the scheduler places the
    // instance on the second while the first keeps it running and routed, and the first stops
    // it (and exits) once the replacement runs. The router serves every request meanwhile.
    let (_cleanup_b, runc_b) = crate::push::runc_cell(dir.path(), 2);
    let cell_b_port = testkit::free_port();
    let mut cell_b_env = env.clone();
    cell_b_env.extend(runc_b);
    cell_b_env.extend([
        ("PAAS_CELL_CELL_ID", "cell-b".to_owned()),
        ("PAAS_CELL_ADDR", format!("127.0.0.1:{cell_b_port}")),
    ]);
    procs.push(Paasd::spawn(
        &["run", "--services", "cell"],
        &cell_b_env,
        &dir.path().join("cell-b"),
    ));
    testkit::wait_http_ok(&format!("{}/readyz", url(cell_b_port)), Duration::from_secs(60))
        .await
        .expect("second cell ready");
    let serving = tokio::sync::watch::channel(true);
    let (http, router) = (cf.http.clone(), url(ports.router));
    let mut keep_going = serving.1.clone();
    let load = tokio::spawn(async move {
        let mut statuses = Vec::new();
        while *keep_going.borrow_and_update() {
            let status = http
                .get(format!("{router}/hello.txt"))
                .header("host", "hello.apps.localhost")
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            statuses.push(status);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        statuses
    });
    let mut a = cell_a.take().expect("first cell");
    let drained = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let status = a.terminate();
        (status, started.elapsed())
    });
    let (status, took) = tokio::time::timeout(Duration::from_secs(150), drained)
        .await
        .expect("the first cell drains in time")
        .expect("join");
    assert!(status.success(), "the first cell exits cleanly: {status:?}");
    // Still served with the first cell gone: by the instance on the second.
    tokio::time::sleep(Duration::from_millis(500)).await;
    serving.0.send(false).expect("stop load");
    let statuses = load.await.expect("load");
    let failed: Vec<&u16> = statuses.iter().filter(|s| **s != 200).collect();
    assert!(
        failed.is_empty() && statuses.len() > 10,
        "{} of {} requests failed during the evacuation ({took:?}): {failed:?}",
        failed.len(),
        statuses.len()
    );
    let stats = cf.get(&format!("/v3/processes/{app}/stats")).await;
    assert_eq!(stats["resources"][0]["state"], "RUNNING", "{stats}");
}
