//! Deployments (docs/api.md "Deployments and revisions"): a started app's web instances are
//! replaced by a new droplet or revision without a gap. The web process gets a new version
//! (its new instances, at `max_in_flight` first); the versions it replaces stay at the
//! scheduler as `retiring` with their instances. An updater pass ([`advance`], every api
//! replica, each change written only if the row is unchanged since read) scales the new
//! version up as its instances turn healthy and the old ones down so that healthy new plus
//! old always cover the target, then removes the old versions: FINALIZED / DEPLOYED.
//! A canary deployment pauses after each step until continued. A new instance that crashes
//! holds the rollout where it is (old instances keep serving) with the crash as the status
//! error. Cancel puts the previous droplet and version back the same way (CANCELING, then
//! CANCELED); a new deployment, a restart or a stop ends an active one.

use std::time::Duration;

use serde_json::json;
use wire::lrp::ActualState;
use wire::v3::deployment::DeploymentOptions;
use wire::v3::{AppState as Desired, DeploymentReason as Reason, DropletState};

use crate::domain::events::{self, Actor};
use crate::domain::{desired, revisions};
use crate::error::{ApiError, ApiResult};
use crate::store::apps::App;
use crate::store::deployments::{Deployment, Options, Retiring};
use crate::store::droplets::Droplet;
use crate::store::processes::Process;
use crate::store::revisions::Revision;
use crate::store::{self, new_guid, now_ms};
use crate::AppState;

/// A deployment as asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub droplet: Option<String>,
    pub revision: Option<String>,
    pub strategy: Option<String>,
    pub options: DeploymentOptions,
}

fn unprocessable(msg: impl Into<String>) -> ApiError {
    ApiError::Unprocessable(msg.into())
}

/// Check the options; what is stored.
fn options(
    strategy: &str,
    o: &DeploymentOptions,
    max_memory: i64,
    max_disk: i64,
) -> ApiResult<Options> {
    let max_in_flight = o.max_in_flight.unwrap_or(1);
    if max_in_flight < 1 {
        return Err(unprocessable("Max in flight must be an integer greater than 0"));
    }
    if o.web_instances.is_some_and(|i| !(1..=2000).contains(&i)) {
        return Err(unprocessable("Web instances must be between 1 and 2000"));
    }
    if o.memory_in_mb.is_some_and(|m| !(1..=max_memory).contains(&m)) {
        return Err(unprocessable(format!("Memory in mb must be between 1 and {max_memory}")));
    }
    if o.disk_in_mb.is_some_and(|d| !(1..=max_disk).contains(&d)) {
        return Err(unprocessable(format!("Disk in mb must be between 1 and {max_disk}")));
    }
    if o.log_rate_limit_in_bytes_per_second.is_some_and(|l| l < -1) {
        return Err(unprocessable("Log rate limit must be -1 (unlimited) or more"));
    }
    let steps: Vec<i64> = o
        .canary
        .as_ref()
        .map(|c| c.steps.iter().map(|s| s.instance_weight).collect())
        .unwrap_or_default();
    if !steps.is_empty() && strategy != "canary" {
        return Err(unprocessable("Canary steps are only valid for the 'canary' strategy"));
    }
    if steps.iter().any(|w| !(1..=100).contains(w)) {
        return Err(unprocessable(
            "Canary step instance_weight must be an integer between 1 and 100",
        ));
    }
    if steps.windows(2).any(|w| w[0] >= w[1]) {
        return Err(unprocessable("Canary steps must be sorted in ascending order"));
    }
    Ok(Options {
        max_in_flight,
        web_instances: o.web_instances,
        memory_in_mb: o.memory_in_mb,
        disk_in_mb: o.disk_in_mb,
        log_rate: o.log_rate_limit_in_bytes_per_second,
        canary_steps: steps,
    })
}

/// The canary's pause points: its steps' weights, or one instance without steps.
fn pauses(d: &Deployment) -> usize {
    if d.strategy != "canary" {
        0
    } else {
        d.options.canary_steps.len().max(1)
    }
}

/// New instances at canary step `i` of `target`.
fn step_instances(o: &Options, target: i64, i: usize) -> i64 {
    match o.canary_steps.get(i) {
        Some(w) => ((target * w + 99) / 100).clamp(1, target.max(1)),
        None => 1,
    }
}

/// Take instances from the oldest retiring versions until `keep` are left in all.
fn retire(list: &mut [Retiring], keep: i64) {
    let mut excess = list.iter().map(|r| r.instances).sum::<i64>() - keep;
    for r in list.iter_mut() {
        let cut = excess.min(r.instances).max(0);
        r.instances -= cut;
        excess -= cut;
    }
}

