//! User-provided service instances (`/v3/service_instances`, contracts/ccapi.md §4.15) and
//! their bindings to apps (`/v3/service_credential_bindings`, §4.16). Bindings put the
//! instance's credentials into the app's `VCAP_SERVICES` (at the next staging or start) and
//! its `syslog_drain_url` into the drain list the logs service reads
//! (`GET /internal/v1/syslog_drains`, at once). An instance's `route_service_url` makes it a
//! route service (`route_bindings`). Managed services (brokers) are not offered.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use sqlx::any::AnyRow;
use sqlx::Row as _;

use crate::access::{Caller, Need};
use crate::domain::events::{self, Actor};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::body;
use crate::http::paging::ListQuery;
use crate::http::util::{check_name, link, metadata, to_one, ts};
use crate::store::spaces::Space;
use crate::store::Select;
use crate::store::{is_unique_violation, new_guid, now_ms};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/service_instances", get(list).post(create))
        .route("/v3/service_instances/{guid}", get(show).patch(update).delete(remove))
        .route("/v3/service_instances/{guid}/credentials", get(credentials))
        .route("/v3/service_credential_bindings", get(list_bindings).post(bind))
        .route("/v3/service_credential_bindings/{guid}", get(show_binding).delete(unbind))
        .route("/v3/service_credential_bindings/{guid}/details", get(binding_details))
}

/// Drain URL schemes the logs service forwards to.
const DRAIN_SCHEMES: [&str; 3] = ["syslog", "syslog-tls", "https"];

