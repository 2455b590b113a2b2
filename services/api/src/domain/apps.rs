//! App lifecycle: an app is created STOPPED with its `web` process (guid = app guid) in one
//! transaction; starting needs a droplet and fits the memory quotas, and gives every process a
//! new version (new instances); a current droplet brings a process for each of its types.
//! Process rules live here too: scale limits, health checks, which changes recreate instances.
//! Every change reaches the scheduler through [`crate::domain::desired`] after its commit.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use wire::v3::{self, AppState as Desired};

use crate::domain::desired;
use crate::domain::events::Actor;
use crate::domain::feature_flags::{self, Flag};
use crate::error::{ApiError, ApiResult};
use crate::store::apps::App;
use crate::store::processes::{Health, Process};
use crate::store::spaces::Space;
use crate::store::{self, new_guid, now_ms};
use crate::AppState;

/// What a new app starts with.
#[derive(Debug, Clone, Default)]
pub struct NewApp {
    pub name: String,
    pub lifecycle_type: String,
    pub buildpacks: Vec<String>,
    pub stack: String,
    pub env: BTreeMap<String, String>,
}

/// Create an app (STOPPED) and its web process. The caller has checked the name.
pub async fn create_app(s: &AppState, space: &Space, new: NewApp, actor: &Actor) -> ApiResult<App> {
    crate::domain::quotas::check_apps(s, &space.org_guid, &space.guid).await?;
    let now = now_ms();
    let lifecycle =
        if new.lifecycle_type.is_empty() { "buildpack".to_owned() } else { new.lifecycle_type };
    let app = App {
        guid: new_guid(),
        name: new.name,
        space_guid: space.guid.clone(),
        state: Desired::Stopped,
        lifecycle_type: lifecycle,
        buildpacks: new.buildpacks,
        stack: if new.stack.is_empty() { s.config.default_stack.clone() } else { new.stack },
        droplet_guid: String::new(),
        env: new.env,
        created_at: now,
        updated_at: now,
    };
    let web = new_process(s, &app, "web", None);
    let mut tx = store::begin(&s.db).await?;
    store::apps::insert(&mut *tx, &app).await?;
    store::processes::insert(&mut *tx, &web).await?;
    tx.commit().await?;
    let t = space.target(&app.guid, "app", &app.name);
    crate::domain::events::record(
        s,
        "audit.app.create",
        actor,
        &t,
        json!({"request": {"name": app.name}}),
    )
    .await;
    Ok(app)
}

/// Write the app's fields with a new `updated_at`.
pub async fn save(s: &AppState, app: &mut App) -> ApiResult<()> {
    app.updated_at = now_ms();
    store::apps::update(&s.db.pool, app).await
}

/// The app may go from `from` to `to` (the app lifecycle table), else 422.
pub fn check_transition(from: Desired, to: Desired) -> ApiResult<()> {
    refuse_unless(v3::app::allows(from, to), from, to)
}

fn refuse_unless(allowed: bool, from: Desired, to: Desired) -> ApiResult<()> {
    if allowed {
        Ok(())
    } else {
        Err(ApiError::Unprocessable(format!("App cannot transition from {from} to {to}.")))
    }
}