/// Times an action on a deployment (a new one superseding it, cancel, continue) reads it and
/// writes it again when the rollout loop (or another client) wrote it in between.
const WRITE_ATTEMPTS: u32 = 5;

/// An action on an active deployment that another writer may race.
#[derive(Clone, Copy)]
enum Action<'a> {
    Resume,
    Cancel(&'a Actor),
}

/// Take `action` on `d`, and on the deployment as stored now each time it finds `d` was written
/// meanwhile, up to [`WRITE_ATTEMPTS`] times.
async fn on_current(s: &AppState, d: &Deployment, action: Action<'_>) -> ApiResult<Deployment> {
    let mut d = d.clone();
    for attempt in 1..=WRITE_ATTEMPTS {
        let done = match action {
            Action::Resume => try_resume(s, &d).await?,
            Action::Cancel(actor) => try_cancel(s, &d, actor).await?,
        };
        if let Some(done) = done {
            return Ok(done);
        }
        if attempt < WRITE_ATTEMPTS {
            d = store::deployments::find(&s.db.pool, &d.guid)
                .await?
                .ok_or(ApiError::NotFound("Deployment"))?;
        }
    }
    Err(changed_meanwhile())
}

fn changed_meanwhile() -> ApiError {
    ApiError::Unprocessable("The deployment changed meanwhile; try again.".into())
}

/// Create a deployment of `app` (the caller checked access). A stopped app is started and
/// its deployment is DEPLOYED at once.
pub async fn create(
    s: &AppState,
    app: &mut App,
    req: Request,
    actor: &Actor,
) -> ApiResult<Deployment> {
    let strategy = req.strategy.clone().unwrap_or_else(|| "rolling".into());
    if !["rolling", "canary"].contains(&strategy.as_str()) {
        return Err(unprocessable(format!(
            "Strategy '{strategy}' is not a supported deployment strategy; use 'rolling' or 'canary'"
        )));
    }
    let opts = options(&strategy, &req.options, s.config.max_memory_mb, s.config.max_disk_mb)?;
    if req.droplet.is_some() && req.revision.is_some() {
        return Err(unprocessable("Cannot set both droplet and revision"));
    }
    let revision = match &req.revision {
        Some(g) => Some(
            store::revisions::find(&s.db.pool, g)
                .await?
                .filter(|r| r.app_guid == app.guid)
                .ok_or_else(|| unprocessable("The revision does not exist or is not this app's"))?,
        ),
        None => None,
    };
    let droplet_guid = match (&req.droplet, &revision) {
        (Some(d), _) => d.clone(),
        (None, Some(r)) => r.droplet_guid.clone(),
        (None, None) => app.droplet_guid.clone(),
    };
    if droplet_guid.is_empty() {
        return Err(unprocessable(
            "Invalid droplet. Please specify a droplet in the request or set it on the app",
        ));
    }
    let droplet = store::droplets::find(&s.db.pool, &droplet_guid)
        .await?
        .filter(|d| d.app_guid == app.guid && d.state == DropletState::Staged)
        .ok_or_else(|| {
            unprocessable(if revision.is_some() {
                "Unable to deploy this revision, the droplet for this revision no longer exists."
            } else {
                "Unable to assign current droplet. Ensure the droplet exists and belongs to this app."
            })
        })?;
    let space = store::spaces::find(&s.db.pool, &app.space_guid)
        .await?
        .ok_or(ApiError::NotFound("Space"))?;
    // What runs once the rollout is done must fit the quotas; the surge while both versions
    // run is allowed, as in CC.
    if let Some(web) = store::processes::find_by_type(&s.db.pool, &app.guid, "web").await? {
        crate::domain::quotas::check_memory(
            s,
            &space.org_guid,
            &space.guid,
            &web.guid,
            opts.web_instances.unwrap_or(web.instances),
            opts.memory_in_mb.unwrap_or(web.memory_mb),
        )
        .await?;
    }

    // Written again from the start if the deployment it supersedes changes under it.
    let original = app.clone();
    let mut inserted = None;
    for _ in 0..WRITE_ATTEMPTS {
        *app = original.clone();
        inserted = try_insert(s, app, &droplet, revision.as_ref(), &opts, &strategy).await?;
        if inserted.is_some() {
            break;
        }
    }
    let d = inserted.ok_or_else(changed_meanwhile)?;
    let t = space.target(&app.guid, "app", &app.name);
    events::record(
        s,
        "audit.app.deployment.create",
        actor,
        &t,
        json!({
            "deployment_guid": d.guid, "droplet_guid": d.droplet_guid, "type": d.strategy,
            "revision_guid": d.revision_guid,
        }),
    )
    .await;
    desired::sync_app(s, &app.guid).await?;
    Ok(d)
}

