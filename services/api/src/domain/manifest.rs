//! Manifest apply after the 202: for each app in order, its lifecycle and env, then each
//! process (created when missing; command, health check, scale), then its routes (explicit,
//! none, or a default or random route on the org's default domain), its service bindings
//! (`services:`, managed ones through the broker), an audit event and a desired-state sync. The first app that fails fails the job, naming the app.

use manifest::{AppManifest, ProcessSpec};
use rand::seq::SliceRandom as _;
use serde_json::json;

use crate::domain::events::Actor;
use crate::domain::{apps, desired};
use crate::error::{ApiError, ApiResult};
use crate::store::spaces::Space;
use crate::store::{self, apps::App};
use crate::AppState;

/// Apply each app's manifest entry in a job on the task tracker; the job's guid.
pub async fn spawn_apply(
    s: &AppState,
    space: Space,
    apps: Vec<(App, AppManifest)>,
    actor: Actor,
) -> ApiResult<String> {
    let (s2, space_guid) = (s.clone(), space.guid.clone());
    let work = async move {
        for (app, am) in apps {
            if let Err(e) = apply_app(&s2, &space, app, &am, &actor).await {
                let detail = format!("For application '{}': {}", am.name, e);
                return Err(match e {
                    ApiError::Internal(d) => ApiError::Internal(format!("{detail} ({d})")),
                    _ => ApiError::Unprocessable(detail),
                });
            }
        }
        Ok(())
    };
    Box::pin(crate::domain::jobs::spawn(s, "space.apply_manifest", "spaces", &space_guid, work))
        .await
}

/// Everything apply_manifest does for one app after the 202.
async fn apply_app(
    s: &AppState,
    space: &Space,
    mut app: App,
    am: &AppManifest,
    actor: &Actor,
) -> ApiResult<()> {
    let mut changed_app = false;
    if let Some(bps) = am.requested_buildpacks() {
        crate::domain::staging::check_names(s, &bps).await?;
        app.buildpacks = bps;
        changed_app = true;
    }
    if let Some(st) = &am.stack {
        if !s.config.stacks.contains(st) {
            return Err(ApiError::Unprocessable(format!("Stack '{st}' does not exist")));
        }
        app.stack = st.clone();
        changed_app = true;
    }
    let env = am.env_strings();
    if !env.is_empty() {
        app.env.extend(env);
        changed_app = true;
    }
    if changed_app {
        apps::save(s, &mut app).await?;
    }
    for spec in am.process_specs() {
        apply_process(s, space, &app, &spec).await?;
    }
    apply_routes(s, space, &app, am, actor).await?;
    apply_services(s, space, &app, am, actor).await?;
    let t = space.target(&app.guid, "app", &app.name);
    crate::domain::events::record(
        s,
        "audit.app.apply_manifest",
        actor,
        &t,
        json!({"manifest": serde_json::to_value(am).unwrap_or_default()}),
    )
    .await;
    desired::sync_app_logged(s, &app.guid).await;
    Ok(())
}

async fn apply_process(
    s: &AppState,
    space: &Space,
    app: &App,
    spec: &ProcessSpec,
) -> ApiResult<()> {
    let mut p =
        match store::processes::find_by_type(&s.db.pool, &app.guid, &spec.process_type).await? {
            Some(p) => p,
            None => apps::create_process(s, app, &spec.process_type).await?,
        };
    if let Some(cmd) = &spec.command {
        p.command = cmd.clone().filter(|c| !c.trim().is_empty());
    }
    let h = &spec.health;
    let mut hv = json!({"data": {}});
    if let Some(t) = &h.health_check_type {
        hv["type"] = json!(t);
    }
    if let Some(e) = &h.health_check_http_endpoint {
        hv["data"]["endpoint"] = json!(e);
    }
    if let Some(t) = h.health_check_invocation_timeout {
        hv["data"]["invocation_timeout"] = json!(t);
    }
    if let Some(t) = h.health_check_interval {
        hv["data"]["interval"] = json!(t);
    }
    if let Some(t) = h.timeout {
        hv["data"]["timeout"] = json!(t);
    }
    apps::apply_health(&mut p.health, &hv)?;
    apps::save_process(s, &mut p).await?;
    let mem = spec.memory_mb.and_then(|m| i64::try_from(m).ok());
    let disk = spec.disk_mb.and_then(|d| i64::try_from(d).ok());
    if spec.instances.is_some() || mem.is_some() || disk.is_some() || spec.log_rate_bps.is_some() {
        let to = apps::ScaleTo {
            instances: spec.instances,
            memory: mem,
            disk,
            log_rate: spec.log_rate_bps,
        };
        apps::apply_scale(s, &mut p, app, &space.org_guid, to).await?;
    }
    Ok(())
}

