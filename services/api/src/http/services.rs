//! User-provided service instances (`/v3/service_instances`, docs/api.md) and their bindings
//! to apps (`/v3/service_credential_bindings`). Bindings put the
//! instance's credentials into the app's `VCAP_SERVICES` (at the next staging or start) and
//! its `syslog_drain_url` into the drain list the logs service reads
//! (`GET /internal/v1/syslog_drains`, at once). An instance's `route_service_url` makes it a
//! route service (`route_bindings`). Managed instances are provisioned through their broker
//! ([`crate::http::managed`]).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use wire::v3::service_binding::CredentialBindingRelationships;
use wire::v3::service_instance::ServiceInstanceRelationships;
use wire::v3::{self, Included, LastOperation, Link, Metadata, OperationType, Page, ToOne};

use crate::access::{Caller, Need};
use crate::domain::events::{self, Actor};
use crate::domain::feature_flags::{self as flags, Flag};
use crate::domain::managed::{plan_versions, PlanVersions};
use crate::domain::services;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::list::{List, Table};
use crate::http::managed::last_operation;
use crate::http::util::{check_name, created, links, ts};
use crate::store::services::{Binding, Instance, Operation};
use crate::store::spaces::Space;
use crate::store::{self, new_guid, now_ms};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/service_instances", get(list).post(create))
        .route("/v3/service_instances/{guid}", get(show).patch(update).delete(remove))
        .route("/v3/service_instances/{guid}/credentials", get(credentials))
        .route("/v3/service_instances/{guid}/parameters", get(parameters))
        .route("/v3/service_credential_bindings", get(list_bindings).post(bind))
        .route("/v3/service_credential_bindings/{guid}", get(show_binding).delete(unbind))
        .route("/v3/service_credential_bindings/{guid}/details", get(binding_details))
        .route("/v3/service_credential_bindings/{guid}/parameters", get(binding_parameters))
}

/// `Some(v)` unless `v` is empty (CC's `null`).
fn non_empty(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_owned())
}

impl Instance {
    /// As CC shows it; `versions`: the plans' `maintenance_info` (for managed instances'
    /// `upgrade_available`).
    pub fn present(&self, s: &AppState, versions: &PlanVersions) -> v3::ServiceInstance {
        if self.managed() {
            return crate::http::managed::present(self, s, versions.get(&self.plan_guid));
        }
        let base = format!("{}/service_instances/{}", s.v3(), self.guid);
        let op_type = if self.updated_at > self.created_at {
            OperationType::Update
        } else {
            OperationType::Create
        };
        v3::ServiceInstance {
            guid: self.guid.clone(),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            name: self.name.clone(),
            kind: "user-provided".into(),
            tags: self.tags.clone(),
            syslog_drain_url: non_empty(&self.syslog_drain_url),
            route_service_url: non_empty(&self.route_service_url),
            dashboard_url: None,
            maintenance_info: None,
            upgrade_available: None,
            last_operation: Some(LastOperation::succeeded(
                op_type,
                Some("Operation succeeded"),
                ts(self.updated_at),
                ts(self.updated_at),
            )),
            relationships: ServiceInstanceRelationships {
                space: ToOne::of(&self.space_guid),
                service_plan: None,
            },
            metadata: Metadata::default(),
            links: links([
                ("self", Link::new(base.clone())),
                ("space", Link::new(format!("{}/spaces/{}", s.v3(), self.space_guid))),
                ("credentials", Link::new(format!("{base}/credentials"))),
                (
                    "service_credential_bindings",
                    Link::new(format!(
                        "{}/service_credential_bindings?service_instance_guids={}",
                        s.v3(),
                        self.guid
                    )),
                ),
                (
                    "service_route_bindings",
                    Link::new(format!(
                        "{}/service_route_bindings?service_instance_guids={}",
                        s.v3(),
                        self.guid
                    )),
                ),
            ]),
        }
    }
}