/// Write the deployment [`create`] makes, starting `app` on `droplet` (and `revision`), in
/// one transaction; `None` when the deployment it supersedes was written meanwhile.
async fn try_insert(
    s: &AppState,
    app: &mut App,
    droplet: &Droplet,
    revision: Option<&Revision>,
    opts: &Options,
    strategy: &str,
) -> ApiResult<Option<Deployment>> {
    let now = now_ms();
    let mut tx = store::begin(&s.db).await?;
    let mut procs = store::processes::of_app(&mut *tx, &app.guid).await?;
    let was_started = app.state == Desired::Started;
    let previous_droplet = std::mem::replace(&mut app.droplet_guid, droplet.guid.clone());
    if let Some(r) = revision {
        app.env = r.env.clone();
    }
    // Process types the droplet brings and the app lacks.
    for kind in droplet.process_types.keys() {
        if !procs.iter().any(|p| &p.kind == kind) {
            let p = crate::domain::apps::new_process(s, app, kind, None);
            store::processes::insert(&mut *tx, &p).await?;
            procs.push(p);
        }
    }
    let web_at = procs
        .iter()
        .position(|p| p.kind == "web")
        .ok_or_else(|| unprocessable("The app has no web process to deploy"))?;
    let previous = store::deployments::active_of_app(&mut *tx, &app.guid).await?;
    let old_web = procs[web_at].clone();
    // What the replaced version runs now: the superseded deployment's new instances, else all.
    let old_instances = previous.as_ref().map_or(old_web.instances, |p| p.new_instances);
    for p in &mut procs {
        if let Some(r) = revision {
            if let Some(cmd) = r.processes.get(&p.kind) {
                p.command = cmd.clone();
            }
        }
        if p.kind == "web" {
            p.instances = opts.web_instances.unwrap_or(p.instances);
            p.memory_mb = opts.memory_in_mb.unwrap_or(p.memory_mb);
            p.disk_mb = opts.disk_in_mb.unwrap_or(p.disk_mb);
            p.log_rate = opts.log_rate.unwrap_or(p.log_rate);
        }
        p.version = new_guid();
        p.updated_at = now;
        store::processes::update(&mut *tx, p).await?;
    }
    let web = procs[web_at].clone();
    let mut retiring = Vec::new();
    if let Some(p) = &previous {
        let mut superseded = p.clone();
        superseded.reason = Reason::Superseded;
        superseded.retiring.clear();
        superseded.last_status_change = now;
        superseded.updated_at = now;
        if !store::deployments::update_if(&mut *tx, &superseded, p.updated_at).await? {
            // The rollout loop moved it on meanwhile: the caller reads it again.
            return Ok(None);
        }
        retiring.extend(p.retiring.iter().filter(|r| r.instances > 0).cloned());
    }
    if was_started {
        retiring.push(Retiring { lrp_guid: old_web.lrp_guid(), instances: old_instances });
    }
    let previous_revision =
        store::revisions::latest(&mut *tx, &app.guid).await?.map(|r| r.guid).unwrap_or_default();
    let why = revision.map(|r| format!("Rolled back to revision {}.", r.version));
    app.state = Desired::Started;
    app.updated_at = now;
    store::apps::update(&mut *tx, app).await?;
    let rev = revisions::record(&mut tx, app, &procs, why).await?;
    let target = web.instances;
    let first = if strategy == "canary" {
        step_instances(opts, target, 0)
    } else {
        opts.max_in_flight.min(target)
    };
    let mut d = Deployment {
        guid: new_guid(),
        app_guid: app.guid.clone(),
        reason: Reason::Deploying,
        strategy: strategy.to_owned(),
        droplet_guid: droplet.guid.clone(),
        previous_droplet_guid: previous_droplet,
        revision_guid: rev.guid.clone(),
        previous_revision_guid: previous_revision,
        process_guid: web.guid.clone(),
        previous_version: old_web.version.clone(),
        options: opts.clone(),
        target,
        new_instances: first,
        canary_step: 0,
        retiring,
        last_healthy: 0,
        last_status_change: now,
        error: String::new(),
        created_at: now,
        updated_at: now,
    };
    if !was_started || target == 0 {
        // Nothing runs to be replaced: the app just starts.
        d.reason = Reason::Deployed;
        d.new_instances = target;
        d.retiring.clear();
    }
    store::deployments::insert(&mut *tx, &d).await?;
    tx.commit().await?;
    Ok(Some(d))
}

