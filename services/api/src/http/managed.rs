//! Managed service instances and their credential bindings (app bindings and service keys):
//! the requests are checked here, the broker calls run as jobs (`domain::managed`) and the
//! instance's or binding's `last_operation` tells how they went.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use wire::v3::service_instance::ServiceInstanceRelationships;
use wire::v3::{self, LastOperation, Link, Metadata, OperationType, ToOne};

use crate::access::{Caller, Need};
use crate::domain::brokers::{self, Catalog};
use crate::domain::events::{self, Actor};
use crate::domain::feature_flags::{self as flags, Flag};
use crate::domain::managed::{self, Target};
use crate::domain::osb;
use crate::error::{ApiError, ApiResult};
use crate::http::util::{check_name, links, ts};
use crate::store::apps::App;
use crate::store::services::{Binding, Instance, Operation};
use crate::store::spaces::Space;
use crate::store::{self, new_guid, now_ms};
use crate::AppState;

/// A stored last operation as CC shows it (`None` when there is none).
pub fn last_operation(op: &Operation, created_at: i64) -> Option<LastOperation> {
    let kind = OperationType::parse(&op.kind)?;
    let state = wire::v3::OperationState::parse(&op.state)?;
    Some(LastOperation {
        kind,
        state,
        description: (!op.description.is_empty()).then(|| op.description.clone()),
        created_at: ts(created_at),
        updated_at: ts(op.updated_at.max(created_at)),
    })
}

/// Whether the plan's version (`plan`: its `maintenance_info`) is newer than the instance's.
fn upgrade_available(i: &Instance, plan: Option<&Value>) -> bool {
    let version = |m: &Value| m.get("version").and_then(Value::as_str).and_then(brokers::semver);
    let Some(offered) = plan.and_then(version) else { return false };
    match version(&i.maintenance_info) {
        None => true,
        Some(have) => {
            let key = |v: &(u64, u64, u64, String)| (v.0, v.1, v.2, v.3.is_empty(), v.3.clone());
            key(&offered) > key(&have)
        }
    }
}

pub fn present(i: &Instance, s: &AppState, plan_version: Option<&Value>) -> v3::ServiceInstance {
    let base = format!("{}/service_instances/{}", s.v3(), i.guid);
    v3::ServiceInstance {
        guid: i.guid.clone(),
        created_at: ts(i.created_at),
        updated_at: ts(i.updated_at),
        name: i.name.clone(),
        kind: "managed".into(),
        tags: i.tags.clone(),
        syslog_drain_url: None,
        route_service_url: None,
        dashboard_url: (!i.dashboard_url.is_empty()).then(|| i.dashboard_url.clone()),
        maintenance_info: Some(i.maintenance_info.clone()),
        upgrade_available: Some(upgrade_available(i, plan_version)),
        last_operation: last_operation(&i.op, i.created_at),
        relationships: ServiceInstanceRelationships {
            space: ToOne::of(&i.space_guid),
            service_plan: Some(ToOne::of(&i.plan_guid)),
        },
        metadata: Metadata::default(),
        links: links([
            ("self", Link::new(base.clone())),
            ("space", Link::new(format!("{}/spaces/{}", s.v3(), i.space_guid))),
            ("service_plan", Link::new(format!("{}/service_plans/{}", s.v3(), i.plan_guid))),
            ("parameters", Link::new(format!("{base}/parameters"))),
            (
                "service_credential_bindings",
                Link::new(format!(
                    "{}/service_credential_bindings?service_instance_guids={}",
                    s.v3(),
                    i.guid
                )),
            ),
        ]),
    }
}

fn bad(m: &str) -> ApiError {
    ApiError::Unprocessable(m.to_owned())
}

fn parameters_of(req: &Value) -> ApiResult<Option<Value>> {
    match req.get("parameters") {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
        Some(_) => Err(bad("Parameters must be an object")),
    }
}

fn tags_of(req: &Value) -> ApiResult<Option<Vec<String>>> {
    match req.get("tags") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_array()
            .and_then(|a| a.iter().map(|t| t.as_str().map(str::to_owned)).collect())
            .map(Some)
            .ok_or_else(|| bad("Tags must be a list of strings")),
    }
}

