//! Desired state to the scheduler (docs/api.md): each process of a started app becomes a
//! desired LRP `<process guid>-<version>` with instances, memory, disk, droplet, command,
//! environment, health check and routes. Changes are sent when they happen; a periodic resync
//! repairs any difference after either side restarts or a call failed.
//!
//! A running version is immutable at the scheduler except for instances and routes, so other
//! process changes (command, env, health check) take effect at the next restart, as in CF.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use wire::lrp::{ActualLrp, DesiredLrp, DesiredLrpUpdate, HealthCheck, HealthCheckType, ImageRef};

use crate::error::{ApiError, ApiResult};
use crate::store::{self, apps::App, processes::Process};
use crate::AppState;

/// The app's environment variables over the `group`'s, with `VCAP_APPLICATION` (`vcap`) and
/// `VCAP_SERVICES`: what staging and running instances see.
pub async fn app_env(
    s: &AppState,
    app: &App,
    group: crate::domain::env_groups::Group,
    vcap: &Value,
) -> ApiResult<BTreeMap<String, String>> {
    let mut env = crate::domain::env_groups::with_group(s, group, &app.env).await?;
    env.insert("VCAP_APPLICATION".into(), vcap.to_string());
    env.insert(
        "VCAP_SERVICES".into(),
        crate::domain::services::vcap_services(s, &app.guid).await?.to_string(),
    );
    Ok(env)
}

/// `VCAP_APPLICATION` without the per-instance fields the cell adds.
pub async fn vcap_application(s: &AppState, app: &App, web: Option<&Process>) -> ApiResult<Value> {
    let space = crate::store::spaces::find(&s.db.pool, &app.space_guid)
        .await?
        .ok_or(ApiError::NotFound("Space"))?;
    let org = crate::store::orgs::find(&s.db.pool, &space.org_guid)
        .await?
        .ok_or(ApiError::NotFound("Organization"))?;
    let uris: Vec<String> = match web {
        Some(p) => crate::domain::routing::lrp_routes(s, &app.guid, &p.kind)
            .await?
            .into_iter()
            .map(|r| r.uri)
            .collect(),
        None => vec![],
    };
    let (mem, disk, version, pid, ptype) = match web {
        Some(p) => (p.memory_mb, p.disk_mb, p.version.clone(), p.guid.clone(), p.kind.clone()),
        None => (
            s.config.default_memory_mb,
            s.config.default_disk_mb,
            String::new(),
            String::new(),
            String::new(),
        ),
    };
    Ok(json!({
        "application_id": app.guid, "application_name": app.name, "application_uris": uris,
        "application_version": version, "cf_api": s.config.external_url,
        "limits": {"fds": 16384, "mem": mem, "disk": disk},
        "name": app.name, "organization_id": org.guid, "organization_name": org.name,
        "process_id": pid, "process_type": ptype,
        "space_id": space.guid, "space_name": space.name, "uris": uris, "version": version,
    }))
}

/// The names logs and metrics of an app's instances and tasks carry.
pub fn app_tags(
    app: &App,
    space: &crate::store::spaces::Space,
    org: &crate::store::orgs::Org,
) -> BTreeMap<String, String> {
    [
        ("app_id", &app.guid),
        ("app_name", &app.name),
        ("space_id", &space.guid),
        ("space_name", &space.name),
        ("organization_id", &org.guid),
        ("organization_name", &org.name),
        ("source_id", &app.guid),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.clone()))
    .collect()
}

