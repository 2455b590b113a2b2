//! A cell that dies with instances running (no shutdown, no stop: its runtime simply goes away,
//! as when the process is killed) leaves them behind; the next cell on the same data directory
//! kills and removes them before it takes work, on both backends, and its bulk sync tells the
//! scheduler, which still has them there, to place them again. The other way round, an
//! instance the scheduler placed elsewhere while the cell was cut off is stopped.

use std::path::PathBuf;
use std::time::Duration;

use wire::lrp::{ActualState, LrpStart};

use crate::harness::{
    actual_lrp, host_cmdlines, lrp, open_to_others, processes_of_instance, served_droplet,
    start_cell, start_cell_with, Backend, Cell,
};

on_both_backends!(a_restarted_cell_leaves_no_orphan);

const SLOT: u8 = 12;

/// A cell on `data_dir` that runs `app` and then dies: its runtime is dropped without a
/// shutdown, so its instance task ends and its children live on. The cell is returned only to
/// be dropped at the end of the test (its cleanup would hide leftovers).
async fn crashed_cell(backend: Backend, data_dir: PathBuf, app: LrpStart) -> Cell {
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let cell = rt.block_on(async {
            let c = start_cell_with(backend, SLOT, |cfg| cfg.data_dir = data_dir).await;
            c.send_work(&app).await;
            c.report("start", &app, Duration::from_secs(30)).await;
            c
        });
        rt.shutdown_background();
        cell
    })
    .await
    .expect("the first cell")
}

async fn a_restarted_cell_leaves_no_orphan(backend: Backend) {
    let data = tempfile::tempdir().expect("tempdir");
    open_to_others(data.path());
    let data_dir = data.path().join("cell");
    let (url, sha, _droplet) = served_droplet().await;
    // A child of its own besides the server, marked so it is found on the host.
    let marker = format!("sleep {}", 7_000_000 + u32::from(uuid::Uuid::new_v4().as_bytes()[0]));
    let app = lrp(&url, &sha, &format!("{marker} & exec python3 -m http.server $PORT"), 30);

    let first = crashed_cell(backend, data_dir.clone(), app.clone()).await;
    let held =
        first.scheduler.find("start", &app.instance_guid).expect("started").ports[0].host_port;
    let dir = first.instance_dir(&app);
    let pid = first.app_pid(&app);
    assert!(dir.exists(), "the instance directory is left");
    assert!(processes_of_instance(&app.instance_guid).contains(&pid), "the app lives on");
    assert!(host_cmdlines().iter().any(|c| c.contains(&marker)), "its child lives on");

    let second = start_cell_with(backend, SLOT, |cfg| cfg.data_dir = data_dir.clone()).await;
    // The scheduler still has the instance running here; the new cell's bulk sync removes it
    // (so convergence places it again).
    let started = first.scheduler.find("start", &app.instance_guid).expect("started");
    second.scheduler.known.lock().expect("lock").push(actual_lrp(&started, ActualState::Running));
    let cleaned = testkit::eventually("the orphan gone", Duration::from_secs(10), || async {
        let gone = processes_of_instance(&app.instance_guid).is_empty()
            && !host_cmdlines().iter().any(|c| c.contains(&marker))
            && !dir.exists();
        gone.then_some(())
    })
    .await;
    assert!(
        cleaned.is_ok(),
        "left: processes {:?}, directory {}",
        processes_of_instance(&app.instance_guid),
        dir.exists()
    );
    if backend == Backend::Runc {
        let id = cell::backend::runc::container_id(&app.instance_guid);
        let runc = std::process::Command::new("runc").args(["list", "-q"]).output().expect("runc");
        assert!(!String::from_utf8_lossy(&runc.stdout).contains(&id), "container left");
        let mounts = std::fs::read_to_string("/proc/mounts").expect("mounts");
        assert!(!mounts.contains(&data_dir.display().to_string()), "mount left");
    }

    // The new cell runs the app again, on the port the orphan held.
    let again = LrpStart { instance_guid: uuid::Uuid::new_v4().to_string(), ..app.clone() };
    second.send_work(&again).await;
    let port = second.report("start", &again, Duration::from_secs(30)).await.ports[0].host_port;
    assert_eq!(port, held);
    let res = reqwest::get(format!("http://127.0.0.1:{port}/index.html")).await.expect("get");
    assert_eq!(res.status(), 200);
    second.report("remove", &app, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(second.scheduler.count("remove", &again.instance_guid), 0, "a held instance stays");
    second.shut_down().await;
    drop(first);
}

/// A cell cut off long enough to be declared lost comes back holding an instance the scheduler
/// has since placed on another cell: its bulk sync (every second here) stops the stale copy
/// once two syncs in a row missed it, and leaves a listed instance alone.
#[tokio::test]
async fn an_instance_the_scheduler_placed_elsewhere_is_stopped() {
    let c = start_cell(Backend::Process, 13).await;
    let (url, sha, _droplet) = served_droplet().await;
    let app = lrp(&url, &sha, "exec python3 -m http.server $PORT", 30);
    c.send_work(&app).await;
    c.report("start", &app, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(c.scheduler.count("remove", &app.instance_guid), 0, "a listed instance stays");
    assert!(!processes_of_instance(&app.instance_guid).is_empty(), "it runs");

    c.scheduler.forgotten.lock().expect("lock").push(app.instance_guid.clone());
    c.report("remove", &app, Duration::from_secs(10)).await;
    let gone = testkit::eventually("the stale copy stopped", Duration::from_secs(10), || async {
        processes_of_instance(&app.instance_guid).is_empty().then_some(())
    })
    .await;
    assert!(gone.is_ok(), "left: {:?}", processes_of_instance(&app.instance_guid));
    c.shut_down().await;
}