fn invalid_plan() -> ApiError {
    bad("Invalid service plan. Ensure that the service plan exists, is available, and you have access to it.")
}

fn busy(i: &Instance) -> ApiResult<()> {
    if i.op.state == "in progress" {
        return Err(bad(&format!("An operation for service instance {} is in progress.", i.name)));
    }
    Ok(())
}

/// A plan usable in `space` by the caller: an admin may use any but a space-scoped broker's
/// plan outside its space.
async fn usable_plan(s: &AppState, c: &Caller, guid: &str, space: &Space) -> ApiResult<Target> {
    let cat = Catalog::load(s).await?;
    let plan = cat.plans.iter().find(|p| p.guid == guid).ok_or_else(invalid_plan)?;
    let usable = cat.plan_in_space(plan, &space.org_guid, &space.guid);
    if !usable && (!c.admin() || plan.visibility == "space") {
        return Err(invalid_plan());
    }
    if !plan.active {
        return Err(bad(&format!(
            "Invalid service plan. The service plan '{}' with guid '{}' has been removed from the service broker's catalog. It is not possible to create new service instances using this plan.",
            plan.name, plan.guid
        )));
    }
    Target::of_plan(s, guid).await
}

/// `POST /v3/service_instances` with `type: managed`: the instance at once (last operation
/// `create in progress`) and a job that provisions it.
pub async fn create(s: &AppState, c: &Caller, req: &Value) -> ApiResult<Response> {
    let name = match req.get("name") {
        Some(Value::String(n)) => {
            check_name(n, "Service instance")?;
            n.clone()
        }
        _ => return Err(bad("Name must be a string")),
    };
    let parameters = parameters_of(req)?.unwrap_or_else(|| json!({}));
    let tags = tags_of(req)?.unwrap_or_default();
    let space_guid = crate::http::util::rel_guid(req, "space")?;
    let invalid_space =
        || bad("Invalid space. Ensure that the space exists and you have access to it.");
    let space = store::spaces::find(&s.db.pool, &space_guid).await?.ok_or_else(invalid_space)?;
    if !c.space_readable(&space.guid, &space.org_guid).await? {
        return Err(invalid_space());
    }
    c.require_space(&space.guid, &space.org_guid, "Space", Need::Developer).await?;
    let plan_guid = crate::http::util::rel_guid(req, "service_plan")?;
    let target = usable_plan(s, c, &plan_guid, &space).await?;
    flags::require(s, c, Flag::ServiceInstanceCreation).await?;
    let now = now_ms();
    let i = Instance {
        guid: new_guid(),
        name,
        space_guid: space.guid.clone(),
        credentials: json!({}),
        tags,
        syslog_drain_url: String::new(),
        route_service_url: String::new(),
        kind: "managed".into(),
        plan_guid: target.plan.guid.clone(),
        parameters,
        dashboard_url: String::new(),
        maintenance_info: managed::maintenance_info(&target.plan).unwrap_or_else(|| json!({})),
        op: Operation {
            kind: "create".into(),
            state: "in progress".into(),
            updated_at: now,
            ..Default::default()
        },
        created_at: now,
        updated_at: now,
    };
    crate::domain::services::create_instance(s, &i).await?;
    events::record(
        s,
        "audit.service_instance.create",
        &Actor::of(c),
        &space.target(&i.guid, "service_instance", &i.name),
        json!({"request": {"name": i.name, "service_plan_guid": i.plan_guid, "tags": i.tags}}),
    )
    .await;
    let (s2, org, user) = (s.clone(), space.org_guid.clone(), c.guid().to_owned());
    let i2 = i.clone();
    let work = async move { managed::provision(&s2, &i2, &target, &org, &user).await };
    let job = crate::domain::jobs::spawn(
        s,
        "service_instance.create",
        "service_instances",
        &i.guid,
        work,
    )
    .await?;
    Ok(crate::http::jobs::accepted(s, &job))
}

