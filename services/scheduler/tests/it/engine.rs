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

/// A desired LRP with one route, and its first instance running on cell `old`.
async fn running_on_old(w: &crate::fake::World) -> (String, wire::lrp::InstanceReport) {
    w.cell("old", "z1", 8192).await;
    let mut d = desired("p", 1, 256);
    d.routes =
        serde_json::from_value(serde_json::json!([{"uri": "web.apps.localhost"}])).expect("routes");
    w.engine.repo.put_desired(&d, w.engine.now()).await.expect("put");
    w.engine.desired_changed("p").await.expect("converge");
    let r = report(&w.performed()[0]);
    w.engine.claim(&r).await.expect("claim");
    w.engine.start(&r).await.expect("start");
    // The cell is cut off: no heartbeat for longer than the TTL, another cell takes over.
    w.clock.advance(Duration::from_secs(20));
    w.cell("new", "z1", 8192).await;
    w.engine.converge().await.expect("converge");
    let replacement = w.performed().last().cloned().expect("replacement");
    assert_eq!(replacement.0, "http://new");
    let mut next = report(&replacement);
    next.address = "10.0.0.2".into();
    next.ports[0].host_port = 61002;
    w.engine.claim(&next).await.expect("claim");
    (r.instance.instance_guid, next)
}

#[tokio::test]
async fn a_replaced_suspect_goes_at_once_though_its_cell_never_answers() {
    for engine in Engine::ALL {
        let w = world(engine).await;
        let mut gone = w.bus.subscribe(wire::subjects::ROUTER_UNREGISTER).await.expect("subscribe");
        let (old_guid, next) = running_on_old(&w).await;
        w.cells.silent.lock().expect("lock").push("http://old".into());
        tokio::time::timeout(Duration::from_secs(5), w.engine.start(&next))
            .await
            .expect("the replacement's report is not held by the silent cell")
            .expect("start");
        let a = w.actual("p").await;
        assert_eq!(a.len(), 1, "{engine:?}: the suspect record is gone: {a:?}");
        assert_eq!((a[0].cell_id.as_str(), a[0].state), ("new", ActualState::Running));
        // Its routes are taken off the routers for it (its cell cannot).
        let msg = tokio::time::timeout(Duration::from_secs(5), gone.next())
            .await
            .expect("an unregistration in time")
            .expect("message");
        let m: wire::routing::RegistryMessage = serde_json::from_slice(&msg.payload).expect("json");
        assert_eq!((m.host.as_str(), m.port), ("10.0.0.1", 61001), "{engine:?}");
        assert_eq!(m.uris, ["web.apps.localhost"]);
        assert_eq!(m.private_instance_id, old_guid);
    }
}

#[tokio::test]
async fn a_returning_cell_loses_a_suspect_whose_replacement_runs() {
    for engine in Engine::ALL {
        let w = world(engine).await;
        let (old_guid, next) = running_on_old(&w).await;
        let suspect = w
            .actual("p")
            .await
            .into_iter()
            .find(|a| a.presence == Presence::Suspect)
            .expect("suspect");
        w.engine.start(&next).await.expect("start");
        // As if that report had been cut off before the suspect record went.
        w.engine.repo.insert_actual(&suspect).await.expect("insert");
        w.heartbeat("old").await;
        w.engine.converge().await.expect("converge");
        let a = w.actual("p").await;
        assert_eq!(a.len(), 1, "{engine:?}: never two copies of index 0: {a:?}");
        assert_eq!(a[0].cell_id, "new");
        let stopped = w.cells.stopped.lock().expect("lock").clone();
        assert!(
            stopped.iter().any(|(c, k)| c == "http://old" && k.instance_guid == old_guid),
            "{engine:?}: the returned cell's copy is stopped: {stopped:?}"
        );
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
