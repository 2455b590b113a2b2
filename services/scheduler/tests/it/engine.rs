use std::time::Duration;

use testkit::Engine;
use wire::lrp::{ActualState, Presence};

use crate::fake::{desired, report, world};

#[tokio::test]
async fn instances_spread_across_cells_and_zones() {
    for engine in Engine::ALL {
        let w = world(engine).await;
        w.cell("c1", "z1", 4096).await;
        w.cell("c2", "z1", 4096).await;
        w.cell("c3", "z2", 4096).await;
        w.engine.repo.put_desired(&desired("p", 3, 256), w.engine.now()).await.expect("put");
        w.engine.desired_changed("p").await.expect("converge");
        let mut cells: Vec<String> = w.performed().into_iter().map(|(c, _)| c).collect();
        cells.sort();
        assert_eq!(cells, ["http://c1", "http://c2", "http://c3"], "{engine:?}: one per cell");
        let actual = w.actual("p").await;
        assert_eq!(actual.len(), 3);
        assert!(actual.iter().all(|a| a.state == ActualState::Unclaimed));
    }
}

#[tokio::test]
async fn placement_errors_say_why() {
    for engine in Engine::ALL {
        let w = world(engine).await;
        w.engine.repo.put_desired(&desired("p", 1, 256), w.engine.now()).await.expect("put");
        w.engine.desired_changed("p").await.expect("converge");
        assert_eq!(
            w.actual("p").await[0].placement_error,
            "found no compatible cell for required rootfs"
        );
        w.cell("small", "z1", 128).await;
        w.engine.converge().await.expect("converge");
        assert_eq!(
            w.actual("p").await[0].placement_error,
            "insufficient resources: memory",
            "{engine:?}"
        );
        w.cell("big", "z1", 4096).await;
        w.engine.converge().await.expect("converge");
        assert_eq!(w.performed().len(), 1, "placed once a cell fits");
    }
}

#[tokio::test]
async fn lifecycle_claim_run_crash_and_back_off() {
    for engine in Engine::ALL {
        let w = world(engine).await;
        w.cell("c1", "z1", 8192).await;
        w.engine.repo.put_desired(&desired("p", 1, 256), w.engine.now()).await.expect("put");
        w.engine.desired_changed("p").await.expect("converge");
        let mut crashes = 0;
        loop {
            let last = w.performed().last().cloned().expect("work sent");
            let r = report(&last);
            w.engine.claim(&r).await.expect("claim");
            assert_eq!(w.actual("p").await[0].state, ActualState::Claimed);
            w.engine.start(&r).await.expect("start");
            let a = &w.actual("p").await[0];
            assert_eq!((a.state, a.address.as_str()), (ActualState::Running, "10.0.0.1"));
            let mut crash = r.clone();
            crash.crash_reason = Some("Exited with status 1".into());
            w.engine.crash(&crash).await.expect("crash");
            crashes += 1;
            let a = w.actual("p").await[0].clone();
            assert_eq!(a.crash_count, crashes, "{engine:?}");
            assert_eq!(a.crash_reason, "Exited with status 1");
            if crashes < 3 {
                assert_eq!(a.state, ActualState::Unclaimed, "crash {crashes} restarts at once");
                assert_eq!(w.performed().len(), crashes as usize + 1, "re-auctioned at once");
                continue;
            }
            assert_eq!(a.state, ActualState::Crashed, "third crash waits");
            break;
        }
        let sent = w.performed().len();
        w.clock.advance(Duration::from_secs(29));
        w.cell("c1", "z1", 8192).await; // the cell keeps heartbeating
        w.engine.converge().await.expect("converge");
        assert_eq!(w.performed().len(), sent, "not before 30 s");
        w.clock.advance(Duration::from_secs(1));
        w.cell("c1", "z1", 8192).await;
        w.engine.converge().await.expect("converge");
        assert_eq!(w.performed().len(), sent + 1, "restarted after 30 s");
        assert_eq!(w.actual("p").await[0].crash_count, 3, "the count survives the restart");
    }
}

