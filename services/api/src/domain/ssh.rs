//! SSH into app instances (docs/api.md, "SSH"): whether an app may be entered (the platform's
//! `allow_app_ssh_access`, the space's `allow_ssh`, the app's `enable_ssh`), the one-time codes
//! the token issuer hands out, and their redemption by the SSH endpoint, which answers who is
//! entering which instance and where it runs.
//!
//! A code is never stored in clear, works once and for `ssh_code_ttl_secs` (CF: 2 minutes); whoever
//! redeems it gets the rights of the user it was issued to, checked at redemption.

use base64::Engine as _;
use rand::RngCore as _;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use wire::lrp::{ActualLrp, ActualState, Presence};
use wire::ssh::{Authorize, Authorized};

use crate::access::{Caller, Need};
use crate::domain::events::{self, Actor};
use crate::error::{ApiError, ApiResult};
use crate::store::{self, apps::App, now_ms, spaces::Space};
use crate::AppState;

/// Why SSH into an app is off, in CC's words; `None` when it is on.
pub async fn disabled_reason(s: &AppState, app: &App, space: &Space) -> ApiResult<Option<String>> {
    if !s.config.allow_app_ssh_access {
        return Ok(Some("Disabled globally".into()));
    }
    if store::ssh::space_allowed(&s.db.pool, &space.guid).await? == Some(false) {
        return Ok(Some(format!("Disabled for space {}", space.name)));
    }
    if store::ssh::app_enabled(&s.db.pool, &app.guid).await? == Some(false) {
        return Ok(Some("Disabled for app".into()));
    }
    Ok(None)
}

/// Turn SSH on or off for an app, with CC's audit event.
pub async fn set_app(
    s: &AppState,
    c: &Caller,
    app: &App,
    space: &Space,
    on: bool,
) -> ApiResult<()> {
    store::ssh::set_app_enabled(&s.db.pool, &app.guid, on, now_ms()).await?;
    let target = space.target(&app.guid, "app", &app.name);
    let data = json!({"request": {"enable_ssh": on}});
    events::record(s, "audit.app.update", &Actor::of(c), &target, data).await;
    Ok(())
}

/// Turn SSH on or off for every app of a space.
pub async fn set_space(s: &AppState, c: &Caller, space: &Space, on: bool) -> ApiResult<()> {
    store::ssh::set_space_allowed(&s.db.pool, &space.guid, on, now_ms()).await?;
    let target = space.target(&space.guid, "space", &space.name);
    let data = json!({"request": {"allow_ssh": on}});
    events::record(s, "audit.space.update", &Actor::of(c), &target, data).await;
    Ok(())
}

fn hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

/// A new one-time code for the caller.
pub async fn issue_code(s: &AppState, c: &Caller) -> ApiResult<String> {
    let mut raw = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut raw);
    let code = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let now = now_ms();
    store::ssh::insert_code(
        &s.db.pool,
        &hash(&code),
        &c.claims,
        now + s.config.ssh_code_ttl_secs * 1000,
        now,
    )
    .await?;
    if let Err(e) = store::ssh::sweep_codes(&s.db.pool, now).await {
        tracing::warn!(error = %e, "could not remove expired ssh codes");
    }
    Ok(code)
}

/// Why a redemption was refused; each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the one-time code is unknown, used or expired: get a new one (`paas ssh-code`, `cf ssh-code`)")]
    BadCode,
    #[error("no instance {0} that you may enter: check the app, the process and the index")]
    NotFound(String),
    #[error("only space developers may SSH into instances of app {0}")]
    NotDeveloper(String),
    #[error(
        "SSH is disabled globally: the platform's operator turns it on (api.allow_app_ssh_access)"
    )]
    Global,
    #[error("SSH is disabled for space {0}: a space manager can run `paas allow-space-ssh {0}`")]
    Space(String),
    #[error("SSH is disabled for app {0}: run `paas enable-ssh {0}` and restart the app")]
    App(String),
    #[error("instance {index} of app {app} is not running: see `paas app {app}`")]
    NotRunning { app: String, index: u32 },
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// The SSH endpoint redeems a code for an instance: the code's user must be a developer of
/// the app's space (or an admin), SSH on for the platform, the space and the app, and the
/// instance running. Every success is an `audit.app.ssh-authorized` event.
pub async fn authorize(s: &AppState, req: &Authorize) -> Result<Authorized, Refusal> {
    let (claims, expires) =
        store::ssh::take_code(&s.db.pool, &hash(&req.code)).await?.ok_or(Refusal::BadCode)?;
    if expires <= now_ms() {
        return Err(Refusal::BadCode);
    }
    let c = Caller::new(claims, s.db.clone());
    let name = format!("cf:{}/{}", req.process_guid, req.index);
    let not_found = || Refusal::NotFound(name.clone());
    let p = store::processes::find(&s.db.pool, &req.process_guid).await?.ok_or_else(not_found)?;
    let app = store::apps::find(&s.db.pool, &p.app_guid).await?.ok_or_else(not_found)?;
    let space = store::spaces::find(&s.db.pool, &app.space_guid).await?.ok_or_else(not_found)?;
    match c.require_space(&space.guid, &space.org_guid, "App", Need::Developer).await {
        Ok(()) => {}
        Err(ApiError::NotFound(_)) => return Err(not_found()),
        Err(ApiError::NotAuthorized) => return Err(Refusal::NotDeveloper(app.name.clone())),
        Err(e) => return Err(e.into()),
    }
    if !s.config.allow_app_ssh_access {
        return Err(Refusal::Global);
    }
    match disabled_reason(s, &app, &space).await? {
        None => {}
        Some(r) if r.starts_with("Disabled for space") => return Err(Refusal::Space(space.name)),
        Some(_) => return Err(Refusal::App(app.name)),
    }
    let not_running = || Refusal::NotRunning { app: app.name.clone(), index: req.index };
    if app.state != wire::v3::AppState::Started || i64::from(req.index) >= p.instances {
        return Err(not_running());
    }
    let actual = crate::domain::desired::actual(s, &p.lrp_guid()).await?;
    let a = running(&actual, req.index).ok_or_else(not_running)?;
    let target = space.target(&app.guid, "app", &app.name);
    let data = json!({"index": req.index, "process_type": p.kind});
    events::record(s, "audit.app.ssh-authorized", &Actor::of(&c), &target, data).await;
    tracing::info!(app_guid = %app.guid, process_guid = %p.guid, instance = req.index,
        user = c.name(), "ssh session authorized");
    Ok(Authorized {
        app_guid: app.guid.clone(),
        app_name: app.name.clone(),
        space_guid: space.guid.clone(),
        process_guid: p.guid.clone(),
        process_type: p.kind.clone(),
        index: req.index,
        instance_guid: a.instance_guid.clone(),
        cell_id: a.cell_id.clone(),
        user_guid: c.guid().to_owned(),
        user_name: c.name().to_owned(),
    })
}

/// The running instance at `index`: the ordinary one, else an evacuating copy.
fn running(actual: &[ActualLrp], index: u32) -> Option<&ActualLrp> {
    let at: Vec<&ActualLrp> =
        actual.iter().filter(|a| a.index == index && a.state == ActualState::Running).collect();
    at.iter().find(|a| a.presence == Presence::Ordinary).or_else(|| at.first()).copied()
}
