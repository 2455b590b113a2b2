//! The instances of this cell: accepting work within capacity, stopping on request.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wire::lrp::{
    Capacity, CellState, InstanceKey, LrpStart, RoutesUpdate, StopRequest, Work, WorkResult,
};

use crate::instance::Instance;
use crate::shared::Shared;

struct Running {
    key: InstanceKey,
    memory_mb: u64,
    disk_mb: u64,
    stop: kit::Shutdown,
}

/// A task running here: what it takes, and how to stop it.
struct RunningTask {
    memory_mb: u64,
    disk_mb: u64,
    stop: kit::Shutdown,
}

#[derive(Clone)]
pub struct Executor {
    shared: Arc<Shared>,
    total: Capacity,
    running: Arc<Mutex<HashMap<String, Running>>>,
    tasks: Arc<Mutex<HashMap<String, RunningTask>>>,
    evacuating: Arc<std::sync::atomic::AtomicBool>,
    /// Instances held here that the last bulk sync found the scheduler no longer has here.
    unlisted: Arc<Mutex<HashSet<String>>>,
}

/// What a bulk sync changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Synced {
    /// Scheduler records of instances this cell does not hold, removed.
    pub removed: usize,
    /// Instances this cell held that the scheduler no longer has here, stopped.
    pub stopped: usize,
}

impl Executor {
    pub fn new(shared: Arc<Shared>, total: Capacity) -> Self {
        Self {
            shared,
            total,
            running: Arc::default(),
            tasks: Arc::default(),
            evacuating: Arc::default(),
            unlisted: Arc::default(),
        }
    }

    pub fn state(&self) -> CellState {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        let (mem, disk): (u64, u64) =
            running.values().fold((0, 0), |(m, d), r| (m + r.memory_mb, d + r.disk_mb));
        let (mem, disk) =
            tasks.values().fold((mem, disk), |(m, d), t| (m + t.memory_mb, d + t.disk_mb));
        let used = u32::try_from(running.len() + tasks.len()).unwrap_or(u32::MAX);
        CellState {
            cell_id: self.shared.cell_id.clone(),
            available: Capacity {
                memory_mb: self.total.memory_mb.saturating_sub(mem),
                disk_mb: self.total.disk_mb.saturating_sub(disk),
                containers: self.total.containers.saturating_sub(used),
            },
            total: self.total,
            instances: running.values().map(|r| r.key.clone()).collect(),
            evacuating: self.evacuating.load(std::sync::atomic::Ordering::Relaxed),
            starting: 0,
        }
    }

    /// Take what fits; start each asynchronously.
    pub fn perform(&self, work: Work) -> WorkResult {
        let mut failed = Vec::new();
        for lrp in work.lrps {
            if !self.reserve(&lrp) {
                failed.push(InstanceKey {
                    process_guid: lrp.desired.process_guid.clone(),
                    index: lrp.index,
                    instance_guid: lrp.instance_guid.clone(),
                });
                continue;
            }
            self.spawn(lrp);
        }
        WorkResult { failed }
    }