async fn apply_routes(
    s: &AppState,
    space: &Space,
    app: &App,
    am: &AppManifest,
    actor: &Actor,
) -> ApiResult<()> {
    if am.no_route == Some(true) {
        store::routes::unmap_app(&s.db.pool, &app.guid).await?;
        return Ok(());
    }
    if let Some(routes) = &am.routes {
        for entry in routes {
            let spec = manifest::parse_route(&entry.route)
                .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
            if spec.port.is_some() {
                return Err(ApiError::Unprocessable(format!(
                    "Route '{}': TCP routes are not offered by this platform",
                    entry.route
                )));
            }
            let mut found = None;
            for (host, domain) in spec.candidates() {
                if let Some(d) =
                    crate::store::domains::find_by_name(&s.db.pool, &domain.to_ascii_lowercase())
                        .await?
                {
                    found = Some((host, d));
                    break;
                }
            }
            let (host, domain) = found.ok_or_else(|| {
                ApiError::Unprocessable(format!("No domains exist for route {}", entry.route))
            })?;
            let route = crate::domain::routing::find_or_create_route(
                s, space, &domain, &host, &spec.path, actor,
            )
            .await?;
            let protocol = entry.protocol.clone().unwrap_or_else(|| "http1".into());
            crate::domain::routing::map_route(s, &route, &app.guid, "web", &protocol).await?;
        }
        return Ok(());
    }
    if store::routes::app_has_routes(&s.db.pool, &app.guid).await? {
        return Ok(());
    }
    let random = am.random_route == Some(true);
    if !random && am.default_route != Some(true) {
        return Ok(());
    }
    let domain = crate::store::domains::default_for(&s.db.pool, &space.org_guid)
        .await?
        .ok_or_else(|| {
            ApiError::Unprocessable(
                "No default domain exists; an admin must create a shared domain.".into(),
            )
        })?;
    let base = app.name.to_ascii_lowercase();
    if !random && !base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(ApiError::Unprocessable(format!(
            "Failed to create default route: the app name '{}' is not a valid host name; set 'routes' or 'random-route'",
            app.name
        )));
    }
    let host = if random { random_host(&base) } else { base };
    let route =
        crate::domain::routing::find_or_create_route(s, space, &domain, &host, "", actor).await?;
    crate::domain::routing::map_route(s, &route, &app.guid, "web", "http1").await
}

fn random_host(name: &str) -> String {
    const ADJ: [&str; 12] = [
        "brave", "calm", "daring", "eager", "fancy", "gentle", "happy", "jolly", "kind", "lively",
        "proud", "silly",
    ];
    const NOUN: [&str; 12] = [
        "badger", "camel", "dolphin", "eagle", "ferret", "gecko", "heron", "ibex", "jaguar",
        "koala", "lemur", "otter",
    ];
    let mut rng = rand::thread_rng();
    let letters: String = (0..2)
        .map(|_| *b"abcdefghijklmnopqrstuvwxyz".choose(&mut rng).unwrap_or(&b'a') as char)
        .collect();
    let clean: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    format!(
        "{}-{}-{}-{letters}",
        if clean.is_empty() { "app" } else { &clean },
        ADJ.choose(&mut rng).unwrap_or(&"calm"),
        NOUN.choose(&mut rng).unwrap_or(&"otter")
    )
}

/// `services:`: bind each named instance of the space the app is not bound to yet (with the
/// entry's `binding_name` and, for managed instances, `parameters`, through the broker).
async fn apply_services(
    s: &AppState,
    space: &Space,
    app: &App,
    am: &AppManifest,
    actor: &Actor,
) -> ApiResult<()> {
    use crate::store::services::{Binding, Operation};
    for entry in am.services.iter().flatten() {
        let name = entry.name();
        let i = store::services::find_in_space(&s.db.pool, &space.guid, name).await?.ok_or_else(
            || ApiError::Unprocessable(format!("Service instance '{name}' not found")),
        )?;
        if store::services::app_bound(&s.db.pool, &app.guid, &i.guid).await? {
            continue;
        }
        let (binding_name, parameters) = match entry {
            manifest::ServiceEntry::Name(_) => (String::new(), None),
            manifest::ServiceEntry::Binding(b) => (
                b.binding_name.clone().unwrap_or_default(),
                b.parameters.as_ref().map(|p| json!(p)),
            ),
        };
        if parameters.is_some() && !i.managed() {
            return Err(ApiError::Unprocessable(
                "Binding parameters are not supported for user-provided service instances".into(),
            ));
        }
        let now = store::now_ms();
        let managed = i.managed();
        let b = Binding {
            guid: store::new_guid(),
            kind: "app".into(),
            name: binding_name,
            app_guid: app.guid.clone(),
            instance_guid: i.guid.clone(),
            credentials: None,
            parameters: parameters.unwrap_or_else(|| json!({})),
            op: Operation {
                kind: "create".into(),
                state: if managed { "in progress" } else { "succeeded" }.into(),
                updated_at: now,
                ..Default::default()
            },
            created_at: now,
            updated_at: now,
        };
        crate::domain::services::bind(s, &b).await?;
        if managed {
            let t = crate::domain::managed::Target::of_plan(s, &i.plan_guid).await?;
            crate::domain::managed::bind(s, &b, &i, &t, &space.org_guid, &actor.guid).await?;
        }
        crate::domain::events::record(
            s,
            "audit.service_binding.create",
            actor,
            &space.target(&app.guid, "app", &app.name),
            json!({"request": {"service_instance_guid": i.guid, "binding_guid": b.guid}}),
        )
        .await;
    }
    Ok(())
}