#[derive(Debug, Clone)]
pub struct Instance {
    pub guid: String,
    pub name: String,
    pub space_guid: String,
    pub credentials: Value,
    pub tags: Vec<String>,
    pub syslog_drain_url: String,
    pub route_service_url: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Instance {
    pub fn from_row(r: &AnyRow) -> ApiResult<Self> {
        let credentials: String = r.try_get("credentials")?;
        let tags: String = r.try_get("tags")?;
        Ok(Self {
            guid: r.try_get("guid")?,
            name: r.try_get("name")?,
            space_guid: r.try_get("space_guid")?,
            credentials: serde_json::from_str(&credentials).unwrap_or_else(|_| json!({})),
            tags: serde_json::from_str(&tags).unwrap_or_default(),
            syslog_drain_url: r.try_get("syslog_drain_url")?,
            route_service_url: r.try_get("route_service_url")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    pub fn present(&self, s: &AppState) -> Value {
        let base = format!("{}/service_instances/{}", s.v3(), self.guid);
        let opt = |v: &str| if v.is_empty() { Value::Null } else { json!(v) };
        let op_type = if self.updated_at > self.created_at { "update" } else { "create" };
        json!({
            "guid": self.guid, "created_at": ts(self.created_at), "updated_at": ts(self.updated_at),
            "name": self.name, "type": "user-provided", "tags": self.tags,
            "syslog_drain_url": opt(&self.syslog_drain_url),
            "route_service_url": opt(&self.route_service_url),
            "last_operation": {
                "type": op_type, "state": "succeeded", "description": "Operation succeeded",
                "created_at": ts(self.updated_at), "updated_at": ts(self.updated_at),
            },
            "relationships": {"space": to_one(&self.space_guid)},
            "metadata": metadata(),
            "links": {
                "self": link(base.clone()),
                "space": link(format!("{}/spaces/{}", s.v3(), self.space_guid)),
                "credentials": link(format!("{base}/credentials")),
                "service_credential_bindings": link(format!("{}/service_credential_bindings?service_instance_guids={}", s.v3(), self.guid)),
                "service_route_bindings": link(format!("{}/service_route_bindings?service_instance_guids={}", s.v3(), self.guid)),
            },
        })
    }
}

pub async fn find(s: &AppState, guid: &str) -> ApiResult<Option<Instance>> {
    let row = sqlx::query("SELECT * FROM service_instances WHERE guid = $1")
        .bind(guid)
        .fetch_optional(&s.db.pool)
        .await?;
    row.as_ref().map(Instance::from_row).transpose()
}

/// The instance and its space if the caller may read it (404 otherwise) and has `need`.
async fn require(s: &AppState, c: &Caller, guid: &str, need: Need) -> ApiResult<(Instance, Space)> {
    const WHAT: &str = "Service instance";
    let i = find(s, guid).await?.ok_or(ApiError::NotFound(WHAT))?;
    let space = crate::store::spaces::find(&s.db.pool, &i.space_guid)
        .await?
        .ok_or(ApiError::NotFound(WHAT))?;
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
        f.syslog_drain_url = Some(check_drain_url(u)?);
    }
    if let Some(v) = req.get("route_service_url").filter(|v| !v.is_null()) {
        let u = v.as_str().ok_or_else(|| bad("Route service url must be a string"))?;
        if !u.is_empty() {
            let ok = url::Url::parse(u).is_ok_and(|p| p.scheme() == "https" && p.host().is_some());
            if !ok {
                return Err(bad("Route service url must be https"));
            }
        }
        f.route_service_url = Some(u.to_owned());
    }
    Ok(f)
}

/// An empty URL (no drain) or one with a scheme the logs service forwards to and a host.
fn check_drain_url(u: &str) -> ApiResult<String> {
    if u.is_empty() {
        return Ok(String::new());
    }
    let parsed = url::Url::parse(u).map_err(|_| {
        ApiError::Unprocessable(format!("Syslog drain url '{u}' is not a valid URL"))
    })?;
    if !DRAIN_SCHEMES.contains(&parsed.scheme()) || parsed.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::Unprocessable(format!(
            "Syslog drain url must be syslog://host:port, syslog-tls://host:port or https://host/path (got '{u}')"
        )));
    }
    if parsed.scheme() != "https" && parsed.port().is_none() {
        return Err(ApiError::Unprocessable(format!("Syslog drain url '{u}' needs a port")));
    }
    Ok(u.to_owned())
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(
        q.as_deref(),
        &["guids", "names", "type", "space_guids", "organization_guids", "label_selector"],
        &["name"],
    )?;
    let mut sel = Select::from("service_instances");
    crate::http::metadata::select(&mut sel, &q, "service_instances.guid")?;
    sel.filter(q.filter("guids"), "service_instances.guid")
        .filter(q.filter("names"), "service_instances.name")
        .filter(q.filter("space_guids"), "service_instances.space_guid");
    if let Some(t) = q.filter("type") {
        if !t.iter().any(|t| t == "user-provided") {
            sel.any("service_instances.guid", &[]);
        }
    }
    if let Some(orgs) = q.filter("organization_guids") {
        let orgs = orgs.to_vec();
        sel = sel.join("JOIN spaces sp ON sp.guid = service_instances.space_guid");
        sel.any("sp.org_guid", &orgs);
    }
    sel.visible("service_instances.space_guid", &c.visible_spaces().await?);
    let (total, rows) = sel.page(&s.db, &q.window()).await?;
    let items = rows
        .iter()
        .map(|r| Instance::from_row(r).map(|i| i.present(&s)))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(q.envelope(&format!("{}/service_instances", s.v3()), total, items)))
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    let (i, _) = require(&s, &c, &guid, Need::Read).await?;
    Ok(Json(i.present(&s)))
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

async fn create(State(s): State<AppState>, c: Caller, raw: Bytes) -> ApiResult<Response> {
    let req: Value = body(&raw)?;
    match req.get("type").and_then(Value::as_str) {
        Some("user-provided") => {}
        Some("managed") => {
            return Err(ApiError::Unprocessable(
                "Managed service instances are not offered on this platform (no service brokers); create a user-provided service instance (type 'user-provided').".into(),
            ))
        }
        _ => return Err(ApiError::Unprocessable("Type must be one of 'managed', 'user-provided'".into())),
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
    let guid = new_guid();
    let now = now_ms();
    let res = sqlx::query(
        "INSERT INTO service_instances (guid, name, space_guid, credentials, tags, syslog_drain_url, route_service_url, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(&guid)
    .bind(&name)
    .bind(&space.guid)
    .bind(f.credentials.unwrap_or_else(|| json!({})).to_string())
    .bind(json!(f.tags.unwrap_or_default()).to_string())
    .bind(f.syslog_drain_url.unwrap_or_default())
    .bind(f.route_service_url.unwrap_or_default())
    .bind(now)
    .execute(&s.db.pool)
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Unprocessable(format!(
                "The service instance name is taken: {name}."
            )))
        }
        r => r?,
    };
    let i = find(&s, &guid).await?.ok_or(ApiError::NotFound("Service instance"))?;
    let t = space.target(&i.guid, "service_instance", &i.name);
    events::record(
        &s,
        "audit.user_provided_service_instance.create",
        &Actor::of(&c),
        &t,
        json!({"request": {"name": i.name, "tags": i.tags}}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(i.present(&s))).into_response())
}