    fn reserve(&self, lrp: &LrpStart) -> bool {
        if self.evacuating.load(std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        let state = self.state();
        let d = &lrp.desired;
        if state.available.memory_mb < d.memory_mb
            || state.available.disk_mb < d.disk_mb
            || state.available.containers == 0
        {
            return false;
        }
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.contains_key(&lrp.instance_guid) {
            return false;
        }
        running.insert(
            lrp.instance_guid.clone(),
            Running {
                key: InstanceKey {
                    process_guid: d.process_guid.clone(),
                    index: lrp.index,
                    instance_guid: lrp.instance_guid.clone(),
                },
                memory_mb: d.memory_mb,
                disk_mb: d.disk_mb,
                stop: kit::Shutdown::new(),
            },
        );
        true
    }

    fn spawn(&self, lrp: LrpStart) {
        let guid = lrp.instance_guid.clone();
        let stop = {
            let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            running.get(&guid).map(|r| r.stop.clone()).unwrap_or_default()
        };
        let instance = Instance { shared: self.shared.clone(), start: lrp, stop };
        let running = self.running.clone();
        let emitter = self.shared.emitter.clone();
        kit::spawn_named("instance", async move {
            instance.run().await;
            let mut running = running.lock().unwrap_or_else(|e| e.into_inner());
            running.remove(&guid);
            emitter.forget(&guid);
        });
    }

    /// Run a task once, if it fits and is not here already; whether it was taken.
    pub fn run_task(&self, def: wire::task::TaskDefinition) -> bool {
        if self.evacuating.load(std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        let state = self.state();
        if state.available.memory_mb < def.memory_mb
            || state.available.disk_mb < def.disk_mb
            || state.available.containers == 0
        {
            return false;
        }
        let stop = kit::Shutdown::new();
        {
            let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
            if tasks.contains_key(&def.task_guid) {
                return true;
            }
            let t =
                RunningTask { memory_mb: def.memory_mb, disk_mb: def.disk_mb, stop: stop.clone() };
            tasks.insert(def.task_guid.clone(), t);
        }
        let guid = def.task_guid.clone();
        let run = crate::task::TaskRun { shared: self.shared.clone(), def, stop };
        let tasks = self.tasks.clone();
        kit::spawn_named("task", async move {
            run.run().await;
            tasks.lock().unwrap_or_else(|e| e.into_inner()).remove(&guid);
        });
        true
    }

    /// Stop a running task; false if it is not here.
    pub fn cancel_task(&self, guid: &str) -> bool {
        let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        match tasks.get(guid) {
            Some(t) => {
                t.stop.cancel();
                true
            }
            None => false,
        }
    }

    /// Stop one instance (SIGTERM, grace, SIGKILL happen in its task).
    pub fn stop(&self, req: &StopRequest) -> bool {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match running.get(&req.instance.instance_guid) {
            Some(r) => {
                r.stop.cancel();
                true
            }
            None => false,
        }
    }

    /// The routes of a desired LRP changed: its instances here announce the new ones (at once
    /// if they are healthy, else when they turn healthy). False if this cell holds none.
    pub async fn update_routes(&self, req: RoutesUpdate) -> bool {
        let ours: Vec<String> = {
            let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            running
                .values()
                .filter(|r| r.key.process_guid == req.process_guid)
                .map(|r| r.key.instance_guid.clone())
                .collect()
        };
        for guid in &ours {
            self.shared.emitter.set_routes(guid, req.routes.clone()).await;
        }
        // One that ended meanwhile has been forgotten before or is forgotten now.
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        for guid in ours.iter().filter(|g| !running.contains_key(*g)) {
            self.shared.emitter.forget(guid);
        }
        !ours.is_empty()
    }

    /// The instance guids this cell holds right now (starting, running or stopping).
    pub fn held(&self) -> std::collections::HashSet<String> {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }

    /// Bulk sync, as Diego's rep does it: the instances the scheduler believes claimed or
    /// running on this cell that the cell does not hold (a restarted cell swept them, or their
    /// end was never reported) are removed, so convergence places them again. An instance is
    /// only removed when it was absent both before and after the scheduler was asked (one
    /// accepted meanwhile is claimed only after the cell holds it); what ended meanwhile was
    /// reported already and is no longer claimed or running there.
    ///
    /// And the other way round: an instance this cell runs that the scheduler no longer has
    /// here in any state (it was placed elsewhere while this cell was cut off, and the stop
    /// never arrived) is stopped — once two syncs in a row found it missing, so an instance
    /// accepted but not yet claimed is never taken for one.
    pub async fn sync(&self, reporter: &dyn crate::report::Reporter) -> Result<Synced, String> {
        let before = self.held();
        let actual = reporter.actual(&self.shared.cell_id).await?;
        let after = self.held();
        let mut synced = Synced::default();
        let listed: HashSet<&str> = actual
            .iter()
            .filter(|a| a.cell_id == self.shared.cell_id)
            .map(|a| a.instance_guid.as_str())
            .collect();
        let unlisted: HashSet<String> =
            before.intersection(&after).filter(|g| !listed.contains(g.as_str())).cloned().collect();
        let stale: Vec<String> = {
            let mut previous = self.unlisted.lock().unwrap_or_else(|e| e.into_inner());
            let stale = unlisted.intersection(&previous).cloned().collect();
            *previous = unlisted;
            stale
        };
        for guid in &stale {
            let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(r) = running.get(guid) {
                tracing::warn!(process_guid = %r.key.process_guid, index = r.key.index, instance = %guid, "the scheduler no longer has this instance here; stopping it");
                r.stop.cancel();
                synced.stopped += 1;
            }
        }
        for a in actual {
            let claimed = matches!(
                a.state,
                wire::lrp::ActualState::Claimed | wire::lrp::ActualState::Running
            );
            if a.cell_id != self.shared.cell_id
                || !claimed
                || a.presence != wire::lrp::Presence::Ordinary
                || a.instance_guid.is_empty()
                || before.contains(&a.instance_guid)
                || after.contains(&a.instance_guid)
            {
                continue;
            }
            let key = InstanceKey {
                process_guid: a.process_guid.clone(),
                index: a.index,
                instance_guid: a.instance_guid.clone(),
            };
            tracing::warn!(process_guid = %key.process_guid, index = key.index, instance = %key.instance_guid, "the scheduler has an instance here this cell does not hold; removing it so it is placed again");
            let report = wire::lrp::InstanceReport::new(key, self.shared.cell_id.clone());
            reporter.report("remove", &report).await?;
            synced.removed += 1;
        }
        Ok(synced)
    }

    /// From now on this cell takes no new work (and says so in its presence).
    pub fn mark_evacuating(&self) {
        self.evacuating.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Drain: take no new work and hand every instance over to the scheduler, stopping each
    /// once the scheduler says its replacement runs (or it cannot be reached), until none is
    /// left or `timeout` passed. What is left is for [`stop_all`].
    pub async fn evacuate(
        &self,
        reporter: &dyn crate::report::Reporter,
        timeout: Duration,
        poll: Duration,
    ) {
        self.evacuating.store(true, std::sync::atomic::Ordering::Relaxed);
        let until = Instant::now() + timeout;
        loop {
            let keys: Vec<InstanceKey> = {
                let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
                running.values().map(|r| r.key.clone()).collect()
            };
            if keys.is_empty() || Instant::now() >= until {
                return;
            }
            for key in keys {
                let report =
                    wire::lrp::InstanceReport::new(key.clone(), self.shared.cell_id.clone());
                let keep = match reporter.evacuate(&report).await {
                    Ok(keep) => keep,
                    Err(e) => {
                        tracing::warn!(instance = %key.instance_guid, error = %e, "scheduler unreachable while evacuating; stopping the instance");
                        false
                    }
                };
                if !keep {
                    let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(r) = running.get(&key.instance_guid) {
                        r.stop.cancel();
                    }
                }
            }
            tokio::time::sleep(poll.min(until.saturating_duration_since(Instant::now()))).await;
        }
    }

    /// Stop everything and wait until every instance released its resources.
    pub async fn stop_all(&self, deadline: Duration) {
        self.evacuating.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in self.running.lock().unwrap_or_else(|e| e.into_inner()).values() {
            r.stop.cancel();
        }
        let until = Instant::now() + deadline;
        while !self.running.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
            && Instant::now() < until
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