/// The desired LRP of one process of a started app with a staged droplet.
pub async fn build_lrp(s: &AppState, app: &App, p: &Process) -> ApiResult<Option<DesiredLrp>> {
    let Some(droplet) = crate::store::droplets::find(&s.db.pool, &app.droplet_guid).await? else {
        return Ok(None);
    };
    let space = crate::store::spaces::find(&s.db.pool, &app.space_guid)
        .await?
        .ok_or(ApiError::NotFound("Space"))?;
    let org = crate::store::orgs::find(&s.db.pool, &space.org_guid)
        .await?
        .ok_or(ApiError::NotFound("Organization"))?;
    let docker = crate::domain::docker::lrp_image(s, &droplet).await?;
    // A docker image runs its own process unless the process has a command.
    let command = match (&p.command, &docker) {
        (Some(c), _) => c.clone(),
        (None, Some(_)) => String::new(),
        (None, None) => droplet.process_types.get(&p.kind).cloned().unwrap_or_default(),
    };
    let (stack, ports) = match &docker {
        Some(d) => (
            wire::lrp::DOCKER_STACK.to_owned(),
            vec![d.config.exposed_ports.first().copied().unwrap_or(8080)],
        ),
        None => (app.stack.clone(), vec![8080]),
    };
    let mut vcap = vcap_application(s, app, Some(p)).await?;
    vcap["process_id"] = json!(p.guid);
    vcap["process_type"] = json!(p.kind);
    let mut env = app_env(s, app, crate::domain::env_groups::Group::Running, &vcap).await?;
    env.insert("MEMORY_LIMIT".into(), format!("{}m", p.memory_mb));
    let h = &p.health;
    let kind = match h.kind.as_str() {
        "http" => HealthCheckType::Http,
        "process" => HealthCheckType::Process,
        _ => HealthCheckType::Port,
    };
    let secs = |v: Option<i64>, d: u64| v.and_then(|x| u64::try_from(x).ok()).unwrap_or(d);
    let mut tags = app_tags(app, &space, &org);
    tags.insert("process_id".into(), p.guid.clone());
    tags.insert("process_type".into(), p.kind.clone());
    Ok(Some(DesiredLrp {
        process_guid: p.lrp_guid(),
        domain: wire::lrp::CF_APPS_DOMAIN.into(),
        log_guid: app.guid.clone(),
        log_source: "CELL".into(),
        instances: u32::try_from(p.instances).unwrap_or(0),
        memory_mb: u64::try_from(p.memory_mb).unwrap_or(0),
        disk_mb: u64::try_from(p.disk_mb).unwrap_or(0),
        max_pids: 1024,
        cpu_weight: u32::try_from((p.memory_mb * 100 / 8192).clamp(1, 100)).unwrap_or(1),
        stack,
        image: ImageRef {
            droplet_guid: droplet.guid.clone(),
            droplet_url: format!(
                "{}/internal/v1/droplets/{}/download",
                s.internal_url(),
                droplet.guid
            ),
            droplet_sha256: droplet.sha256.clone(),
            docker,
        },
        start_command: command,
        env,
        ports,
        health_check: HealthCheck {
            kind,
            endpoint: h.endpoint.clone(),
            invocation_timeout_secs: secs(h.invocation_timeout, 1),
            interval_secs: secs(h.interval, 30),
            start_timeout_secs: secs(h.timeout, 60),
        },
        routes: crate::domain::routing::lrp_routes(s, &app.guid, &p.kind).await?,
        placement_tags: vec![],
        metric_tags: tags,
        log_rate_limit_bytes_per_second: p.log_rate,
        annotation: String::new(),
    }))
}

/// What the scheduler should run for the app right now, and the versions of its web process
/// an active deployment is retiring (kept with their instances and the web routes).
async fn wanted(s: &AppState, app_guid: &str) -> ApiResult<(Vec<DesiredLrp>, Vec<DesiredLrp>)> {
    let Some(app) = store::apps::find(&s.db.pool, app_guid).await? else {
        return Ok((vec![], vec![]));
    };
    if app.state != wire::v3::AppState::Started {
        return Ok((vec![], vec![]));
    }
    let deployment = store::deployments::active_of_app(&s.db.pool, &app.guid).await?;
    let mut out = Vec::new();
    let mut keep = Vec::new();
    for p in store::processes::of_app(&s.db.pool, &app.guid).await? {
        let Some(mut lrp) = build_lrp(s, &app, &p).await? else { continue };
        if let Some(d) = deployment.as_ref().filter(|d| d.process_guid == p.guid) {
            lrp.instances = u32::try_from(d.new_instances).unwrap_or(0);
            for r in &d.retiring {
                let mut old = lrp.clone();
                old.process_guid = r.lrp_guid.clone();
                old.instances = u32::try_from(r.instances).unwrap_or(0);
                keep.push(old);
            }
        }
        out.push(lrp);
    }
    Ok((out, keep))
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::ServiceUnavailable(format!("The scheduler is unavailable: {e}"))
}

/// `path` at the leading scheduler, the request made by `build` for its URL.
async fn call<F>(s: &AppState, path: &str, build: F) -> ApiResult<reqwest::Response>
where
    F: Fn(String) -> reqwest::RequestBuilder,
{
    let token =
        s.uaa.internal_token().map_err(|e| ApiError::Internal(format!("internal token: {e}")))?;
    s.scheduler
        .send(path, |url| kit::http::propagate(build(url).bearer_auth(&token)))
        .await
        .map_err(unavailable)
}