async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let req: Value = body(&raw)?;
    let (mut i, space) = require(&s, &c, &guid, Need::Developer).await?;
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
    let res = sqlx::query(
        "UPDATE service_instances SET name = $1, credentials = $2, tags = $3, syslog_drain_url = $4, route_service_url = $5, updated_at = $6 WHERE guid = $7",
    )
    .bind(&i.name)
    .bind(i.credentials.to_string())
    .bind(json!(i.tags).to_string())
    .bind(&i.syslog_drain_url)
    .bind(&i.route_service_url)
    .bind(i.updated_at)
    .bind(&i.guid)
    .execute(&s.db.pool)
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Unprocessable(format!(
                "The service instance name is taken: {}.",
                i.name
            )))
        }
        r => r?,
    };
    if f.route_service_url.is_some() {
        crate::http::route_bindings::resync_instance(&s, &i.guid).await?;
    }
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
    Ok(Json(i.present(&s)))
}

async fn remove(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<StatusCode> {
    let (i, space) = require(&s, &c, &guid, Need::Developer).await?;
    delete_instance(&s, &i.guid, &Actor::of(&c)).await?;
    let t = space.target(&i.guid, "service_instance", &i.name);
    events::record(
        &s,
        "audit.user_provided_service_instance.delete",
        &Actor::of(&c),
        &t,
        json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove an instance with its bindings to apps and routes (user-provided instances need no
/// broker), as CC does.
async fn delete_instance(s: &AppState, guid: &str, actor: &Actor) -> ApiResult<()> {
    crate::http::route_bindings::unbind_instance(s, guid, actor).await?;
    let bindings = sqlx::query("SELECT guid FROM service_bindings WHERE instance_guid = $1")
        .bind(guid)
        .fetch_all(&s.db.pool)
        .await?;
    for b in bindings {
        let g: String = b.try_get("guid")?;
        delete_binding_rows(s, &g).await?;
    }
    crate::http::metadata::delete_resource(s, "service_instances", guid).await
}

async fn delete_binding_rows(s: &AppState, guid: &str) -> ApiResult<()> {
    crate::http::metadata::delete_resource(s, "service_bindings", guid).await
}

#[derive(Debug, Clone)]
struct Binding {
    guid: String,
    name: String,
    app_guid: String,
    instance_guid: String,
    created_at: i64,
    updated_at: i64,
}

impl Binding {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            name: r.try_get("name")?,
            app_guid: r.try_get("app_guid")?,
            instance_guid: r.try_get("instance_guid")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    fn present(&self, s: &AppState) -> Value {
        let base = format!("{}/service_credential_bindings/{}", s.v3(), self.guid);
        json!({
            "guid": self.guid, "created_at": ts(self.created_at), "updated_at": ts(self.updated_at),
            "name": if self.name.is_empty() { Value::Null } else { json!(self.name) },
            "type": "app",
            "last_operation": {
                "type": "create", "state": "succeeded", "description": "Operation succeeded",
                "created_at": ts(self.created_at), "updated_at": ts(self.updated_at),
            },
            "relationships": {
                "app": to_one(&self.app_guid),
                "service_instance": to_one(&self.instance_guid),
            },
            "metadata": metadata(),
            "links": {
                "self": link(base.clone()),
                "details": link(format!("{base}/details")),
                "service_instance": link(format!("{}/service_instances/{}", s.v3(), self.instance_guid)),
                "app": link(format!("{}/apps/{}", s.v3(), self.app_guid)),
            },
        })
    }
}

async fn require_binding(
    s: &AppState,
    c: &Caller,
    guid: &str,
    need: Need,
) -> ApiResult<(Binding, Instance, Space)> {
    const WHAT: &str = "Service credential binding";
    let row = sqlx::query("SELECT * FROM service_bindings WHERE guid = $1")
        .bind(guid)
        .fetch_optional(&s.db.pool)
        .await?
        .ok_or(ApiError::NotFound(WHAT))?;
    let b = Binding::from_row(&row)?;
    let i = find(s, &b.instance_guid).await?.ok_or(ApiError::NotFound(WHAT))?;
    let space = crate::store::spaces::find(&s.db.pool, &i.space_guid)
        .await?
        .ok_or(ApiError::NotFound(WHAT))?;
    c.require_space(&space.guid, &space.org_guid, WHAT, need).await?;
    Ok((b, i, space))
}

async fn list_bindings(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(
        q.as_deref(),
        &[
            "guids",
            "names",
            "service_instance_guids",
            "service_instance_names",
            "app_guids",
            "app_names",
            "type",
            "label_selector",
            "include",
        ],
        &["name"],
    )?;
    let mut sel = Select::from("service_bindings")
        .join("JOIN service_instances si ON si.guid = service_bindings.instance_guid")
        .join("JOIN apps ap ON ap.guid = service_bindings.app_guid");
    crate::http::metadata::select(&mut sel, &q, "service_bindings.guid")?;
    sel.filter(q.filter("guids"), "service_bindings.guid")
        .filter(q.filter("names"), "service_bindings.name")
        .filter(q.filter("service_instance_guids"), "service_bindings.instance_guid")
        .filter(q.filter("service_instance_names"), "si.name")
        .filter(q.filter("app_guids"), "service_bindings.app_guid");
    if let Some(names) = q.filter("app_names") {
        let keys: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
        sel.any("ap.name_key", &keys);
    }
    if let Some(t) = q.filter("type") {
        if !t.iter().any(|t| t == "app") {
            sel.any("service_bindings.guid", &[]);
        }
    }
    sel.visible("si.space_guid", &c.visible_spaces().await?);
    let (total, rows) = sel.page(&s.db, &q.window()).await?;
    let bindings = rows.iter().map(Binding::from_row).collect::<ApiResult<Vec<_>>>()?;
    let items = bindings.iter().map(|b| b.present(&s)).collect();
    let mut env = q.envelope(&format!("{}/service_credential_bindings", s.v3()), total, items);
    if let Some(inc) = q.filter("include") {
        let mut included = Map::new();
        if inc.iter().any(|i| i == "app") {
            let mut apps = Vec::new();
            for b in &bindings {
                if let Some(a) = crate::store::apps::find(&s.db.pool, &b.app_guid).await? {
                    if !apps.iter().any(|v: &Value| v["guid"] == a.guid.as_str()) {
                        apps.push(a.present(&s));
                    }
                }
            }
            included.insert("apps".into(), Value::Array(apps));
        }
        if inc.iter().any(|i| i == "service_instance") {
            let mut instances = Vec::new();
            for b in &bindings {
                if let Some(i) = find(&s, &b.instance_guid).await? {
                    if !instances.iter().any(|v: &Value| v["guid"] == i.guid.as_str()) {
                        instances.push(i.present(&s));
                    }
                }
            }
            included.insert("service_instances".into(), Value::Array(instances));
        }
        env["included"] = Value::Object(included);
    }
    Ok(Json(env))
}

async fn show_binding(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    let (b, _, _) = require_binding(&s, &c, &guid, Need::Read).await?;
    Ok(Json(b.present(&s)))
}

async fn binding_details(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    let (_, i, space) = require_binding(&s, &c, &guid, Need::Read).await?;
    if !c.secrets_readable(&space.guid).await? {
        return Err(ApiError::NotAuthorized);
    }
    let drain = if i.syslog_drain_url.is_empty() { Value::Null } else { json!(i.syslog_drain_url) };
    Ok(Json(json!({"credentials": i.credentials, "syslog_drain_url": drain, "volume_mounts": []})))
}

async fn bind(State(s): State<AppState>, c: Caller, raw: Bytes) -> ApiResult<Response> {
    let req: Value = body(&raw)?;
    match req.get("type").and_then(Value::as_str) {
        Some("app") => {}
        Some("key") => {
            return Err(ApiError::Unprocessable(
                "Service credential bindings of type 'key' are not supported for user-provided service instances.".into(),
            ))
        }
        _ => return Err(ApiError::Unprocessable("Type must be one of 'app', 'key'".into())),
    }
    let name = match req.get("name") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(n)) => {
            check_name(n, "Service credential binding")?;
            n.clone()
        }
        Some(_) => return Err(ApiError::Unprocessable("Name must be a string".into())),
    };
    let instance_guid = crate::http::util::rel_guid(&req, "service_instance")?;
    let app_guid = crate::http::util::rel_guid(&req, "app")?;
    let missing_instance = || {
        ApiError::Unprocessable(format!("The service instance could not be found: {instance_guid}"))
    };
    let i = find(&s, &instance_guid).await?.ok_or_else(missing_instance)?;
    let space = crate::store::spaces::find(&s.db.pool, &i.space_guid)
        .await?
        .ok_or_else(missing_instance)?;
    if !c.space_readable(&space.guid, &space.org_guid).await? {
        return Err(missing_instance());
    }
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
    if app.space_guid != space.guid {
        return Err(ApiError::Unprocessable(
            "The service instance and the app are in different spaces".into(),
        ));
    }
    c.require_space(&space.guid, &space.org_guid, "App", Need::Developer).await?;
    let guid = new_guid();
    let now = now_ms();
    let res = sqlx::query(
        "INSERT INTO service_bindings (guid, name, app_guid, instance_guid, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&guid)
    .bind(&name)
    .bind(&app.guid)
    .bind(&i.guid)
    .bind(now)
    .execute(&s.db.pool)
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Unprocessable(
                "The app is already bound to the service instance".into(),
            ))
        }
        r => r?,
    };
    let b = Binding {
        guid,
        name,
        app_guid: app.guid.clone(),
        instance_guid: i.guid.clone(),
        created_at: now,
        updated_at: now,
    };
    let t = space.target(&app.guid, "app", &app.name);
    events::record(
        &s,
        "audit.service_binding.create",
        &Actor::of(&c),
        &t,
        json!({"request": {"service_instance_guid": i.guid, "binding_guid": b.guid}}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(b.present(&s))).into_response())
}