/// Whether the caller reads a space the instance is shared into.
pub(crate) async fn readable_through_share(
    s: &AppState,
    c: &Caller,
    i: &Instance,
) -> ApiResult<bool> {
    for sp in store::services::shared_spaces(&s.db.pool, &i.guid).await? {
        if let Some(space) = crate::store::spaces::find(&s.db.pool, &sp).await? {
            if c.space_readable(&space.guid, &space.org_guid).await? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The instance and its space if the caller may read it (404 otherwise) and has `need`. An
/// instance shared into a space the caller reads may be read, not changed.
pub(crate) async fn require(
    s: &AppState,
    c: &Caller,
    guid: &str,
    need: Need,
) -> ApiResult<(Instance, Space)> {
    const WHAT: &str = "Service instance";
    let i = store::services::find(&s.db.pool, guid).await?.ok_or(ApiError::NotFound(WHAT))?;
    let space = crate::store::spaces::find(&s.db.pool, &i.space_guid)
        .await?
        .ok_or(ApiError::NotFound(WHAT))?;
    if !c.space_readable(&space.guid, &space.org_guid).await?
        && readable_through_share(s, c, &i).await?
    {
        return if need == Need::Read { Ok((i, space)) } else { Err(ApiError::NotAuthorized) };
    }
    c.require_space(&space.guid, &space.org_guid, WHAT, need).await?;
    Ok((i, space))
}

/// The fields a create or update may set; `None` = not given.
#[derive(Debug, Default)]
struct Fields {
    name: Option<String>,
    credentials: Option<Value>,
    tags: Option<Vec<String>>,
    syslog_drain_url: Option<String>,
    route_service_url: Option<String>,
}

fn fields(req: &Value) -> ApiResult<Fields> {
    let bad = |m: &str| ApiError::Unprocessable(m.to_owned());
    let mut f = Fields::default();
    if let Some(v) = req.get("name").filter(|v| !v.is_null()) {
        let n = v.as_str().ok_or_else(|| bad("Name must be a string"))?;
        check_name(n, "Service instance")?;
        f.name = Some(n.to_owned());
    }
    if let Some(v) = req.get("credentials").filter(|v| !v.is_null()) {
        if !v.is_object() {
            return Err(bad("Credentials must be an object"));
        }
        f.credentials = Some(v.clone());
    }
    if let Some(v) = req.get("tags").filter(|v| !v.is_null()) {
        let tags = v
            .as_array()
            .and_then(|a| {
                a.iter().map(|t| t.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| bad("Tags must be a list of strings"))?;
        if tags.iter().map(String::len).sum::<usize>() > 2048 {
            return Err(bad("Tags are too long (maximum is 2048 characters)"));
        }
        f.tags = Some(tags);
    }
    if let Some(v) = req.get("syslog_drain_url").filter(|v| !v.is_null()) {
        let u = v.as_str().ok_or_else(|| bad("Syslog drain url must be a string"))?;
        f.syslog_drain_url = Some(services::check_drain_url(u)?);
    }
    if let Some(v) = req.get("route_service_url").filter(|v| !v.is_null()) {
        let u = v.as_str().ok_or_else(|| bad("Route service url must be a string"))?;
        services::check_route_service_url(u)?;
        f.route_service_url = Some(u.to_owned());
    }
    Ok(f)
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::ServiceInstance>>> {
    const FILTERS: [&str; 7] = [
        "guids",
        "names",
        "type",
        "space_guids",
        "organization_guids",
        "label_selector",
        "service_plan_guids",
    ];
    let table = Table::with("service_instances", store::services::select());
    let mut list = List::parse(&s, q.as_deref(), "service_instances", table, &FILTERS, &["name"])?
        .filter("guids", "service_instances.guid")
        .filter("names", "service_instances.name")
        .filter("type", "service_instances.kind")
        .filter("service_plan_guids", "service_instances.plan_guid")
        .filter_with("organization_guids", store::services::in_orgs);
    // Instances shared into a space are listed with that space's own.
    if let Some(spaces) = list.query().filter("space_guids").map(<[String]>::to_vec) {
        store::services::in_spaces_or_shared(list.select(), &spaces);
    }
    if let Some(visible) = c.visible_spaces().await? {
        store::services::in_spaces_or_shared(list.select(), &visible);
    }
    let instances = list.fetch(async |sel, w| store::services::page(&s.db, sel, w).await).await?;
    let versions = plan_versions(&s).await?;
    Ok(Json(instances.present(|i| i.present(&s, &versions))))
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::ServiceInstance>> {
    let (i, _) = require(&s, &c, &guid, Need::Read).await?;
    Ok(Json(i.present(&s, &plan_versions(&s).await?)))
}

async fn credentials(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    let (i, space) = require(&s, &c, &guid, Need::Read).await?;
    if !c.secrets_readable(&space.guid).await? {
        return Err(ApiError::NotAuthorized);
    }
    Ok(Json(i.credentials))
}

async fn create(
    State(s): State<AppState>,
    c: Caller,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Response> {
    match req.get("type").and_then(Value::as_str) {
        Some("user-provided") => {}
        Some("managed") => return crate::http::managed::create(&s, &c, &req).await,
        _ => {
            return Err(ApiError::Unprocessable(
                "Type must be one of 'managed', 'user-provided'".into(),
            ))
        }
    }
    let f = fields(&req)?;
    let name =
        f.name.clone().ok_or_else(|| ApiError::Unprocessable("Name must be a string".into()))?;
    let space_guid = crate::http::util::rel_guid(&req, "space")?;
    let invalid_space = || {
        ApiError::Unprocessable(
            "Invalid space. Ensure that the space exists and you have access to it.".into(),
        )
    };
    let space =
        crate::store::spaces::find(&s.db.pool, &space_guid).await?.ok_or_else(invalid_space)?;
    if !c.space_readable(&space.guid, &space.org_guid).await? {
        return Err(invalid_space());
    }
    c.require_space(&space.guid, &space.org_guid, "Space", Need::Developer).await?;
    flags::require(&s, &c, Flag::ServiceInstanceCreation).await?;
    let now = now_ms();
    let i = Instance {
        guid: new_guid(),
        name,
        space_guid: space.guid.clone(),
        credentials: f.credentials.unwrap_or_else(|| json!({})),
        tags: f.tags.unwrap_or_default(),
        syslog_drain_url: f.syslog_drain_url.unwrap_or_default(),
        route_service_url: f.route_service_url.unwrap_or_default(),
        kind: "user-provided".into(),
        plan_guid: String::new(),
        parameters: json!({}),
        maintenance_info: json!({}),
        dashboard_url: String::new(),
        op: Operation::default(),
        created_at: now,
        updated_at: now,
    };
    services::create_instance(&s, &i).await?;
    let t = space.target(&i.guid, "service_instance", &i.name);
    events::record(
        &s,
        "audit.user_provided_service_instance.create",
        &Actor::of(&c),
        &t,
        json!({"request": {"name": i.name, "tags": i.tags}}),
    )
    .await;
    Ok(created(i.present(&s, &PlanVersions::default())))
}

async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Response> {
    let (mut i, space) = require(&s, &c, &guid, Need::Developer).await?;
    if i.managed() {
        return crate::http::managed::update(&s, &c, i, &space, &req).await;
    }
    let f = fields(&req)?;
    if let Some(n) = f.name {
        i.name = n;
    }
    if let Some(v) = f.credentials {
        i.credentials = v;
    }
    if let Some(v) = f.tags {
        i.tags = v;
    }
    if let Some(v) = f.syslog_drain_url {
        i.syslog_drain_url = v;
    }
    if let Some(v) = &f.route_service_url {
        i.route_service_url.clone_from(v);
    }
    i.updated_at = now_ms().max(i.created_at + 1);
    let resync = services::update_instance(&s, &i, f.route_service_url.is_some()).await?;
    crate::http::routes::resync(&s, &resync).await;
    let t = space.target(&i.guid, "service_instance", &i.name);
    let keys: Vec<&str> =
        req.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
    events::record(
        &s,
        "audit.user_provided_service_instance.update",
        &Actor::of(&c),
        &t,
        json!({"request": {"fields": keys}}),
    )
    .await;
    Ok(axum::response::IntoResponse::into_response(Json(i.present(&s, &PlanVersions::default()))))
}

async fn remove(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let (i, space) = require(&s, &c, &guid, Need::Developer).await?;
    if i.managed() {
        let purge = q.as_deref().is_some_and(|q| q.split('&').any(|kv| kv == "purge=true"));
        return crate::http::managed::remove(&s, &c, i, &space, purge).await;
    }
    crate::http::managed::forget_instance(&s, &i.guid, &Actor::of(&c)).await?;
    let t = space.target(&i.guid, "service_instance", &i.name);
    events::record(
        &s,
        "audit.user_provided_service_instance.delete",
        &Actor::of(&c),
        &t,
        json!({}),
    )
    .await;
    Ok(axum::response::IntoResponse::into_response(StatusCode::NO_CONTENT))
}

impl Binding {
    pub fn present(&self, s: &AppState) -> v3::CredentialBinding {
        let base = format!("{}/service_credential_bindings/{}", s.v3(), self.guid);
        let mut l = links([
            ("self", Link::new(base.clone())),
            ("details", Link::new(format!("{base}/details"))),
            (
                "service_instance",
                Link::new(format!("{}/service_instances/{}", s.v3(), self.instance_guid)),
            ),
        ]);
        if !self.app_guid.is_empty() {
            l.insert("app".into(), Link::new(format!("{}/apps/{}", s.v3(), self.app_guid)));
        }
        if self.kind != "app" || self.credentials.is_some() || self.op.state != "succeeded" {
            return v3::CredentialBinding {
                guid: self.guid.clone(),
                created_at: ts(self.created_at),
                updated_at: ts(self.updated_at),
                name: non_empty(&self.name),
                kind: self.kind.clone(),
                last_operation: last_operation(&self.op, self.created_at),
                relationships: CredentialBindingRelationships {
                    app: (!self.app_guid.is_empty()).then(|| ToOne::of(&self.app_guid)),
                    service_instance: ToOne::of(&self.instance_guid),
                },
                metadata: Metadata::default(),
                links: l,
            };
        }
        v3::CredentialBinding {
            guid: self.guid.clone(),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            name: non_empty(&self.name),
            kind: "app".into(),
            last_operation: Some(LastOperation::succeeded(
                OperationType::Create,
                Some("Operation succeeded"),
                ts(self.created_at),
                ts(self.updated_at),
            )),
            relationships: CredentialBindingRelationships {
                app: Some(ToOne::of(&self.app_guid)),
                service_instance: ToOne::of(&self.instance_guid),
            },
            metadata: Metadata::default(),
            links: links([
                ("self", Link::new(base.clone())),
                ("details", Link::new(format!("{base}/details"))),
                (
                    "service_instance",
                    Link::new(format!("{}/service_instances/{}", s.v3(), self.instance_guid)),
                ),
                ("app", Link::new(format!("{}/apps/{}", s.v3(), self.app_guid))),
            ]),
        }
    }
}

async fn require_binding(
    s: &AppState,
    c: &Caller,
    guid: &str,
    need: Need,
) -> ApiResult<(Binding, Instance, Space)> {
    const WHAT: &str = "Service credential binding";
    let b =
        store::services::find_binding(&s.db.pool, guid).await?.ok_or(ApiError::NotFound(WHAT))?;
    let i = store::services::find(&s.db.pool, &b.instance_guid)
        .await?
        .ok_or(ApiError::NotFound(WHAT))?;
    let mut space = crate::store::spaces::find(&s.db.pool, &i.space_guid)
        .await?
        .ok_or(ApiError::NotFound(WHAT))?;
    // A binding of an app in a space the instance is shared into belongs to the app's space.
    if let Some(app) = crate::store::apps::find(&s.db.pool, &b.app_guid).await? {
        if app.space_guid != space.guid {
            space = crate::store::spaces::find(&s.db.pool, &app.space_guid)
                .await?
                .ok_or(ApiError::NotFound(WHAT))?;
        }
    }
    c.require_space(&space.guid, &space.org_guid, WHAT, need).await?;
    Ok((b, i, space))
}

async fn list_bindings(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::CredentialBinding>>> {
    const FILTERS: [&str; 9] = [
        "guids",
        "names",
        "service_instance_guids",
        "service_instance_names",
        "app_guids",
        "app_names",
        "type",
        "label_selector",
        "include",
    ];
    let table = Table::with("service_bindings", store::services::select_bindings());
    let path = "service_credential_bindings";
    let mut list = List::parse(&s, q.as_deref(), path, table, &FILTERS, &["name"])?
        .filter("guids", "service_bindings.guid")
        .filter("names", "service_bindings.name")
        .filter("service_instance_guids", "service_bindings.instance_guid")
        .filter("service_instance_names", "si.name")
        .filter("app_guids", "service_bindings.app_guid")
        .filter_lower("app_names", "ap.name_key")
        .filter("type", "service_bindings.kind");
    // Bindings of the caller's apps to instances shared in from other spaces count too.
    if let Some(visible) = c.visible_spaces().await? {
        list.select().any_or("si.space_guid", &visible, "ap.space_guid", &visible);
    }
    let bindings =
        list.fetch(async |sel, w| store::services::page_bindings(&s.db, sel, w).await).await?;
    let bindings = bindings.include(async |b, inc| include_bound(&s, b, inc).await).await?;
    Ok(Json(bindings.present(|b| b.present(&s))))
}

/// `include=app` and `include=service_instance`: the bindings' apps and instances, each once.
async fn include_bound(
    s: &AppState,
    bindings: &[Binding],
    inc: &[String],
) -> ApiResult<Option<Included>> {
    let mut included = Included::default();
    if inc.iter().any(|i| i == "app") {
        let mut apps: Vec<v3::App> = Vec::new();
        for b in bindings {
            if let Some(a) = crate::store::apps::find(&s.db.pool, &b.app_guid).await? {
                if !apps.iter().any(|x| x.guid == a.guid) {
                    apps.push(a.present(s));
                }
            }
        }
        included.apps = Some(apps);
    }
    if inc.iter().any(|i| i == "service_instance") {
        let versions = plan_versions(s).await?;
        let mut instances: Vec<v3::ServiceInstance> = Vec::new();
        for b in bindings {
            if let Some(i) = store::services::find(&s.db.pool, &b.instance_guid).await? {
                if !instances.iter().any(|x| x.guid == i.guid) {
                    instances.push(i.present(s, &versions));
                }
            }
        }
        included.service_instances = Some(instances);
    }
    Ok(Some(included))
}

async fn show_binding(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::CredentialBinding>> {
    let (b, _, _) = require_binding(&s, &c, &guid, Need::Read).await?;
    Ok(Json(b.present(&s)))
}

async fn binding_details(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::CredentialBindingDetails>> {
    let (b, i, space) = require_binding(&s, &c, &guid, Need::Read).await?;
    if !c.secrets_readable(&space.guid).await? {
        return Err(ApiError::NotAuthorized);
    }
    Ok(Json(v3::CredentialBindingDetails {
        syslog_drain_url: non_empty(&i.syslog_drain_url),
        credentials: b.credentials.unwrap_or(i.credentials),
        volume_mounts: Vec::new(),
    }))
}

async fn bind(
    State(s): State<AppState>,
    c: Caller,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Response> {
    let kind = match req.get("type").and_then(Value::as_str) {
        Some(k @ ("app" | "key")) => k.to_owned(),
        _ => return Err(ApiError::Unprocessable("Type must be one of 'app', 'key'".into())),
    };
    let name = match req.get("name") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(n)) => {
            check_name(n, "Service credential binding")?;
            n.clone()
        }
        Some(_) => return Err(ApiError::Unprocessable("Name must be a string".into())),
    };
    let instance_guid = crate::http::util::rel_guid(&req, "service_instance")?;
    let missing_instance = || {
        ApiError::Unprocessable(format!("The service instance could not be found: {instance_guid}"))
    };
    let i =
        store::services::find(&s.db.pool, &instance_guid).await?.ok_or_else(missing_instance)?;
    let space = crate::store::spaces::find(&s.db.pool, &i.space_guid)
        .await?
        .ok_or_else(missing_instance)?;
    if !c.space_readable(&space.guid, &space.org_guid).await?
        && !readable_through_share(&s, &c, &i).await?
    {
        return Err(missing_instance());
    }
    if kind == "key" {
        if !i.managed() {
            return Err(ApiError::Unprocessable(
                "Service credential bindings of type 'key' are not supported for user-provided service instances.".into(),
            ));
        }
        return crate::http::managed::bind(&s, &c, &req, i, &space, None, name).await;
    }
    let app_guid = crate::http::util::rel_guid(&req, "app")?;
    let missing_app = || ApiError::Unprocessable(format!("The app could not be found: {app_guid}"));
    let (app, app_space) = match crate::store::apps::find(&s.db.pool, &app_guid).await? {
        Some(a) => {
            let sp = crate::store::spaces::find(&s.db.pool, &a.space_guid)
                .await?
                .ok_or_else(missing_app)?;
            (a, sp)
        }
        None => return Err(missing_app()),
    };
    if !c.space_readable(&app_space.guid, &app_space.org_guid).await? {
        return Err(missing_app());
    }
    let shared = app.space_guid != space.guid
        && store::services::shared_spaces(&s.db.pool, &i.guid).await?.contains(&app.space_guid);
    if app.space_guid != space.guid && !shared {
        return Err(ApiError::Unprocessable(
            "The service instance and the app are in different spaces".into(),
        ));
    }
    c.require_space(&app_space.guid, &app_space.org_guid, "App", Need::Developer).await?;
    if i.managed() {
        return crate::http::managed::bind(&s, &c, &req, i, &app_space, Some(app), name).await;
    }
    let now = now_ms();
    let b = Binding {
        guid: new_guid(),
        kind: "app".into(),
        name,
        app_guid: app.guid.clone(),
        instance_guid: i.guid.clone(),
        credentials: None,
        parameters: json!({}),
        op: Operation {
            kind: "create".into(),
            state: "succeeded".into(),
            updated_at: now,
            ..Default::default()
        },
        created_at: now,
        updated_at: now,
    };
    services::bind(&s, &b).await?;
    let t = space.target(&app.guid, "app", &app.name);
    events::record(
        &s,
        "audit.service_binding.create",
        &Actor::of(&c),
        &t,
        json!({"request": {"service_instance_guid": i.guid, "binding_guid": b.guid}}),
    )
    .await;
    Ok(created(b.present(&s)))
}

async fn unbind(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    let (b, i, space) = require_binding(&s, &c, &guid, Need::Developer).await?;
    if i.managed() {
        return crate::http::managed::unbind(&s, &c, b, i, &space).await;
    }
    services::unbind(&s, &b.guid).await?;
    let name = crate::store::apps::find(&s.db.pool, &b.app_guid)
        .await?
        .map(|a| a.name)
        .unwrap_or_default();
    let t = space.target(&b.app_guid, "app", &name);
    events::record(
        &s,
        "audit.service_binding.delete",
        &Actor::of(&c),
        &t,
        json!({"request": {"binding_guid": b.guid}}),
    )
    .await;
    Ok(axum::response::IntoResponse::into_response(StatusCode::NO_CONTENT))
}

async fn parameters(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    let (i, _) = require(&s, &c, &guid, Need::Read).await?;
    Ok(Json(crate::http::managed::parameters(&s, &c, &i).await?))
}

async fn binding_parameters(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    let (b, i, _) = require_binding(&s, &c, &guid, Need::Read).await?;
    Ok(Json(crate::http::managed::binding_parameters(&s, &c, &b, &i).await?))
}