/// Write `next` over `d` if nobody changed it meanwhile, then bring the scheduler in line;
/// whether it was written.
async fn save(s: &AppState, d: &Deployment, mut next: Deployment) -> ApiResult<Option<Deployment>> {
    let now = now_ms();
    if next.reason != d.reason {
        next.last_status_change = now;
    }
    next.updated_at = now.max(d.updated_at + 1);
    if !store::deployments::update_if(&s.db.pool, &next, d.updated_at).await? {
        return Ok(None);
    }
    desired::sync_app(s, &d.app_guid).await?;
    Ok(Some(next))
}

/// One updater step of an ACTIVE deployment: scale the new version up and the old ones down
/// as new instances turn healthy, pause a canary, finalize.
pub async fn advance(s: &AppState, d: &Deployment) -> ApiResult<()> {
    if !matches!(d.reason, Reason::Deploying | Reason::Canceling) {
        return Ok(());
    }
    let mut next = d.clone();
    let app = store::apps::find(&s.db.pool, &d.app_guid).await?;
    let web = store::processes::find(&s.db.pool, &d.process_guid).await?;
    let (Some(app), Some(web)) = (app, web) else {
        next.reason = Reason::Canceled;
        next.retiring.clear();
        save(s, d, next).await?;
        return Ok(());
    };
    if app.state != Desired::Started {
        next.reason = Reason::Canceled;
        next.retiring.clear();
        save(s, d, next).await?;
        return Ok(());
    }
    let actual = desired::actual(s, &web.lrp_guid()).await?;
    let healthy = actual
        .iter()
        .filter(|a| a.state == ActualState::Running && a.routable)
        .filter(|a| i64::from(a.index) < d.new_instances)
        .count() as i64;
    next.error = actual
        .iter()
        .filter(|a| a.state == ActualState::Crashed || a.crash_count > 0)
        .map(|a| {
            let why = if a.crash_reason.is_empty() { "crashed" } else { a.crash_reason.as_str() };
            format!("New instance {} is failing ({} crashes): {why}", a.index, a.crash_count)
        })
        .next()
        .unwrap_or_default();
    if healthy > 0 {
        next.last_healthy = now_ms();
    }
    if healthy >= d.new_instances {
        retire(&mut next.retiring, (d.target - healthy).max(0));
        let paused_at = pauses(d);
        if d.new_instances >= d.target {
            if next.retiring.iter().all(|r| r.instances == 0) {
                next.reason =
                    if d.reason == Reason::Canceling { Reason::Canceled } else { Reason::Deployed };
                next.retiring.clear();
            }
        } else if d.reason == Reason::Deploying && (d.canary_step as usize) < paused_at {
            next.reason = Reason::Paused;
        } else {
            next.new_instances = (d.new_instances + d.options.max_in_flight).min(d.target);
        }
    }
    let changed = next.reason != d.reason
        || next.new_instances != d.new_instances
        || next.retiring != d.retiring
        || next.error != d.error
        // The health time is kept fresh, but not written on every pass.
        || next.last_healthy - d.last_healthy > 5_000;
    if changed {
        if let Some(done) = save(s, d, next).await? {
            if !done.is_active() {
                tracing::info!(deployment = %d.guid, app = %d.app_guid, reason = %done.reason, "deployment finalized");
            }
        }
    }
    Ok(())
}

/// `actions/continue`: a PAUSED canary goes on to its next step, or to the end.
pub async fn resume(s: &AppState, d: &Deployment) -> ApiResult<Deployment> {
    on_current(s, d, Action::Resume).await
}

/// [`resume`] once: `None` when `d` was written meanwhile.
async fn try_resume(s: &AppState, d: &Deployment) -> ApiResult<Option<Deployment>> {
    if d.reason != Reason::Paused {
        return Err(unprocessable(format!(
            "Cannot continue a deployment with status: {} and reason: {}",
            d.reason.value(),
            d.reason
        )));
    }
    let mut next = d.clone();
    next.reason = Reason::Deploying;
    next.canary_step += 1;
    let step = next.canary_step as usize;
    next.new_instances = if step < d.options.canary_steps.len() {
        step_instances(&d.options, d.target, step).max(d.new_instances)
    } else {
        (d.new_instances + d.options.max_in_flight).min(d.target)
    };
    save(s, d, next).await
}

/// `actions/cancel`: the previous droplet and web version back at the target, the deployed
/// version retired as they turn healthy (CANCELING, then CANCELED).
pub async fn cancel(s: &AppState, d: &Deployment, actor: &Actor) -> ApiResult<Deployment> {
    on_current(s, d, Action::Cancel(actor)).await
}