async fn unbind(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<StatusCode> {
    let (b, _, space) = require_binding(&s, &c, &guid, Need::Developer).await?;
    delete_binding_rows(&s, &b.guid).await?;
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
    Ok(StatusCode::NO_CONTENT)
}

/// `VCAP_SERVICES` of an app (contracts/ccapi.md §7.3): `{}` without bindings.
pub async fn vcap_services(s: &AppState, app: &str) -> ApiResult<Value> {
    let rows = sqlx::query(
        "SELECT b.guid AS binding_guid, b.name AS binding_name, si.* FROM service_bindings b \
         JOIN service_instances si ON si.guid = b.instance_guid WHERE b.app_guid = $1 ORDER BY b.created_at, b.guid",
    )
    .bind(app)
    .fetch_all(&s.db.pool)
    .await?;
    let mut ups = Vec::new();
    for r in &rows {
        let i = Instance::from_row(r)?;
        let binding_name: String = r.try_get("binding_name")?;
        let drain =
            if i.syslog_drain_url.is_empty() { Value::Null } else { json!(i.syslog_drain_url) };
        ups.push(json!({
            "label": "user-provided",
            "name": if binding_name.is_empty() { i.name.clone() } else { binding_name.clone() },
            "tags": i.tags,
            "instance_guid": i.guid, "instance_name": i.name,
            "binding_guid": r.try_get::<String, _>("binding_guid")?,
            "binding_name": if binding_name.is_empty() { Value::Null } else { json!(binding_name) },
            "credentials": i.credentials, "syslog_drain_url": drain, "volume_mounts": [],
        }));
    }
    Ok(if ups.is_empty() { json!({}) } else { json!({"user-provided": ups}) })
}

/// One DNS-label-like part of a drain HOSTNAME: ASCII letters, digits and `-`, at most 63.
fn host_part(s: &str) -> String {
    let cleaned: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    let trimmed = cleaned.trim_matches('-');
    trimmed.chars().take(63).collect()
}

/// Every app bound to an instance with a drain URL, for the logs service.
pub async fn syslog_drains(s: &AppState) -> ApiResult<wire::drains::SyslogDrains> {
    let rows = sqlx::query(
        "SELECT b.guid AS binding_guid, b.app_guid, si.syslog_drain_url, ap.name AS app_name, \
         sp.name AS space_name, o.name AS org_name FROM service_bindings b \
         JOIN service_instances si ON si.guid = b.instance_guid \
         JOIN apps ap ON ap.guid = b.app_guid \
         JOIN spaces sp ON sp.guid = ap.space_guid \
         JOIN organizations o ON o.guid = sp.org_guid \
         WHERE si.syslog_drain_url <> '' ORDER BY b.guid",
    )
    .fetch_all(&s.db.pool)
    .await?;
    let mut drains = Vec::with_capacity(rows.len());
    for r in rows {
        let part = |k: &str| r.try_get::<String, _>(k).map(|v| host_part(&v));
        drains.push(wire::drains::SyslogDrain {
            binding_guid: r.try_get("binding_guid")?,
            app_guid: r.try_get("app_guid")?,
            url: r.try_get("syslog_drain_url")?,
            hostname: format!(
                "{}.{}.{}",
                part("org_name")?,
                part("space_name")?,
                part("app_name")?
            ),
        });
    }
    Ok(wire::drains::SyslogDrains { drains })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_urls_need_a_known_scheme_a_host_and_a_port() {
        assert!(check_drain_url("syslog://logs.example.com:514").is_ok());
        assert!(check_drain_url("syslog-tls://logs.example.com:6514?drain-data=all").is_ok());
        assert!(check_drain_url("https://logs.example.com/drain").is_ok());
        assert_eq!(check_drain_url("").ok(), Some(String::new()));
        for bad in ["syslog://logs.example.com", "ftp://x:1", "not a url", "syslog://:514"] {
            assert!(check_drain_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hostnames_are_sanitized_labels() {
        assert_eq!(host_part("My Org_1"), "My-Org-1");
        assert_eq!(host_part(&"a".repeat(80)).len(), 63);
        assert_eq!(host_part("-x-"), "x");
    }
}