/// `PATCH`: name and tags at once (200); a new plan or parameters through the broker (202).
pub async fn update(
    s: &AppState,
    c: &Caller,
    mut i: Instance,
    space: &Space,
    req: &Value,
) -> ApiResult<Response> {
    busy(&i)?;
    for k in ["credentials", "syslog_drain_url", "route_service_url"] {
        if req.get(k).is_some() {
            return Err(bad(&format!("Unknown field(s): '{k}'")));
        }
    }
    if let Some(v) = req.get("name").filter(|v| !v.is_null()) {
        let n = v.as_str().ok_or_else(|| bad("Name must be a string"))?;
        check_name(n, "Service instance")?;
        i.name = n.to_owned();
    }
    if let Some(t) = tags_of(req)? {
        i.tags = t;
    }
    let parameters = parameters_of(req)?;
    let current = Target::of_plan(s, &i.plan_guid).await?;
    let new_plan = match req.pointer("/relationships/service_plan") {
        None | Some(Value::Null) => None,
        Some(_) => {
            let g = crate::http::util::rel_guid(req, "service_plan")?;
            let t = usable_plan(s, c, &g, space).await?;
            if t.offering.guid != current.offering.guid {
                return Err(bad("The service plan must be of the instance's service offering."));
            }
            if !current.offering.plan_updateable && t.plan.guid != current.plan.guid {
                return Err(bad("The service does not support changing plans."));
            }
            (t.plan.guid != current.plan.guid).then_some(t.plan)
        }
    };
    let upgrade = upgrade_of(&i, &current, new_plan.as_ref(), req)?;
    if parameters.is_some() && !current.plan.active {
        return Err(bad(
            "Cannot update parameters of a service instance that belongs to inaccessible plan",
        ));
    }
    i.updated_at = now_ms().max(i.created_at + 1);
    crate::domain::services::update_instance(s, &i, false).await?;
    events::record(
        s,
        "audit.service_instance.update",
        &Actor::of(c),
        &space.target(&i.guid, "service_instance", &i.name),
        json!({"request": {"fields": req.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>())}}),
    )
    .await;
    let version = managed::maintenance_info(&current.plan);
    if new_plan.is_none() && parameters.is_none() && upgrade.is_none() {
        let mut op = Operation { kind: "update".into(), state: "succeeded".into(), ..i.op.clone() };
        op.updated_at = i.updated_at;
        store::services::set_operation(&s.db.pool, &i.guid, &op).await?;
        i.op = op;
        return Ok(Json(present(&i, s, version.as_ref())).into_response());
    }
    let op = Operation {
        kind: "update".into(),
        state: "in progress".into(),
        updated_at: now_ms(),
        ..Default::default()
    };
    store::services::set_operation(&s.db.pool, &i.guid, &op).await?;
    let (s2, org, user, i2) = (s.clone(), space.org_guid.clone(), c.guid().to_owned(), i.clone());
    let change = managed::Change { plan: new_plan, parameters, maintenance_info: upgrade };
    let work = async move { managed::update(&s2, &i2, &current, &change, &org, &user).await };
    let job = crate::domain::jobs::spawn(
        s,
        "service_instance.update",
        "service_instances",
        &i.guid,
        work,
    )
    .await?;
    Ok(crate::http::jobs::accepted(s, &job))
}

/// The `maintenance_info` an update asks for, checked as CC does: only the version the
/// instance's plan offers now, never with a change of plan. `None`: no upgrade (not asked, or
/// the instance has that version already).
fn upgrade_of(
    i: &Instance,
    current: &Target,
    new_plan: Option<&crate::store::brokers::Plan>,
    req: &Value,
) -> ApiResult<Option<Value>> {
    let asked = match req.get("maintenance_info") {
        None | Some(Value::Null) => return Ok(None),
        Some(m) => m
            .get("version")
            .and_then(Value::as_str)
            .filter(|_| m.is_object())
            .ok_or_else(|| bad("Maintenance info version must be a string"))?,
    };
    if new_plan.is_some() {
        return Err(bad(
            "maintenance_info should not be changed when switching to different plan.",
        ));
    }
    let Some(offered) = managed::maintenance_info(&current.plan) else {
        return Err(bad(
            "The service broker does not support upgrades for service instances created from this plan.",
        ));
    };
    if offered.get("version").and_then(Value::as_str) != Some(asked) {
        return Err(bad("maintenance_info.version requested is invalid. Please ensure the catalog is up to date and you are providing a version supported by this service plan."));
    }
    Ok((i.maintenance_info.get("version").and_then(Value::as_str) != Some(asked))
        .then_some(offered))
}

