//! Simulation benchmark: 1,000 in-process cells, 250,000 instances placed by one convergence
//! pass (auction included), then one full convergence pass over them all running. Prints both
//! times and the peak memory (VmHWM). Run with `cargo run --release -p scheduler --bin
//! scheduler-bench [cells] [processes] [instances-per-process]`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::future::BoxFuture;
use scheduler::cells::CellClient;
use scheduler::engine::Engine;
use wire::lrp::{
    ActualState, Capacity, CellPresence, CellState, DesiredLrp, InstanceKey, PortMapping,
    RoutesUpdate, StopRequest, Work, WorkResult,
};

/// Cells in memory: free resources, and what they were asked to run.
#[derive(Default)]
struct SimCells {
    states: Mutex<HashMap<String, CellState>>,
    started: Mutex<Vec<(String, InstanceKey)>>,
    stops: Mutex<usize>,
}

impl CellClient for SimCells {
    fn state<'a>(&'a self, rep_url: &'a str) -> BoxFuture<'a, Result<CellState, String>> {
        let s = self.states.lock().map_err(|e| e.to_string()).map(|m| m.get(rep_url).cloned());
        Box::pin(async move { s?.ok_or_else(|| "unknown cell".to_owned()) })
    }

    fn perform<'a>(
        &'a self,
        rep_url: &'a str,
        work: Work,
    ) -> BoxFuture<'a, Result<WorkResult, String>> {
        let cell_id = rep_url.trim_start_matches("sim://").to_owned();
        let res = (|| {
            let mut states = self.states.lock().map_err(|e| e.to_string())?;
            let s = states.get_mut(rep_url).ok_or("unknown cell")?;
            let mut started = self.started.lock().map_err(|e| e.to_string())?;
            for l in work.lrps {
                s.available.memory_mb -= l.desired.memory_mb;
                s.available.disk_mb -= l.desired.disk_mb;
                s.available.containers -= 1;
                let key = InstanceKey {
                    process_guid: l.desired.process_guid,
                    index: l.index,
                    instance_guid: l.instance_guid,
                };
                s.instances.push(key.clone());
                started.push((cell_id.clone(), key));
            }
            Ok(WorkResult::default())
        })();
        Box::pin(async move { res })
    }

    fn stop<'a>(
        &'a self,
        _rep_url: &'a str,
        _req: StopRequest,
    ) -> BoxFuture<'a, Result<(), String>> {
        if let Ok(mut n) = self.stops.lock() {
            *n += 1;
        }
        Box::pin(async { Ok(()) })
    }

    fn update_routes<'a>(
        &'a self,
        _rep_url: &'a str,
        _req: RoutesUpdate,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

fn arg(n: usize, default: u32) -> u32 {
    std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn peak_memory_kb() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .unwrap_or_else(|| "VmHWM: unknown".into())
}

fn desired(i: u32, instances: u32) -> anyhow::Result<DesiredLrp> {
    Ok(serde_json::from_value(serde_json::json!({
        "process_guid": format!("{:08}-0000-4000-8000-000000000000-1", i),
        "log_guid": format!("app-{i}"), "instances": instances, "memory_mb": 128, "disk_mb": 512,
        "stack": "bookworm", "start_command": "./run",
        "image": {"droplet_guid": "d", "droplet_url": "http://api/d", "droplet_sha256": "00"},
        "health_check": {"type": "port"},
        "routes": [{"uri": format!("app-{i}.apps.localhost")}]
    }))?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (n_cells, n_processes, per_process) = (arg(1, 1000), arg(2, 2500), arg(3, 100));
    let dir = std::env::temp_dir().join(format!("scheduler-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let config = scheduler::Config {
        database_url: format!("sqlite://{}", dir.join("scheduler.db").display()),
        ..Default::default()
    };
    let db = scheduler::open_db(&config).await?;
    let sim = Arc::new(SimCells::default());
    let bus: bus::DynBus = Arc::new(bus::InProcessBus::new());
    let clock = Arc::new(scheduler::clock::SystemClock);
    let engine = Engine::new(scheduler::repo::Repo::new(db), clock, sim.clone(), bus, 15);

    let setup = Instant::now();
    let total = Capacity { memory_mb: 64 * 1024, disk_mb: 256 * 1024, containers: 250 };
    for c in 0..n_cells {
        let id = format!("cell-{c:04}");
        let url = format!("sim://{id}");
        let presence = CellPresence {
            cell_id: id.clone(),
            rep_url: url.clone(),
            zone: format!("z{}", c % 3),
            capacity: total,
            stacks: vec!["bookworm".into()],
            placement_tags: vec![],
            optional_placement_tags: vec![],
            evacuating: false,
        };
        engine.cell_presence(&presence).await?;
        let state = CellState {
            cell_id: id,
            available: total,
            total,
            instances: vec![],
            evacuating: false,
            starting: 0,
        };
        sim.states.lock().map_err(|e| anyhow::anyhow!("{e}"))?.insert(url, state);
    }
    for p in 0..n_processes {
        engine.repo.put_desired(&desired(p, per_process)?, engine.now()).await?;
    }
    println!(
        "setup: {n_cells} cells, {n_processes} processes x {per_process} instances in {:.2?}",
        setup.elapsed()
    );

    let t = Instant::now();
    engine.converge().await?;
    let placed = t.elapsed();
    let started = std::mem::take(&mut *sim.started.lock().map_err(|e| anyhow::anyhow!("{e}"))?);
    println!("placement: {} instances placed in {placed:.2?}", started.len());

    // The cells claim and start everything (untimed setup for the convergence pass).
    let now = engine.now();
    let mut actual = engine.repo.list_actual(None, None).await?;
    let by_key: HashMap<(&str, u32), (&str, &str)> = started
        .iter()
        .map(|(cell, k)| {
            ((k.process_guid.as_str(), k.index), (cell.as_str(), k.instance_guid.as_str()))
        })
        .collect();
    for a in &mut actual {
        if let Some((cell, guid)) = by_key.get(&(a.process_guid.as_str(), a.index)) {
            a.state = ActualState::Running;
            a.cell_id = (*cell).to_owned();
            a.instance_guid = (*guid).to_owned();
            a.address = "10.0.0.1".into();
            a.ports = vec![PortMapping { container_port: 8080, host_port: 61000 }];
            a.since = now;
        }
    }
    engine.repo.save_actual_many(&actual).await?;
    let running = actual.iter().filter(|a| a.state == ActualState::Running).count();
    if let Some(a) = actual.iter().find(|a| !a.placement_error.is_empty()) {
        let failed = actual.iter().filter(|a| !a.placement_error.is_empty()).count();
        println!("placement failed for {failed} instances, e.g. {:?}", a.placement_error);
    }
    drop(actual);
    // Cells heartbeat every few seconds; without it they would all look lost by now.
    for (p, _) in engine.repo.list_cells().await? {
        engine.cell_presence(&p).await?;
    }

    let t = Instant::now();
    engine.converge().await?;
    let converged = t.elapsed();
    let extra = sim.started.lock().map_err(|e| anyhow::anyhow!("{e}"))?.len();
    let stops = *sim.stops.lock().map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "convergence: one full pass over {running} running instances in {converged:.2?} \
         (new starts {extra}, stops {stops})"
    );
    println!("peak memory: {}", peak_memory_kb());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