/// Set the desired state; STARTED needs a droplet (docker apps excepted) and must fit the
/// memory quotas. Starting, or restarting, gives every process a new version.
pub async fn set_state(
    s: &AppState,
    app: &mut App,
    state: Desired,
    restart: bool,
) -> ApiResult<()> {
    check_transition(app.state, state)?;
    let to_start = state == Desired::Started;
    if to_start && app.droplet_guid.is_empty() && app.lifecycle_type != "docker" {
        return Err(ApiError::Unprocessable("Assign a droplet before starting this app.".into()));
    }
    if to_start && app.lifecycle_type == "docker" {
        feature_flags::require_on(s, Flag::DiegoDocker).await?;
    }
    if to_start {
        let space = crate::store::spaces::find(&s.db.pool, &app.space_guid)
            .await?
            .ok_or(ApiError::NotFound("Space"))?;
        for p in store::processes::of_app(&s.db.pool, &app.guid).await? {
            crate::domain::quotas::check_memory(
                s,
                &space.org_guid,
                &space.guid,
                &p.guid,
                p.instances,
                p.memory_mb,
            )
            .await?;
        }
    }
    let starting = to_start && (app.state != Desired::Started || restart);
    let was_started = app.state == Desired::Started;
    app.state = state;
    app.updated_at = now_ms();
    let mut tx = store::begin(&s.db).await?;
    store::apps::update(&mut *tx, app).await?;
    if starting || state == Desired::Stopped {
        // All instances replaced at once, or none left: an active deployment ends here.
        let reason = if starting {
            wire::v3::DeploymentReason::Superseded
        } else {
            wire::v3::DeploymentReason::Canceled
        };
        store::deployments::end_active(&mut tx, &app.guid, reason).await?;
    }
    if starting {
        let mut procs = store::processes::of_app(&mut *tx, &app.guid).await?;
        for p in &mut procs {
            p.version = new_guid();
            p.updated_at = now_ms();
            store::processes::update(&mut *tx, p).await?;
        }
        crate::domain::revisions::record(&mut tx, app, &procs, None).await?;
    }
    tx.commit().await?;
    let usage = crate::domain::usage_events::app_processes;
    if was_started && (state == Desired::Stopped || starting) {
        usage(s, app, "STOPPED", Some("STARTED")).await;
    }
    if starting {
        usage(s, app, "STARTED", Some("STOPPED")).await;
    }
    desired::sync_app(s, &app.guid).await
}

/// Make a staged droplet of the app current, with a process for each of its types that is
/// missing. The caller has checked that the droplet is the app's and STAGED.
pub async fn set_droplet(
    s: &AppState,
    app: &mut App,
    droplet_guid: &str,
    process_types: &BTreeMap<String, String>,
) -> ApiResult<()> {
    app.droplet_guid = droplet_guid.to_owned();
    app.updated_at = now_ms();
    let mut tx = store::begin(&s.db).await?;
    store::apps::update(&mut *tx, app).await?;
    for kind in process_types.keys() {
        if store::processes::find_by_type(&mut *tx, &app.guid, kind).await?.is_none() {
            store::processes::insert(&mut *tx, &new_process(s, app, kind, None)).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Environment variables from a JSON object: values as strings, `null` skipped; names may not
/// start with `VCAP_` or be `PORT`.
pub fn env_of(v: Option<&Value>) -> ApiResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                if k.starts_with("VCAP_") || k == "PORT" {
                    return Err(ApiError::Unprocessable(format!(
                        "Environment variable '{k}' cannot start with VCAP_ or be PORT"
                    )));
                }
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => continue,
                    other => other.to_string(),
                };
                out.insert(k.clone(), v);
            }
        }
        Some(_) => {
            return Err(ApiError::Unprocessable("Environment variables must be an object".into()))
        }
    }
    Ok(out)
}

/// Apply a patch of environment variables (`null` removes one) and save the app.
pub async fn patch_env(s: &AppState, app: &mut App, vars: &Map<String, Value>) -> ApiResult<()> {
    for (k, v) in vars {
        if v.is_null() {
            app.env.remove(k);
        }
    }
    let set = env_of(Some(&Value::Object(vars.clone())))?;
    app.env.extend(set);
    save(s, app).await
}

fn default_health(kind: &str) -> Health {
    Health { kind: if kind == "web" { "port" } else { "process" }.into(), ..Health::default() }
}