/// Bring the scheduler in line with the app: put what should run, remove what should not.
pub async fn sync_app(s: &AppState, app_guid: &str) -> ApiResult<()> {
    let (want, keep) = wanted(s, app_guid).await?;
    let path = format!("/v1/desired_lrps?log_guid={app_guid}");
    let res = call(s, &path, |u| s.http.get(u)).await?;
    if !res.status().is_success() {
        return Err(unavailable(format!("listing desired LRPs answered {}", res.status())));
    }
    let have: Vec<DesiredLrp> = res.json().await.map_err(unavailable)?;
    let listed =
        |h: &DesiredLrp| want.iter().chain(&keep).any(|w| w.process_guid == h.process_guid);
    for old in have.iter().filter(|h| !listed(h)) {
        let path = format!("/v1/desired_lrps/{}", old.process_guid);
        let res = call(s, &path, |u| s.http.delete(u)).await?;
        if !res.status().is_success() && res.status() != reqwest::StatusCode::NOT_FOUND {
            return Err(unavailable(format!(
                "removing {} answered {}",
                old.process_guid,
                res.status()
            )));
        }
    }
    // A retiring version is never created anew: only its instances and routes change.
    for old in keep.iter().filter(|k| have.iter().any(|h| h.process_guid == k.process_guid)) {
        let path = format!("/v1/desired_lrps/{}", old.process_guid);
        let update = DesiredLrpUpdate {
            instances: Some(old.instances),
            routes: Some(old.routes.clone()),
            ..DesiredLrpUpdate::default()
        };
        let res = call(s, &path, |u| s.http.patch(u).json(&update)).await?;
        if !res.status().is_success() && res.status() != reqwest::StatusCode::NOT_FOUND {
            return Err(unavailable(format!(
                "updating {} answered {}",
                old.process_guid,
                res.status()
            )));
        }
    }
    for lrp in &want {
        let path = format!("/v1/desired_lrps/{}", lrp.process_guid);
        let res = call(s, &path, |u| s.http.put(u).json(lrp)).await?;
        if res.status() == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
            // The running version keeps its settings until the next restart; only instances
            // and routes change in place.
            let update = DesiredLrpUpdate {
                instances: Some(lrp.instances),
                routes: Some(lrp.routes.clone()),
                ..DesiredLrpUpdate::default()
            };
            let res = call(s, &path, |u| s.http.patch(u).json(&update)).await?;
            if !res.status().is_success() {
                return Err(unavailable(format!(
                    "updating {} answered {}",
                    lrp.process_guid,
                    res.status()
                )));
            }
        } else if !res.status().is_success() {
            return Err(unavailable(format!(
                "desiring {} answered {}",
                lrp.process_guid,
                res.status()
            )));
        }
    }
    Ok(())
}

/// [`sync_app`] for changes whose request already succeeded: a failure is logged and left to
/// the periodic resync.
pub async fn sync_app_logged(s: &AppState, app_guid: &str) {
    if let Err(e) = sync_app(s, app_guid).await {
        tracing::warn!(app_guid, error = %e, "desired state not sent; the resync will retry");
    }
}

/// Stop everything of an app at the scheduler.
pub async fn remove_app(s: &AppState, app_guid: &str) -> ApiResult<()> {
    let path = format!("/v1/desired_lrps?log_guid={app_guid}");
    let res = call(s, &path, |u| s.http.get(u)).await?;
    let have: Vec<DesiredLrp> = res.json().await.map_err(unavailable)?;
    for old in have {
        let path = format!("/v1/desired_lrps/{}", old.process_guid);
        call(s, &path, |u| s.http.delete(u)).await?;
    }
    Ok(())
}

/// Instances of one desired LRP as the scheduler sees them.
pub async fn actual(s: &AppState, lrp_guid: &str) -> ApiResult<Vec<ActualLrp>> {
    let path = format!("/v1/actual_lrps?process_guid={lrp_guid}");
    let res = call(s, &path, |u| s.http.get(u)).await?;
    if !res.status().is_success() {
        return Err(unavailable(format!("listing instances answered {}", res.status())));
    }
    res.json().await.map_err(unavailable)
}

pub async fn restart_instance(s: &AppState, lrp_guid: &str, index: u32) -> ApiResult<()> {
    let path = format!("/v1/actual_lrps/{lrp_guid}/{index}");
    let res = call(s, &path, |u| s.http.delete(u)).await?;
    if res.status() == reqwest::StatusCode::NOT_FOUND {
        return Err(ApiError::NotFound("Instance"));
    }
    if !res.status().is_success() {
        return Err(unavailable(format!("restarting the instance answered {}", res.status())));
    }
    Ok(())
}

/// One pass: every started app synced, desired LRPs of apps that no longer run removed.
pub async fn resync(s: &AppState) -> ApiResult<usize> {
    let started = store::apps::started_guids(&s.db.pool).await?;
    for app in &started {
        sync_app(s, app).await?;
    }
    let path = format!("/v1/desired_lrps?domain={}", wire::lrp::CF_APPS_DOMAIN);
    let res = call(s, &path, |u| s.http.get(u)).await?;
    let have: Vec<DesiredLrp> = res.json().await.map_err(unavailable)?;
    for orphan in have.iter().filter(|d| !started.contains(&d.log_guid)) {
        let path = format!("/v1/desired_lrps/{}", orphan.process_guid);
        call(s, &path, |u| s.http.delete(u)).await?;
    }
    Ok(started.len())
}
