//! The scheduler's decisions: desired state in, instances placed, reports applied,
//! differences converged. Every change is persisted before it is acted on, and published on
//! the event stream.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bus::{BusExt as _, DynBus};
use tokio::sync::{broadcast, Mutex};
use wire::events::{AppEvent, AppEventKind};
use wire::lrp::{
    ActualLrp, ActualState, CellPresence, DesiredLrp, InstanceKey, InstanceReport, LrpEvent,
    LrpStart, Presence, RoutesUpdate, StopRequest, Work,
};

use crate::auction::{self, Bidder, Job};
use crate::cells::DynCellClient;
use crate::clock::{DynClock, SECOND_NS};
use crate::lifecycle;
use crate::repo::{Repo, RepoError};

/// How long the auction waits for a cell's state (`cell_state_timeout`).
const CELL_STATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// UNCLAIMED longer than this is auctioned again.
const STALE_UNCLAIMED_NS: i64 = 30 * SECOND_NS;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("no such instance")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
}

#[derive(Clone)]
pub struct Engine {
    pub repo: Repo,
    clock: DynClock,
    pub(crate) cells: DynCellClient,
    bus: DynBus,
    events: broadcast::Sender<LrpEvent>,
    pub(crate) cell_ttl_ns: i64,
    /// An EVACUATING copy older than this is stopped even without a running replacement.
    pub(crate) evacuation_timeout_ns: i64,
    /// `starting_container_count_maximum`: 0 is no limit.
    max_starting: u32,
    /// One auction or convergence at a time.
    lock: Arc<Mutex<()>>,
}

fn unclaimed(d: &DesiredLrp, index: u32, now: i64) -> ActualLrp {
    ActualLrp {
        process_guid: d.process_guid.clone(),
        index,
        domain: d.domain.clone(),
        instance_guid: String::new(),
        cell_id: String::new(),
        state: ActualState::Unclaimed,
        presence: Presence::Ordinary,
        address: String::new(),
        instance_address: String::new(),
        ports: Vec::new(),
        crash_count: 0,
        crash_reason: String::new(),
        placement_error: String::new(),
        since: now,
        routable: true,
    }
}