#[tokio::test]
async fn reports_from_the_wrong_instance_are_refused() {
    for engine in Engine::ALL {
        let w = world(engine).await;
        w.cell("c1", "z1", 8192).await;
        w.engine.repo.put_desired(&desired("p", 1, 256), w.engine.now()).await.expect("put");
        w.engine.desired_changed("p").await.expect("converge");
        let r = report(&w.performed()[0]);
        w.engine.claim(&r).await.expect("claim");
        let mut other = r.clone();
        other.instance.instance_guid = "someone-else".into();
        assert!(w.engine.start(&other).await.is_err(), "{engine:?}");
        assert!(w.engine.crash(&other).await.is_err());
        assert_eq!(w.actual("p").await[0].state, ActualState::Claimed);
    }
}

#[tokio::test]
async fn convergence_creates_missing_and_stops_extra() {
    for engine in Engine::ALL {
        let w = world(engine).await;
        w.cell("c1", "z1", 8192).await;
        w.engine.repo.put_desired(&desired("p", 3, 256), w.engine.now()).await.expect("put");
        w.engine.desired_changed("p").await.expect("converge");
        for start in w.performed() {
            let r = report(&start);
            w.engine.claim(&r).await.expect("claim");
            w.engine.start(&r).await.expect("start");
        }
        let u = wire::lrp::DesiredLrpUpdate { instances: Some(1), ..Default::default() };
        w.engine.repo.update_desired("p", &u, w.engine.now()).await.expect("scale down");
        w.engine.desired_changed("p").await.expect("converge");
        assert_eq!(w.actual("p").await.len(), 1, "{engine:?}");
        assert_eq!(
            w.cells.stopped.lock().expect("lock").len(),
            2,
            "extra instances stopped on the cell"
        );
        // An instance record lost from storage is recreated by the next pass.
        w.engine.repo.delete_actual("p", 0, Presence::Ordinary).await.expect("delete");
        w.engine.converge().await.expect("converge");
        assert_eq!(w.actual("p").await.len(), 1);
        // A desired LRP that is gone takes its instances with it.
        w.engine.repo.delete_desired("p").await.expect("delete");
        w.engine.converge().await.expect("converge");
        assert!(w.actual("p").await.is_empty());
    }
}

#[tokio::test]
async fn instances_of_a_lost_cell_are_replaced_and_kept_until_then() {
    for engine in Engine::ALL {
        let w = world(engine).await;
        w.cell("old", "z1", 8192).await;
        w.engine.repo.put_desired(&desired("p", 1, 256), w.engine.now()).await.expect("put");
        w.engine.desired_changed("p").await.expect("converge");
        let r = report(&w.performed()[0]);
        w.engine.claim(&r).await.expect("claim");
        w.engine.start(&r).await.expect("start");
        w.clock.advance(Duration::from_secs(20));
        w.cell("new", "z1", 8192).await;
        w.engine.converge().await.expect("converge");
        let a = w.actual("p").await;
        assert_eq!(a.len(), 2, "{engine:?}: suspect kept beside its replacement");
        assert!(a
            .iter()
            .any(|x| x.presence == Presence::Suspect && x.state == ActualState::Running));
        let replacement = w.performed().last().cloned().expect("replacement");
        assert_eq!(replacement.0, "http://new");
        let r = report(&replacement);
        w.engine.claim(&r).await.expect("claim");
        w.engine.start(&r).await.expect("start");
        let a = w.actual("p").await;
        assert_eq!(a.len(), 1, "suspect removed once the replacement runs");
        assert_eq!(a[0].cell_id, "new");
    }
}

#[tokio::test]
async fn crashes_are_published_for_the_api() {
    let w = world(Engine::Sqlite).await;
    let mut events = w.bus.subscribe(wire::subjects::APP_EVENTS).await.expect("subscribe");
    w.cell("c1", "z1", 8192).await;
    w.engine.repo.put_desired(&desired("p", 1, 256), w.engine.now()).await.expect("put");
    w.engine.desired_changed("p").await.expect("converge");
    let mut r = report(&w.performed()[0]);
    w.engine.claim(&r).await.expect("claim");
    r.crash_reason = Some("out of memory".into());
    r.exit_status = Some(137);
    w.engine.crash(&r).await.expect("crash");
    let msg = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("in time")
        .expect("event");
    let e: wire::events::AppEvent = serde_json::from_slice(&msg.payload).expect("json");
    assert_eq!(e.app_guid, "app-1");
    assert_eq!(
        e.kind,
        wire::events::AppEventKind::Crash {
            reason: "out of memory".into(),
            exit_status: Some(137),
            crash_count: 1
        }
    );
}