/// A new process of `kind` for the app (web: guid = app guid, 1 instance; others 0), with the
/// configured default memory and disk.
pub fn new_process(s: &AppState, app: &App, kind: &str, command: Option<&str>) -> Process {
    let now = now_ms();
    Process {
        guid: if kind == "web" { app.guid.clone() } else { new_guid() },
        app_guid: app.guid.clone(),
        kind: kind.into(),
        command: command.map(str::to_owned),
        instances: i64::from(kind == "web"),
        memory_mb: s.config.default_memory_mb,
        disk_mb: s.config.default_disk_mb,
        log_rate: -1,
        health: default_health(kind),
        version: new_guid(),
        created_at: now,
        updated_at: now,
    }
}

/// Create a process of `kind` for the app.
pub async fn create_process(s: &AppState, app: &App, kind: &str) -> ApiResult<Process> {
    let p = new_process(s, app, kind, None);
    store::processes::insert(&s.db.pool, &p).await?;
    Ok(p)
}

/// Write the process's fields with a new `updated_at`.
pub async fn save_process(s: &AppState, p: &mut Process) -> ApiResult<()> {
    p.updated_at = now_ms();
    store::processes::update(&s.db.pool, p).await
}

/// Parse and apply a `health_check` object onto `h`.
pub fn apply_health(h: &mut Health, v: &Value) -> ApiResult<()> {
    if let Some(t) = v.get("type").and_then(Value::as_str) {
        let t = if t == "none" { "process" } else { t };
        if !["port", "process", "http"].contains(&t) {
            return Err(ApiError::Unprocessable(
                "Health check type must be \"port\", \"process\", or \"http\"".into(),
            ));
        }
        h.kind = t.into();
    }
    let data = v.get("data").cloned().unwrap_or(Value::Null);
    let int = |name: &str, max: i64| -> ApiResult<Option<Option<i64>>> {
        match data.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(x) => match x.as_i64() {
                Some(n) if (1..=max).contains(&n) => Ok(Some(Some(n))),
                _ => Err(ApiError::Unprocessable(format!(
                    "Health check {name} must be an integer between 1 and {max}"
                ))),
            },
        }
    };
    if let Some(t) = int("timeout", 180)? {
        h.timeout = t;
    }
    if let Some(t) = int("invocation_timeout", 60)? {
        h.invocation_timeout = t;
    }
    if let Some(t) = int("interval", 3600)? {
        h.interval = t;
    }
    match data.get("endpoint") {
        Some(Value::String(e)) if e.starts_with('/') => h.endpoint = Some(e.clone()),
        Some(Value::Null) | None => {}
        Some(_) => {
            return Err(ApiError::Unprocessable(
                "Health check endpoint must be a path starting with '/'".into(),
            ))
        }
    }
    if h.kind == "http" && h.endpoint.is_none() {
        h.endpoint = Some("/".into());
    }
    if h.kind != "http" {
        h.endpoint = None;
    }
    Ok(())
}

/// A scale request: each field `None` keeps the current value.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScaleTo {
    pub instances: Option<i64>,
    pub memory: Option<i64>,
    pub disk: Option<i64>,
    pub log_rate: Option<i64>,
}