/// [`cancel`] once: `None` when `d` was written meanwhile.
async fn try_cancel(s: &AppState, d: &Deployment, actor: &Actor) -> ApiResult<Option<Deployment>> {
    if !matches!(d.reason, Reason::Deploying | Reason::Paused) {
        return Err(unprocessable(format!("Cannot cancel a {} deployment", d.reason)));
    }
    let mut app =
        store::apps::find(&s.db.pool, &d.app_guid).await?.ok_or(ApiError::NotFound("App"))?;
    let mut tx = store::begin(&s.db).await?;
    let mut web: Process = store::processes::find(&mut *tx, &d.process_guid)
        .await?
        .ok_or(ApiError::NotFound("Process"))?;
    let deployed = Retiring { lrp_guid: web.lrp_guid(), instances: d.new_instances };
    web.version = d.previous_version.clone();
    web.updated_at = now_ms();
    let previous_lrp = web.lrp_guid();
    store::processes::update(&mut *tx, &web).await?;
    app.droplet_guid = d.previous_droplet_guid.clone();
    app.updated_at = now_ms();
    store::apps::update(&mut *tx, &app).await?;
    let mut next = d.clone();
    next.retiring = std::iter::once(deployed)
        .chain(d.retiring.iter().filter(|r| r.lrp_guid != previous_lrp).cloned())
        .collect();
    next.new_instances = d.target;
    next.reason = Reason::Canceling;
    next.last_status_change = now_ms();
    next.updated_at = now_ms().max(d.updated_at + 1);
    if !store::deployments::update_if(&mut *tx, &next, d.updated_at).await? {
        return Ok(None);
    }
    tx.commit().await?;
    if let Some(space) = store::spaces::find(&s.db.pool, &app.space_guid).await? {
        let t = space.target(&app.guid, "app", &app.name);
        events::record(
            s,
            "audit.app.deployment.cancel",
            actor,
            &t,
            json!({"deployment_guid": d.guid}),
        )
        .await;
    }
    desired::sync_app(s, &app.guid).await?;
    Ok(Some(next))
}

/// The updater loop: every active deployment advanced once per `every`.
pub async fn run_updater(s: AppState, every: Duration, shutdown: kit::Shutdown) {
    loop {
        match store::deployments::active(&s.db.pool).await {
            Ok(list) => {
                for d in list {
                    if let Err(e) = advance(&s, &d).await {
                        tracing::debug!(deployment = %d.guid, error = %e, "deployment not advanced; retrying");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading active deployments failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_versions_retire_first() {
        let mut list = vec![
            Retiring { lrp_guid: "a".into(), instances: 2 },
            Retiring { lrp_guid: "b".into(), instances: 3 },
        ];
        retire(&mut list, 4);
        assert_eq!(list.iter().map(|r| r.instances).collect::<Vec<_>>(), [1, 3]);
        retire(&mut list, 1);
        assert_eq!(list.iter().map(|r| r.instances).collect::<Vec<_>>(), [0, 1]);
        retire(&mut list, 5);
        assert_eq!(list.iter().map(|r| r.instances).collect::<Vec<_>>(), [0, 1], "never grows");
    }

    #[test]
    fn canary_steps_are_shares_of_the_target_at_least_one() {
        let o = Options { canary_steps: vec![10, 50, 100], ..Options::default() };
        assert_eq!(step_instances(&o, 3, 0), 1);
        assert_eq!(step_instances(&o, 3, 1), 2);
        assert_eq!(step_instances(&o, 3, 2), 3);
        assert_eq!(step_instances(&Options::default(), 5, 0), 1, "no steps: one canary");
    }

    #[test]
    fn options_are_checked_as_cc_checks_them() {
        let ok = |o: DeploymentOptions, st: &str| options(st, &o, 8192, 8192);
        assert!(ok(DeploymentOptions { max_in_flight: Some(0), ..Default::default() }, "rolling")
            .is_err());
        let canary = |w: Vec<i64>| DeploymentOptions {
            canary: Some(wire::v3::deployment::Canary {
                steps: w
                    .into_iter()
                    .map(|instance_weight| wire::v3::deployment::CanaryStep { instance_weight })
                    .collect(),
            }),
            ..Default::default()
        };
        assert!(ok(canary(vec![10, 50]), "canary").is_ok());
        assert!(ok(canary(vec![50, 10]), "canary").is_err(), "descending");
        assert!(ok(canary(vec![0]), "canary").is_err(), "zero weight");
        assert!(ok(canary(vec![10]), "rolling").is_err(), "steps without canary");
        assert_eq!(ok(DeploymentOptions::default(), "rolling").expect("defaults").max_in_flight, 1);
    }
}