impl Engine {
    pub fn new(
        repo: Repo,
        clock: DynClock,
        cells: DynCellClient,
        bus: DynBus,
        cell_ttl_secs: u64,
    ) -> Self {
        let (events, _) = broadcast::channel(4096);
        let ttl = i64::try_from(cell_ttl_secs).unwrap_or(15) * SECOND_NS;
        Self {
            repo,
            clock,
            cells,
            bus,
            events,
            cell_ttl_ns: ttl,
            evacuation_timeout_ns: 600 * SECOND_NS,
            max_starting: 0,
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// Cap in-flight container starts over the whole cluster (0: no limit).
    #[must_use]
    pub fn with_start_limit(mut self, max_starting: u32) -> Self {
        self.max_starting = max_starting;
        self
    }

    /// Change the evacuation timeout (default 600 s).
    #[must_use]
    pub fn with_evacuation_timeout(mut self, secs: u64) -> Self {
        self.evacuation_timeout_ns = i64::try_from(secs).unwrap_or(600) * SECOND_NS;
        self
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LrpEvent> {
        self.events.subscribe()
    }

    pub(crate) fn emit(&self, e: LrpEvent) {
        let _ = self.events.send(e);
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ns()
    }

    /// The desired LRP changed (created, scaled, re-routed): converge just this process.
    pub async fn desired_changed(&self, guid: &str) -> Result<(), EngineError> {
        self.emit(LrpEvent::DesiredLrpChanged { process_guid: guid.to_owned() });
        self.converge_process(guid).await
    }

    /// The desired LRP's routes changed: every cell holding one of its instances is told, in
    /// the background, so running instances register the new routes and unregister the old ones
    /// at once (an instance still starting registers what its cell was told last). The routes
    /// sent are read when they are sent, so two quick changes cannot arrive in the wrong order
    /// with the older last. A cell that cannot be told is logged; its instances keep the old
    /// routes until they are placed again.
    pub fn routes_changed(&self, guid: &str) {
        let engine = self.clone();
        let guid = guid.to_owned();
        tokio::spawn(async move {
            if let Err(e) = engine.send_routes(&guid).await {
                tracing::warn!(process_guid = %guid, error = %e, "route update failed");
            }
        });
    }

    async fn send_routes(&self, guid: &str) -> Result<(), EngineError> {
        let Some(desired) = self.repo.get_desired(guid).await? else { return Ok(()) };
        let cells = self.cell_urls().await?;
        let holding: HashSet<String> = self
            .repo
            .list_actual(Some(guid), None)
            .await?
            .into_iter()
            .filter(|a| matches!(a.state, ActualState::Claimed | ActualState::Running))
            .map(|a| a.cell_id)
            .collect();
        for cell_id in holding {
            let Some(url) = cells.get(&cell_id) else { continue };
            let req =
                RoutesUpdate { process_guid: guid.to_owned(), routes: desired.routes.clone() };
            if let Err(e) = self.cells.update_routes(url, req).await {
                tracing::warn!(%cell_id, process_guid = %guid, error = %e, "route update failed");
            }
        }
        Ok(())
    }

    /// The desired LRP is gone: stop and forget its instances.
    pub async fn desired_removed(&self, guid: &str) -> Result<(), EngineError> {
        self.emit(LrpEvent::DesiredLrpRemoved { process_guid: guid.to_owned() });
        let cells = self.cell_urls().await?;
        for a in self.repo.list_actual(Some(guid), None).await? {
            self.retire(&a, &cells).await?;
        }
        Ok(())
    }

    pub(crate) async fn cell_urls(&self) -> Result<HashMap<String, String>, EngineError> {
        Ok(self.repo.list_cells().await?.into_iter().map(|(p, _)| (p.cell_id, p.rep_url)).collect())
    }

    /// Stop an instance on its cell (if it has one) and delete its record.
    pub(crate) async fn retire(
        &self,
        a: &ActualLrp,
        cells: &HashMap<String, String>,
    ) -> Result<(), EngineError> {
        if matches!(a.state, ActualState::Claimed | ActualState::Running) {
            if let Some(url) = cells.get(&a.cell_id) {
                let req = StopRequest { instance: key(a) };
                if let Err(e) = self.cells.stop(url, req).await {
                    tracing::warn!(cell_id = %a.cell_id, process_guid = %a.process_guid, error = %e, "stop failed");
                }
            }
        }
        self.repo.delete_actual(&a.process_guid, a.index, a.presence).await?;
        self.emit(LrpEvent::ActualLrpRemoved { actual_lrp: a.clone() });
        Ok(())
    }

    /// Restart one instance: stop it; convergence starts a fresh one.
    pub async fn restart_instance(&self, guid: &str, index: u32) -> Result<(), EngineError> {
        let cells = self.cell_urls().await?;
        let all = self.repo.list_actual(Some(guid), None).await?;
        let a = all.iter().find(|a| a.index == index).ok_or(EngineError::NotFound)?;
        self.retire(a, &cells).await?;
        self.converge_process(guid).await
    }

    // ---- reports from cells -----------------------------------------------------------------

    async fn ordinary(&self, r: &InstanceReport) -> Result<ActualLrp, EngineError> {
        self.repo
            .list_actual(Some(&r.instance.process_guid), None)
            .await?
            .into_iter()
            .find(|a| a.index == r.instance.index && a.presence == Presence::Ordinary)
            .ok_or(EngineError::NotFound)
    }

    fn same(a: &ActualLrp, r: &InstanceReport) -> bool {
        a.instance_guid == r.instance.instance_guid && a.cell_id == r.cell_id
    }

    pub(crate) async fn transition(
        &self,
        before: ActualLrp,
        after: ActualLrp,
    ) -> Result<(), EngineError> {
        self.repo.save_actual(&after).await?;
        self.emit(LrpEvent::ActualLrpChanged { before: Box::new(before), after: Box::new(after) });
        Ok(())
    }

    pub async fn claim(&self, r: &InstanceReport) -> Result<(), EngineError> {
        let a = self.ordinary(r).await?;
        let same = Self::same(&a, r);
        if a.state == ActualState::Claimed && same {
            return Ok(());
        }
        if !lifecycle::allows(a.state, ActualState::Claimed, same) {
            return Err(EngineError::Conflict(format!(
                "cannot claim an instance that is {}",
                a.state.as_str()
            )));
        }
        let mut b = a.clone();
        b.state = ActualState::Claimed;
        b.cell_id = r.cell_id.clone();
        b.instance_guid = r.instance.instance_guid.clone();
        b.placement_error.clear();
        b.since = self.now();
        self.transition(a, b).await
    }

    pub async fn start(&self, r: &InstanceReport) -> Result<(), EngineError> {
        let a = self.ordinary(r).await?;
        let same = Self::same(&a, r);
        if !lifecycle::allows(a.state, ActualState::Running, same) {
            return Err(EngineError::Conflict(format!(
                "cannot start an instance that is {}",
                a.state.as_str()
            )));
        }
        let mut b = a.clone();
        b.state = ActualState::Running;
        b.cell_id = r.cell_id.clone();
        b.instance_guid = r.instance.instance_guid.clone();
        b.address = r.address.clone();
        b.instance_address = r.instance_address.clone();
        b.ports = r.ports.clone();
        b.placement_error.clear();
        b.since = self.now();
        self.transition(a, b).await?;
        // The replacement runs: a suspect or evacuating copy of this index can go.
        let cells = self.cell_urls().await?;
        for old in self.repo.list_actual(Some(&r.instance.process_guid), None).await? {
            if old.index != r.instance.index {
                continue;
            }
            match old.presence {
                Presence::Ordinary => {}
                Presence::Evacuating => self.retire(&old, &cells).await?,
                Presence::Suspect => self.retire_suspect(old, &cells).await?,
            }
        }
        Ok(())
    }

    /// Retire a suspect copy whose replacement runs without waiting on its cell, which is
    /// likely cut off (a stop would hold this report past the cell's own timeout, and a
    /// report cut off half-way must not leave the record behind). The record goes first; the
    /// routers are told to drop the copy's routes, since its cell cannot tell them; the stop
    /// is sent in the background. Should it not arrive, the cell's bulk sync stops the copy
    /// when the cell is back.
    async fn retire_suspect(
        &self,
        old: ActualLrp,
        cells: &HashMap<String, String>,
    ) -> Result<(), EngineError> {
        self.repo.delete_actual(&old.process_guid, old.index, Presence::Suspect).await?;
        self.emit(LrpEvent::ActualLrpRemoved { actual_lrp: old.clone() });
        self.unregister_routes(&old).await;
        if let Some(url) = cells.get(&old.cell_id).cloned() {
            let client = self.cells.clone();
            tokio::spawn(async move {
                if let Err(e) = client.stop(&url, StopRequest { instance: key(&old) }).await {
                    tracing::info!(cell_id = %old.cell_id, process_guid = %old.process_guid, error = %e, "stop of a replaced suspect copy failed; its cell's bulk sync stops it");
                }
            });
        }
        Ok(())
    }

    /// Publish `router.unregister` for every route of `a` (as its cell would on a stop).
    async fn unregister_routes(&self, a: &ActualLrp) {
        let d = match self.repo.get_desired(&a.process_guid).await {
            Ok(Some(d)) => d,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(process_guid = %a.process_guid, error = %e, "routes of a replaced copy not unregistered");
                return;
            }
        };
        for m in wire::routing::unregistrations(a, &d.log_guid, &d.routes) {
            let _ = self.bus.publish_json(wire::subjects::ROUTER_UNREGISTER, &m).await;
        }
    }

    pub async fn crash(&self, r: &InstanceReport) -> Result<(), EngineError> {
        let guid = &r.instance.process_guid;
        if let Some(e) = self.repo.get_actual(guid, r.instance.index, Presence::Evacuating).await? {
            if Self::same(&e, r) {
                // An evacuating copy that crashes is simply gone; its replacement is under way.
                self.repo.delete_actual(guid, e.index, Presence::Evacuating).await?;
                self.emit(LrpEvent::ActualLrpRemoved { actual_lrp: e });
                return Ok(());
            }
        }
        let a = self.ordinary(r).await?;
        if !lifecycle::allows(a.state, ActualState::Crashed, Self::same(&a, r)) {
            return Err(EngineError::Conflict(format!(
                "cannot crash an instance that is {}",
                a.state.as_str()
            )));
        }
        let now = self.now();
        let outcome = lifecycle::on_crash(a.state, a.since, a.crash_count, now);
        let reason = r.crash_reason.clone().unwrap_or_else(|| "crashed".into());
        let mut b = a.clone();
        b.state = outcome.state;
        b.crash_count = outcome.crash_count;
        b.crash_reason = reason.clone();
        b.since = now;
        b.address.clear();
        b.instance_address.clear();
        b.ports.clear();
        if outcome.state == ActualState::Unclaimed {
            b.cell_id.clear();
            b.instance_guid.clear();
        }
        self.transition(a.clone(), b.clone()).await?;
        self.emit(LrpEvent::ActualLrpCrashed { actual_lrp: b.clone() });
        if let Some(d) = self.repo.get_desired(&a.process_guid).await? {
            let event = AppEvent {
                app_guid: d.log_guid.clone(),
                process_guid: a.process_guid.clone(),
                index: a.index,
                instance_guid: r.instance.instance_guid.clone(),
                cell_id: r.cell_id.clone(),
                kind: AppEventKind::Crash {
                    reason,
                    exit_status: r.exit_status,
                    crash_count: b.crash_count,
                },
                timestamp: now,
            };
            let _ = self.bus.publish_json(wire::subjects::APP_EVENTS, &event).await;
            if b.state == ActualState::Unclaimed {
                self.auction(vec![Job { desired: Arc::new(d), index: a.index }]).await?;
            }
        }
        Ok(())
    }

    /// The cell let the instance go (stopped on purpose): forget it; convergence decides.
    pub async fn remove(&self, r: &InstanceReport) -> Result<(), EngineError> {
        for a in self.repo.list_actual(Some(&r.instance.process_guid), None).await? {
            if a.index == r.instance.index && Self::same(&a, r) {
                self.repo.delete_actual(&a.process_guid, a.index, a.presence).await?;
                self.emit(LrpEvent::ActualLrpRemoved { actual_lrp: a });
            }
        }
        Ok(())
    }

    pub async fn cell_presence(&self, p: &CellPresence) -> Result<(), EngineError> {
        self.repo.put_cell(p, self.now()).await?;
        Ok(())
    }

    // ---- auction ----------------------------------------------------------------------------

    /// Live cells (heartbeat within the TTL) with their current state.
    pub(crate) async fn bidders(&self) -> Result<Vec<Bidder>, EngineError> {
        let now = self.now();
        let live: Vec<CellPresence> = self
            .repo
            .list_cells()
            .await?
            .into_iter()
            .filter(|(p, seen)| now - seen <= self.cell_ttl_ns && !p.evacuating)
            .map(|(p, _)| p)
            .collect();
        let states = futures::future::join_all(live.iter().map(|p| async {
            match tokio::time::timeout(CELL_STATE_TIMEOUT, self.cells.state(&p.rep_url)).await {
                Ok(r) => r,
                Err(_) => Err("timed out".to_owned()),
            }
        }))
        .await;
        Ok(live
            .into_iter()
            .zip(states)
            .filter_map(|(p, s)| match s {
                Ok(state) => Some(Bidder::new(p, state)),
                Err(e) => {
                    tracing::warn!(cell_id = %p.cell_id, error = %e, "cell did not answer; left out of the auction");
                    None
                }
            })
            .collect())
    }

    /// Place `jobs` (all UNCLAIMED) and send each winner its work.
    pub async fn auction(&self, jobs: Vec<Job>) -> Result<(), EngineError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let mut bidders = self.bidders().await?;
        let results = auction::place_limited(&jobs, &mut bidders, self.max_starting);
        let mut work: HashMap<usize, Vec<LrpStart>> = HashMap::new();
        for (job, result) in jobs.iter().zip(results) {
            match result {
                Ok(cell) => work.entry(cell).or_default().push(LrpStart {
                    desired: (*job.desired).clone(),
                    index: job.index,
                    instance_guid: uuid::Uuid::new_v4().to_string(),
                }),
                Err(error) => self.placement_failed(job, &error).await?,
            }
        }
        let sends = work.into_iter().map(|(cell, lrps)| {
            let url = bidders[cell].presence.rep_url.clone();
            async move {
                let n = lrps.len();
                (self.cells.perform(&url, Work { lrps }).await, n)
            }
        });
        for (res, n) in futures::future::join_all(sends).await {
            match res {
                Ok(r) if r.failed.is_empty() => {}
                Ok(r) => tracing::warn!(
                    failed = r.failed.len(),
                    "cell refused work; convergence retries"
                ),
                // Not re-queued: the cell may have taken it; convergence repairs.
                Err(e) => {
                    tracing::warn!(error = %e, instances = n, "cell did not answer the work")
                }
            }
        }
        Ok(())
    }

    async fn placement_failed(&self, job: &Job, error: &str) -> Result<(), EngineError> {
        let found =
            self.repo.get_actual(&job.desired.process_guid, job.index, Presence::Ordinary).await?;
        if let Some(a) = found.filter(|a| a.state == ActualState::Unclaimed) {
            if a.placement_error != error {
                let mut b = a.clone();
                b.placement_error = error.to_owned();
                self.transition(a, b).await?;
                let event = AppEvent {
                    app_guid: job.desired.log_guid.clone(),
                    process_guid: job.desired.process_guid.clone(),
                    index: job.index,
                    instance_guid: String::new(),
                    cell_id: String::new(),
                    kind: AppEventKind::PlacementFailed { error: error.to_owned() },
                    timestamp: self.now(),
                };
                let _ = self.bus.publish_json(wire::subjects::APP_EVENTS, &event).await;
            }
        }
        Ok(())
    }

    // ---- convergence ------------------------------------------------------------------------

    async fn converge_process(&self, guid: &str) -> Result<(), EngineError> {
        let _one = self.lock.lock().await;
        let desired: Vec<DesiredLrp> = self.repo.get_desired(guid).await?.into_iter().collect();
        let actual = self.repo.list_actual(Some(guid), None).await?;
        let jobs = self.plan(&desired, actual, &HashSet::new(), &HashSet::new()).await?;
        self.auction(jobs).await
    }

    /// One full pass: missing created, extra stopped, stale UNCLAIMED re-sent, CRASHED
    /// restarted when due, instances on lost cells replaced.
    pub async fn converge(&self) -> Result<(), EngineError> {
        let _one = self.lock.lock().await;
        let now = self.now();
        let lost: HashSet<String> = self
            .repo
            .list_cells()
            .await?
            .into_iter()
            .filter(|(_, seen)| now - seen > self.cell_ttl_ns)
            .map(|(p, _)| p.cell_id)
            .collect();
        let desired = self.repo.list_desired(None, None).await?;
        // Only records that may need work are read: healthy RUNNING/CLAIMED instances of
        // complete processes on live cells are left in the database.
        let counts = self.repo.ordinary_counts().await?;
        let complete: HashSet<String> = desired
            .iter()
            .filter(|d| counts.get(&d.process_guid).copied().unwrap_or(0) >= u64::from(d.instances))
            .map(|d| d.process_guid.clone())
            .collect();
        let mut actual = self.repo.list_actual_needing_attention().await?;
        for cell in &lost {
            actual.extend(self.repo.list_actual(None, Some(cell)).await?);
        }
        for d in desired.iter().filter(|d| !complete.contains(&d.process_guid)) {
            actual.extend(self.repo.list_actual(Some(&d.process_guid), None).await?);
        }
        actual.sort_by(|a, b| {
            (&a.process_guid, a.index, presence_rank(a.presence)).cmp(&(
                &b.process_guid,
                b.index,
                presence_rank(b.presence),
            ))
        });
        actual.dedup_by(|a, b| {
            a.process_guid == b.process_guid && a.index == b.index && a.presence == b.presence
        });
        let jobs = self.plan(&desired, actual, &lost, &complete).await?;
        self.auction(jobs).await
    }

    /// Repair records and return what must be auctioned.
    async fn plan(
        &self,
        desired: &[DesiredLrp],
        actual: Vec<ActualLrp>,
        lost: &HashSet<String>,
        complete: &HashSet<String>,
    ) -> Result<Vec<Job>, EngineError> {
        let now = self.now();
        let cells = self.cell_urls().await?;
        let by_guid: HashMap<&str, Arc<DesiredLrp>> =
            desired.iter().map(|d| (d.process_guid.as_str(), Arc::new(d.clone()))).collect();
        let actual = self.cells_returned(actual, lost, &cells).await?;
        let mut have: HashSet<(String, u32)> = HashSet::new();
        let mut jobs = Vec::new();
        for a in actual {
            let Some(d) = by_guid.get(a.process_guid.as_str()) else {
                self.retire(&a, &cells).await?;
                continue;
            };
            if a.index >= d.instances {
                self.retire(&a, &cells).await?;
                continue;
            }
            if a.presence == Presence::Evacuating && now - a.since > self.evacuation_timeout_ns {
                self.retire(&a, &cells).await?;
                continue;
            }
            if a.presence != Presence::Ordinary {
                continue;
            }
            have.insert((a.process_guid.clone(), a.index));
            match a.state {
                ActualState::Claimed | ActualState::Running if lost.contains(&a.cell_id) => {
                    self.replace_lost(&a, now).await?;
                    jobs.push(Job { desired: d.clone(), index: a.index });
                }
                ActualState::Unclaimed
                    if !a.placement_error.is_empty() || now - a.since > STALE_UNCLAIMED_NS =>
                {
                    jobs.push(Job { desired: d.clone(), index: a.index });
                }
                ActualState::Crashed if lifecycle::restart_due(a.crash_count, a.since, now) => {
                    let mut b = a.clone();
                    b.state = ActualState::Unclaimed;
                    b.cell_id.clear();
                    b.instance_guid.clear();
                    b.since = now;
                    self.transition(a.clone(), b).await?;
                    jobs.push(Job { desired: d.clone(), index: a.index });
                }
                _ => {}
            }
        }
        let mut created = Vec::new();
        for d in desired.iter().filter(|d| !complete.contains(&d.process_guid)) {
            let shared = &by_guid[d.process_guid.as_str()];
            for index in 0..d.instances {
                if !have.contains(&(d.process_guid.clone(), index)) {
                    created.push(unclaimed(d, index, now));
                    jobs.push(Job { desired: shared.clone(), index });
                }
            }
        }
        self.repo.insert_actual_many(&created).await?;
        for a in created {
            self.emit(LrpEvent::ActualLrpCreated { actual_lrp: a });
        }
        Ok(jobs)
    }

    /// Keep the instance of a lost cell as SUSPECT (still routable) and make the ordinary
    /// record UNCLAIMED for a replacement.
    async fn replace_lost(&self, a: &ActualLrp, now: i64) -> Result<(), EngineError> {
        let mut suspect = a.clone();
        suspect.presence = Presence::Suspect;
        self.repo.delete_actual(&a.process_guid, a.index, Presence::Suspect).await?;
        self.repo.insert_actual(&suspect).await?;
        let mut b = unclaimed_from(a, now);
        b.crash_count = a.crash_count;
        self.transition(a.clone(), b).await
    }
}

fn presence_rank(p: Presence) -> u8 {
    match p {
        Presence::Ordinary => 0,
        Presence::Evacuating => 1,
        Presence::Suspect => 2,
    }
}

pub(crate) fn unclaimed_from(a: &ActualLrp, now: i64) -> ActualLrp {
    ActualLrp {
        state: ActualState::Unclaimed,
        instance_guid: String::new(),
        cell_id: String::new(),
        address: String::new(),
        instance_address: String::new(),
        ports: Vec::new(),
        since: now,
        ..a.clone()
    }
}

pub(crate) fn key(a: &ActualLrp) -> InstanceKey {
    InstanceKey {
        process_guid: a.process_guid.clone(),
        index: a.index,
        instance_guid: a.instance_guid.clone(),
    }
}