/// Scale a process within the configured limits and the quotas of a started app; memory, disk
/// or log rate changes mean new instances (a new version), instance counts do not.
pub async fn apply_scale(
    s: &AppState,
    p: &mut Process,
    app: &App,
    org: &str,
    to: ScaleTo,
) -> ApiResult<()> {
    let ScaleTo { instances, memory, disk, log_rate } = to;
    if instances.is_some_and(|i| !(0..=2000).contains(&i)) {
        return Err(ApiError::Unprocessable("Instances must be between 0 and 2000".into()));
    }
    if memory.is_some_and(|m| !(1..=s.config.max_memory_mb).contains(&m)) {
        return Err(ApiError::Unprocessable(format!(
            "Memory in mb must be between 1 and {}",
            s.config.max_memory_mb
        )));
    }
    if disk.is_some_and(|d| !(1..=s.config.max_disk_mb).contains(&d)) {
        return Err(ApiError::Unprocessable(format!(
            "Disk in mb must be between 1 and {}",
            s.config.max_disk_mb
        )));
    }
    if log_rate.is_some_and(|l| l < -1) {
        return Err(ApiError::Unprocessable(
            "Log rate limit must be -1 (unlimited) or more".into(),
        ));
    }
    let new_i = instances.unwrap_or(p.instances);
    let new_m = memory.unwrap_or(p.memory_mb);
    if p.kind == "web"
        && (new_i != p.instances
            || memory.is_some_and(|m| m != p.memory_mb)
            || disk.is_some_and(|d| d != p.disk_mb)
            || log_rate.is_some_and(|l| l != p.log_rate))
        && store::deployments::active_of_app(&s.db.pool, &app.guid).await?.is_some()
    {
        return Err(ApiError::Unprocessable(
            "Cannot scale this process while a deployment is in flight.".into(),
        ));
    }
    if app.state == Desired::Started {
        crate::domain::quotas::check_memory(s, org, &app.space_guid, &p.guid, new_i, new_m).await?;
    }
    let recreate = memory.is_some_and(|m| m != p.memory_mb)
        || disk.is_some_and(|d| d != p.disk_mb)
        || log_rate.is_some_and(|l| l != p.log_rate);
    let before = (p.instances, p.memory_mb);
    p.instances = new_i;
    p.memory_mb = new_m;
    p.disk_mb = disk.unwrap_or(p.disk_mb);
    p.log_rate = log_rate.unwrap_or(p.log_rate);
    if recreate {
        p.version = new_guid();
    }
    save_process(s, p).await?;
    crate::domain::usage_events::scaled(s, app, p, before).await;
    desired::sync_app(s, &app.guid).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn env_vars_are_strings_and_vcap_names_are_refused() {
        let env = env_of(Some(&json!({"A": "x", "N": 3, "GONE": null}))).expect("valid");
        assert_eq!(env.get("A").map(String::as_str), Some("x"));
        assert_eq!(env.get("N").map(String::as_str), Some("3"));
        assert!(!env.contains_key("GONE"));
        for bad in [json!({"VCAP_X": "1"}), json!({"PORT": "1"}), json!([1])] {
            assert!(matches!(env_of(Some(&bad)), Err(ApiError::Unprocessable(_))), "{bad}");
        }
        assert!(env_of(None).expect("none").is_empty());
    }

    #[test]
    fn app_state_changes_follow_the_lifecycle_table() {
        use Desired::{Started, Stopped};
        // CC's start, stop and restart are idempotent: the table refuses no change ...
        for (from, to) in
            [(Stopped, Started), (Started, Stopped), (Started, Started), (Stopped, Stopped)]
        {
            check_transition(from, to).expect("allowed");
        }
        // ... and a change the table refuses is a 422.
        let e = refuse_unless(false, Started, Stopped).expect_err("refused");
        assert!(
            matches!(&e, ApiError::Unprocessable(d) if d.contains("STARTED to STOPPED")),
            "{e}"
        );
    }

    #[test]
    fn health_checks_follow_cf_rules() {
        let mut h = default_health("web");
        apply_health(&mut h, &json!({"type": "http"})).expect("http");
        assert_eq!(h.endpoint.as_deref(), Some("/"));
        apply_health(&mut h, &json!({"type": "none", "data": {"timeout": 10}})).expect("none");
        assert_eq!(
            (h.kind.as_str(), h.endpoint.as_deref(), h.timeout),
            ("process", None, Some(10))
        );
        for bad in [
            json!({"type": "tcp"}),
            json!({"data": {"timeout": 0}}),
            json!({"data": {"interval": 3601}}),
            json!({"type": "http", "data": {"endpoint": "x"}}),
        ] {
            assert!(apply_health(&mut h, &bad).is_err(), "{bad}");
        }
        assert_eq!(default_health("worker").kind, "process");
    }
}