/// `DELETE`: unbind and deprovision through the broker (202); with `purge=true` the
/// platform forgets the instance without asking the broker (admins, or developers for a
/// space-scoped broker's instance).
pub async fn remove(
    s: &AppState,
    c: &Caller,
    i: Instance,
    space: &Space,
    purge: bool,
) -> ApiResult<Response> {
    let target = Target::of_plan(s, &i.plan_guid).await?;
    let t = space.target(&i.guid, "service_instance", &i.name);
    if purge {
        if !c.admin() && target.broker.space_guid != space.guid {
            return Err(ApiError::NotAuthorized);
        }
        forget_instance(s, &i.guid, &Actor::of(c)).await?;
        events::record(s, "audit.service_instance.purge", &Actor::of(c), &t, json!({})).await;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    busy(&i)?;
    let op = Operation {
        kind: "delete".into(),
        state: "in progress".into(),
        updated_at: now_ms(),
        ..Default::default()
    };
    store::services::set_operation(&s.db.pool, &i.guid, &op).await?;
    events::record(s, "audit.service_instance.delete", &Actor::of(c), &t, json!({})).await;
    let (s2, user) = (s.clone(), c.guid().to_owned());
    let guid = i.guid.clone();
    let work = async move { managed::deprovision(&s2, &i, &target, &user).await };
    let job =
        crate::domain::jobs::spawn(s, "service_instance.delete", "service_instances", &guid, work)
            .await?;
    Ok(crate::http::jobs::accepted(s, &job))
}

/// `POST /v3/service_credential_bindings` for a managed instance: an app binding (`app`) or
/// a service key (`None`), made by the broker in a job.
pub async fn bind(
    s: &AppState,
    c: &Caller,
    req: &Value,
    i: Instance,
    space: &Space,
    app: Option<App>,
    name: String,
) -> ApiResult<Response> {
    c.require_space(&space.guid, &space.org_guid, "Service instance", Need::Developer).await?;
    if app.is_none() && name.is_empty() {
        return Err(bad("Name must be a string"));
    }
    let parameters = parameters_of(req)?.unwrap_or_else(|| json!({}));
    let target = Target::of_plan(s, &i.plan_guid).await?;
    if !target.plan.bindable {
        return Err(bad("Service plan does not allow bindings."));
    }
    if i.op.state != "succeeded" && !(i.op.kind == "update" && i.op.state == "failed") {
        return Err(bad(&format!(
            "The service instance {} is not ready to be bound: its last operation is {} {}.",
            i.name, i.op.kind, i.op.state
        )));
    }
    let now = now_ms();
    let b = Binding {
        guid: new_guid(),
        kind: if app.is_some() { "app" } else { "key" }.into(),
        name,
        app_guid: app.as_ref().map(|a| a.guid.clone()).unwrap_or_default(),
        instance_guid: i.guid.clone(),
        credentials: None,
        parameters,
        op: Operation {
            kind: "create".into(),
            state: "in progress".into(),
            updated_at: now,
            ..Default::default()
        },
        created_at: now,
        updated_at: now,
    };
    let taken = if app.is_some() {
        "The app is already bound to the service instance".to_owned()
    } else {
        format!("The binding name is invalid. Key binding names must be unique. The service instance already has a key binding with name '{}'.", b.name)
    };
    store::services::insert_binding(&s.db.pool, &b, || ApiError::Unprocessable(taken)).await?;
    let (kind, t) = match &app {
        Some(a) => ("audit.service_binding.create", space.target(&a.guid, "app", &a.name)),
        None => ("audit.service_key.create", space.target(&b.guid, "service_key", &b.name)),
    };
    events::record(
        s,
        kind,
        &Actor::of(c),
        &t,
        json!({"request": {"service_instance_guid": i.guid, "binding_guid": b.guid}}),
    )
    .await;
    let (s2, org, user) = (s.clone(), space.org_guid.clone(), c.guid().to_owned());
    let guid = b.guid.clone();
    let work = async move { managed::bind(&s2, &b, &i, &target, &org, &user).await };
    let job = crate::domain::jobs::spawn(
        s,
        "service_bindings.create",
        "service_credential_bindings",
        &guid,
        work,
    )
    .await?;
    Ok(crate::http::jobs::accepted(s, &job))
}

/// `DELETE /v3/service_credential_bindings/:guid` of a managed instance: unbound by the
/// broker in a job.
pub async fn unbind(
    s: &AppState,
    c: &Caller,
    b: Binding,
    i: Instance,
    space: &Space,
) -> ApiResult<Response> {
    let target = Target::of_plan(s, &i.plan_guid).await?;
    let kind =
        if b.kind == "key" { "audit.service_key.delete" } else { "audit.service_binding.delete" };
    events::record(
        s,
        kind,
        &Actor::of(c),
        &space.target(&b.guid, "service_binding", &b.name),
        json!({"request": {"binding_guid": b.guid}}),
    )
    .await;
    let (s2, user, guid) = (s.clone(), c.guid().to_owned(), b.guid.clone());
    let work = async move { managed::unbind(&s2, &b, &i, &target, &user).await };
    let job = crate::domain::jobs::spawn(
        s,
        "service_bindings.delete",
        "service_credential_bindings",
        &guid,
        work,
    )
    .await?;
    Ok(crate::http::jobs::accepted(s, &job))
}

/// `GET /v3/service_instances/:guid/parameters`: from the broker when it can tell them
/// (`instances_retrievable`), else the parameters the platform sent.
pub async fn parameters(s: &AppState, c: &Caller, i: &Instance) -> ApiResult<Value> {
    if !i.managed() {
        return Err(bad(
            "This service instance does not support fetching parameters (it is user-provided).",
        ));
    }
    let t = Target::of_plan(s, &i.plan_guid).await?;
    if !t.offering.instances_retrievable {
        return Ok(i.parameters.clone());
    }
    let path = format!("/v2/service_instances/{}", i.guid);
    let (_, v, _) = osb::call(s, &t.broker, reqwest::Method::GET, &path, &[], None, c.guid())
        .await
        .map_err(|f| f.into_error(&t.broker.name))?;
    Ok(v.get("parameters").cloned().unwrap_or_else(|| json!({})))
}

/// `GET /v3/service_credential_bindings/:guid/parameters`: from the broker when it can tell
/// them (`bindings_retrievable`), else the parameters sent.
pub async fn binding_parameters(
    s: &AppState,
    c: &Caller,
    b: &Binding,
    i: &Instance,
) -> ApiResult<Value> {
    if !i.managed() {
        return Err(bad("This service does not support fetching service binding parameters."));
    }
    let t = Target::of_plan(s, &i.plan_guid).await?;
    if !t.offering.bindings_retrievable {
        return Ok(b.parameters.clone());
    }
    let path = format!("/v2/service_instances/{}/service_bindings/{}", i.guid, b.guid);
    let (_, v, _) = osb::call(s, &t.broker, reqwest::Method::GET, &path, &[], None, c.guid())
        .await
        .map_err(|f| f.into_error(&t.broker.name))?;
    Ok(v.get("parameters").cloned().unwrap_or_else(|| json!({})))
}

/// Remove an instance with its bindings to apps and routes (user-provided instances need no
/// broker; a purged managed one is not asked), as CC does: the route bindings' audit events,
/// their routes' apps resynced.
pub async fn forget_instance(s: &AppState, guid: &str, actor: &Actor) -> ApiResult<()> {
    let space = match store::services::find(&s.db.pool, guid).await? {
        Some(i) => crate::store::spaces::find(&s.db.pool, &i.space_guid).await?,
        None => None,
    };
    let deleted = crate::domain::services::delete_instance(s, guid).await?;
    if let Some(space) = space {
        for b in &deleted.route_bindings {
            crate::http::route_bindings::record_unbind(s, b, &space, actor).await;
        }
    }
    crate::http::routes::resync(s, &deleted.resync).await;
    Ok(())
}
