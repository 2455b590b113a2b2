//! Cells in memory, and a scheduler engine over them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bus::{DynBus, InProcessBus};
use futures::future::BoxFuture;
use scheduler::cells::CellClient;
use scheduler::clock::ManualClock;
use scheduler::engine::Engine;
use wire::lrp::*;

#[derive(Default)]
pub struct FakeCells {
    pub states: Mutex<HashMap<String, CellState>>,
    pub performed: Mutex<Vec<(String, LrpStart)>>,
    pub stopped: Mutex<Vec<(String, InstanceKey)>>,
    pub rerouted: Mutex<Vec<(String, RoutesUpdate)>>,
    /// Cells whose stops never answer (cut off).
    pub silent: Mutex<Vec<String>>,
}

impl CellClient for FakeCells {
    fn state<'a>(&'a self, rep_url: &'a str) -> BoxFuture<'a, Result<CellState, String>> {
        let s = self.states.lock().expect("lock").get(rep_url).cloned();
        Box::pin(async move { s.ok_or_else(|| "unreachable".to_owned()) })
    }

    fn perform<'a>(
        &'a self,
        rep_url: &'a str,
        work: Work,
    ) -> BoxFuture<'a, Result<WorkResult, String>> {
        let mut states = self.states.lock().expect("lock");
        if let Some(s) = states.get_mut(rep_url) {
            for l in &work.lrps {
                s.available.memory_mb -= l.desired.memory_mb;
                s.available.disk_mb -= l.desired.disk_mb;
                s.available.containers -= 1;
                s.instances.push(InstanceKey {
                    process_guid: l.desired.process_guid.clone(),
                    index: l.index,
                    instance_guid: l.instance_guid.clone(),
                });
            }
        }
        let mut p = self.performed.lock().expect("lock");
        p.extend(work.lrps.into_iter().map(|l| (rep_url.to_owned(), l)));
        Box::pin(async { Ok(WorkResult::default()) })
    }

    fn stop<'a>(&'a self, rep_url: &'a str, req: StopRequest) -> BoxFuture<'a, Result<(), String>> {
        if self.silent.lock().expect("lock").iter().any(|u| u == rep_url) {
            return Box::pin(futures::future::pending());
        }
        self.stopped.lock().expect("lock").push((rep_url.to_owned(), req.instance));
        Box::pin(async { Ok(()) })
    }

    fn update_routes<'a>(
        &'a self,
        rep_url: &'a str,
        req: RoutesUpdate,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.rerouted.lock().expect("lock").push((rep_url.to_owned(), req));
        Box::pin(async { Ok(()) })
    }
}

pub const START: i64 = 1_700_000_000_000_000_000;

pub struct World {
    pub engine: Engine,
    pub cells: Arc<FakeCells>,
    pub clock: Arc<ManualClock>,
    pub bus: DynBus,
    pub _db: testkit::TestDb,
}

pub async fn world(engine: testkit::Engine) -> World {
    let db = testkit::TestDb::new(engine).await.expect("db");
    let pool = db.connect().await.expect("connect");
    let (sqlite, postgres) = (
        &[(1, "init", include_str!("../../../../migrations/scheduler/sqlite/0001_init.sql"))][..],
        &[(1, "init", include_str!("../../../../migrations/scheduler/postgres/0001_init.sql"))][..],
    );
    pool.migrate(sqlite, postgres).await.expect("migrate");
    let cells = Arc::new(FakeCells::default());
    let clock = ManualClock::new(START);
    let bus: DynBus = Arc::new(InProcessBus::new());
    let engine = Engine::new(
        scheduler::repo::Repo::new(pool),
        clock.clone(),
        cells.clone(),
        bus.clone(),
        15,
    );
    World { engine, cells, clock, bus, _db: db }
}

impl World {
    /// Register a cell with `memory_mb` free in `zone`.
    pub async fn cell(&self, id: &str, zone: &str, memory_mb: u64) {
        let url = format!("http://{id}");
        let cap = Capacity { memory_mb, disk_mb: 100_000, containers: 250 };
        let presence = CellPresence {
            cell_id: id.into(),
            rep_url: url.clone(),
            zone: zone.into(),
            capacity: cap,
            stacks: vec!["bookworm".into()],
            placement_tags: vec![],
            optional_placement_tags: vec![],
            evacuating: false,
        };
        self.engine.cell_presence(&presence).await.expect("presence");
        let state = CellState {
            cell_id: id.into(),
            available: cap,
            total: cap,
            instances: vec![],
            evacuating: false,
            starting: 0,
        };
        self.cells.states.lock().expect("lock").insert(url, state);
    }

    /// A heartbeat of a registered cell, its state left as it is.
    pub async fn heartbeat(&self, id: &str) {
        let cells = self.engine.repo.list_cells().await.expect("cells");
        let (p, _) = cells.into_iter().find(|(p, _)| p.cell_id == id).expect("known cell");
        self.engine.cell_presence(&p).await.expect("presence");
    }

    pub fn performed(&self) -> Vec<(String, LrpStart)> {
        self.cells.performed.lock().expect("lock").clone()
    }

    pub async fn actual(&self, guid: &str) -> Vec<ActualLrp> {
        self.engine.repo.list_actual(Some(guid), None).await.expect("list")
    }
}

pub fn desired(guid: &str, instances: u32, memory_mb: u64) -> DesiredLrp {
    serde_json::from_value(serde_json::json!({
        "process_guid": guid, "log_guid": "app-1", "instances": instances, "memory_mb": memory_mb,
        "disk_mb": 1024, "stack": "bookworm", "start_command": "./run",
        "image": {"droplet_guid": "d", "droplet_url": "http://api/d", "droplet_sha256": "00"},
        "health_check": {"type": "port"}
    }))
    .expect("desired")
}

/// The report a cell sends for the instance it was given.
pub fn report(start: &(String, LrpStart)) -> InstanceReport {
    InstanceReport {
        instance: InstanceKey {
            process_guid: start.1.desired.process_guid.clone(),
            index: start.1.index,
            instance_guid: start.1.instance_guid.clone(),
        },
        cell_id: start.0.trim_start_matches("http://").to_owned(),
        address: "10.0.0.1".into(),
        instance_address: "10.255.0.2".into(),
        ports: vec![PortMapping { container_port: 8080, host_port: 61001 }],
        crash_reason: None,
        exit_status: None,
    }
}
