//! Instances that move without crashing: evacuation of a draining cell, and a lost cell that
//! comes back before its instances' replacements run.

use std::time::Duration;

use testkit::Engine;
use wire::lrp::{ActualState, Presence};

use crate::fake::{desired, report, world};

#[tokio::test]
async fn evacuation_keeps_the_old_instance_until_the_replacement_runs() {
    for engine in Engine::ALL {
        let w = world(engine).await;
        w.cell("old", "z1", 8192).await;
        w.engine.repo.put_desired(&desired("p", 1, 256), w.engine.now()).await.expect("put");
        w.engine.desired_changed("p").await.expect("converge");
        let r = report(&w.performed()[0]);
        w.engine.claim(&r).await.expect("claim");
        w.engine.start(&r).await.expect("start");
        w.cell("new", "z1", 8192).await;
        w.cells.states.lock().expect("lock").get_mut("http://old").expect("old").evacuating = true;

        let answer = w.engine.evacuate(&r).await.expect("evacuate");
        assert!(answer.keep_container, "{engine:?}: running instance stays until replaced");
        let a = w.actual("p").await;
        assert_eq!(a.len(), 2);
        assert!(a.iter().any(|x| x.presence == Presence::Evacuating
            && x.state == ActualState::Running
            && x.cell_id == "old"));
        assert!(a
            .iter()
            .any(|x| x.presence == Presence::Ordinary && x.state == ActualState::Unclaimed));
        let replacement = w.performed().last().cloned().expect("re-auctioned");
        assert_eq!(replacement.0, "http://new", "the evacuating cell bids no more");
        assert!(w.engine.evacuate(&r).await.expect("again").keep_container, "asked again: keep");
        assert!(w.cells.stopped.lock().expect("lock").is_empty(), "nothing stopped yet");

        let n = report(&replacement);
        w.engine.claim(&n).await.expect("claim");
        w.engine.start(&n).await.expect("start");
        let a = w.actual("p").await;
        assert_eq!(a.len(), 1, "evacuating copy gone once the replacement runs");
        assert_eq!(a[0].cell_id, "new");
        let stopped = w.cells.stopped.lock().expect("lock").clone();
        assert_eq!(stopped.len(), 1);
        assert_eq!(stopped[0].0, "http://old");
        assert_eq!(stopped[0].1.instance_guid, r.instance.instance_guid);
        assert!(!w.engine.evacuate(&r).await.expect("late").keep_container);
    }
}

#[tokio::test]
async fn evacuating_copies_are_stopped_after_the_timeout() {
    for engine in Engine::ALL {
        let w = world(engine).await;
        w.cell("old", "z1", 8192).await;
        w.engine.repo.put_desired(&desired("p", 1, 256), w.engine.now()).await.expect("put");
        w.engine.desired_changed("p").await.expect("converge");
        let r = report(&w.performed()[0]);
        w.engine.claim(&r).await.expect("claim");
        w.engine.start(&r).await.expect("start");
        w.cells.states.lock().expect("lock").get_mut("http://old").expect("old").evacuating = true;
        assert!(w.engine.evacuate(&r).await.expect("evacuate").keep_container);
        // No other cell: the replacement cannot be placed.
        for secs in [10, 580] {
            w.clock.advance(Duration::from_secs(secs));
            w.heartbeat("old").await; // heartbeats go on while draining
            w.engine.converge().await.expect("converge");
            assert_eq!(w.actual("p").await.len(), 2, "{engine:?}: within the timeout");
        }
        w.clock.advance(Duration::from_secs(11));
        w.heartbeat("old").await;
        w.engine.converge().await.expect("converge");
        let a = w.actual("p").await;
        assert_eq!(a.len(), 1, "{engine:?}: evacuating copy stopped after 600 s");
        assert_eq!(a[0].presence, Presence::Ordinary);
        assert_eq!(w.cells.stopped.lock().expect("lock").len(), 1);
    }
}

#[tokio::test]
async fn a_claimed_instance_of_an_evacuating_cell_is_destroyed_and_re_auctioned() {
    for engine in Engine::ALL {
        let w = world(engine).await;
        w.cell("old", "z1", 8192).await;
        w.engine.repo.put_desired(&desired("p", 1, 256), w.engine.now()).await.expect("put");
        w.engine.desired_changed("p").await.expect("converge");
        let r = report(&w.performed()[0]);
        w.engine.claim(&r).await.expect("claim");
        w.cells.states.lock().expect("lock").get_mut("http://old").expect("old").evacuating = true;
        w.cell("new", "z1", 8192).await;
        assert!(!w.engine.evacuate(&r).await.expect("evacuate").keep_container, "{engine:?}");
        let a = w.actual("p").await;
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].state, ActualState::Unclaimed);
        assert_eq!(w.performed().last().expect("work").0, "http://new");
    }
}

#[tokio::test]
async fn a_lost_cell_that_returns_first_keeps_its_instance() {
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
        let replacement = w.performed().last().cloned().expect("replacement");
        assert_eq!(replacement.0, "http://new");
        w.engine.claim(&report(&replacement)).await.expect("claim");

        w.cell("old", "z1", 8192).await; // heartbeat again
        w.engine.converge().await.expect("converge");
        let a = w.actual("p").await;
        assert_eq!(a.len(), 1, "{engine:?}: the replacement is removed");
        assert_eq!(a[0].presence, Presence::Ordinary);
        assert_eq!(a[0].state, ActualState::Running);
        assert_eq!(a[0].cell_id, "old");
        assert_eq!(a[0].instance_guid, r.instance.instance_guid);
        let stopped = w.cells.stopped.lock().expect("lock").clone();
        assert_eq!(stopped.len(), 1, "the claimed replacement is stopped");
        assert_eq!(stopped[0].0, "http://new");
    }
}

#[tokio::test]
async fn an_evacuating_copy_that_crashes_is_dropped() {
    for engine in Engine::ALL {
        let w = world(engine).await;
        w.cell("old", "z1", 8192).await;
        w.engine.repo.put_desired(&desired("p", 1, 256), w.engine.now()).await.expect("put");
        w.engine.desired_changed("p").await.expect("converge");
        let r = report(&w.performed()[0]);
        w.engine.claim(&r).await.expect("claim");
        w.engine.start(&r).await.expect("start");
        w.cells.states.lock().expect("lock").get_mut("http://old").expect("old").evacuating = true;
        assert!(w.engine.evacuate(&r).await.expect("evacuate").keep_container);
        w.engine.crash(&r).await.expect("crash of the copy");
        let a = w.actual("p").await;
        assert_eq!(a.len(), 1, "{engine:?}");
        assert_eq!((a[0].presence, a[0].state), (Presence::Ordinary, ActualState::Unclaimed));
        assert_eq!(a[0].crash_count, 0, "the ordinary instance did not crash");
    }
}
