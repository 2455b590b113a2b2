//! Evacuation on shutdown: a draining cell says so in its presence,
//! hands each instance to the scheduler, keeps it running and answering while the scheduler
//! says "keep", and stops it once told its replacement runs — by its answer, or by a stop
//! through the cell's API, which stays open (new work refused) until the cell is empty.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::harness::{lrp, served_droplet, start_cell_with, Backend};

on_both_backends!(a_draining_cell_keeps_instances_until_the_scheduler_lets_them_go);

async fn a_draining_cell_keeps_instances_until_the_scheduler_lets_them_go(backend: Backend) {
    let c = start_cell_with(backend, 9, |cfg| {
        cfg.evacuation_timeout_secs = 60;
        cfg.evacuation_polling_secs = 1;
        cfg.heartbeat_secs = 1;
    })
    .await;
    let (url, sha, _droplet) = served_droplet().await;
    let app = lrp(&url, &sha, "exec python3 -m http.server $PORT", 30);
    c.send_work(&app).await;
    let started = c.report("start", &app, Duration::from_secs(30)).await;
    let port = started.ports[0].host_port;
    let other = lrp(&url, &sha, "exec python3 -m http.server $PORT", 30);
    c.send_work(&other).await;
    c.report("start", &other, Duration::from_secs(30)).await;
    let get = || async move {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    };
    assert!(get().await, "serving before the drain");

    // "Keep" until the replacements run.
    c.scheduler.keep_evacuating.store(1000, Ordering::SeqCst);
    c.shutdown.cancel();
    let asked = Instant::now();
    testkit::eventually("handed over", Duration::from_secs(10), || async {
        let count = |l: &wire::lrp::LrpStart| c.scheduler.count("evacuate", &l.instance_guid);
        (count(&app) >= 1 && count(&other) >= 1).then_some(())
    })
    .await
    .expect("the cell asks the scheduler to take each instance");
    assert!(get().await, "still serving while the scheduler says keep");
    testkit::eventually("evacuating presence", Duration::from_secs(5), || async {
        c.scheduler.saw_evacuating.load(Ordering::SeqCst).then_some(())
    })
    .await
    .expect("the presence says evacuating, so the cell gets no new work");

    // The API still answers: new work is refused, and the scheduler's stop of an instance
    // whose replacement runs is carried out.
    let third = lrp(&url, &sha, "exec python3 -m http.server $PORT", 30);
    let res = reqwest::Client::new()
        .post(format!("{}/internal/v1/work", c.url))
        .header("authorization", &c.token)
        .json(&wire::lrp::Work { lrps: vec![third.clone()] })
        .send()
        .await
        .expect("the API answers while evacuating");
    let refused: wire::lrp::WorkResult = res.json().await.expect("json");
    assert_eq!(refused.failed.len(), 1, "an evacuating cell takes no work");
    c.stop(&other).await;
    c.report("remove", &other, Duration::from_secs(30)).await;
    assert!(get().await, "the other instance is still kept");

    // Then "stop" for the last one: the cell stops it and ends.
    c.scheduler.keep_evacuating.store(0, Ordering::SeqCst);
    let done = tokio::time::timeout(Duration::from_secs(60), c.task).await;
    assert!(matches!(done, Ok(Ok(Ok(())))), "clean stop after the hand-over: {done:?}");
    assert!(asked.elapsed() >= Duration::from_secs(1), "it waited for the scheduler's word");
    assert!(
        c.scheduler.count("evacuate", &app.instance_guid) >= 2,
        "asked again until told to stop"
    );
    assert!(!get().await, "stopped once its replacement runs");
    assert!(c.scheduler.find("claim", &third.instance_guid).is_none(), "never started");
}
