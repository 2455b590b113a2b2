//! Droplets (contracts/ccapi.md §4.8): what staging produced — process types, buildpacks,
//! stack and the checksum cells verify — listed, shown and downloaded.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row as _;

use crate::access::{Caller, Need};
use crate::error::{ApiError, ApiResult};
use crate::http::paging::ListQuery;
use crate::http::util::{link, link_method, metadata, to_one, ts};
use crate::store::Select;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/droplets", get(list))
        .route("/v3/droplets/{guid}", get(show))
        .route("/v3/droplets/{guid}/download", get(download))
        .route("/v3/apps/{guid}/droplets", get(app_droplets))
        .route("/v3/packages/{guid}/droplets", get(package_droplets))
}

#[derive(Debug, Clone)]
pub struct Droplet {
    pub guid: String,
    pub app_guid: String,
    pub package_guid: String,
    pub state: String,
    pub error: String,
    pub sha256: String,
    pub buildpacks: Value,
    pub process_types: BTreeMap<String, String>,
    pub execution_metadata: String,
    pub stack: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Droplet {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        let bps: String = r.try_get("buildpacks")?;
        let pts: String = r.try_get("process_types")?;
        Ok(Self {
            guid: r.try_get("guid")?,
            app_guid: r.try_get("app_guid")?,
            package_guid: r.try_get("package_guid")?,
            state: r.try_get("state")?,
            error: r.try_get("error")?,
            sha256: r.try_get("sha256")?,
            buildpacks: serde_json::from_str(&bps).unwrap_or(Value::Array(vec![])),
            process_types: serde_json::from_str(&pts).unwrap_or_default(),
            execution_metadata: r.try_get("execution_metadata")?,
            stack: r.try_get("stack")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    pub fn present(&self, s: &AppState) -> Value {
        let base = format!("{}/droplets/{}", s.v3(), self.guid);
        json!({
            "guid": self.guid, "created_at": ts(self.created_at), "updated_at": ts(self.updated_at),
            "state": self.state,
            "error": if self.error.is_empty() { Value::Null } else { json!(self.error) },
            "lifecycle": {"type": "buildpack", "data": {}},
            "execution_metadata": self.execution_metadata,
            "process_types": self.process_types,
            "checksum": {"type": "sha256", "value": self.sha256},
            "buildpacks": self.buildpacks,
            "stack": self.stack,
            "image": null,
            "relationships": {"app": to_one(&self.app_guid)},
            "metadata": metadata(),
            "links": {
                "self": link(base.clone()),
                "package": link(format!("{}/packages/{}", s.v3(), self.package_guid)),
                "app": link(format!("{}/apps/{}", s.v3(), self.app_guid)),
                "assign_current_droplet": link_method(format!("{}/apps/{}/relationships/current_droplet", s.v3(), self.app_guid), "PATCH"),
                "download": link(format!("{base}/download")),
            },
        })
    }
}

pub async fn find(s: &AppState, guid: &str) -> ApiResult<Option<Droplet>> {
    if guid.is_empty() {
        return Ok(None);
    }
    let row = sqlx::query("SELECT * FROM droplets WHERE guid = $1")
        .bind(guid)
        .fetch_optional(&s.db.pool)
        .await?;
    row.as_ref().map(Droplet::from_row).transpose()
}

/// Record a droplet staging produced.
#[allow(clippy::too_many_arguments)]
pub async fn insert_staged(
    s: &AppState,
    guid: &str,
    app: &str,
    package: &str,
    build: &str,
    staged: &wire::staging::Staged,
    stack: &str,
) -> ApiResult<()> {
    let now = crate::store::now_ms();
    let bps: Vec<Value> = staged
        .buildpacks
        .iter()
        .map(|b| json!({"name": b.name, "buildpack_name": b.name, "version": b.version, "detect_output": b.detect_output}))
        .collect();
    sqlx::query(
        "INSERT INTO droplets (guid, app_guid, package_guid, build_guid, state, error, sha256, size, buildpacks, \
         process_types, execution_metadata, stack, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'STAGED', '', $5, $6, $7, $8, $9, $10, $11, $11)",
    )
    .bind(guid)
    .bind(app)
    .bind(package)
    .bind(build)
    .bind(&staged.droplet_sha256)
    .bind(i64::try_from(staged.droplet_size).unwrap_or(i64::MAX))
    .bind(Value::Array(bps).to_string())
    .bind(json!(staged.process_types).to_string())
    .bind(&staged.execution_metadata)
    .bind(stack)
    .bind(now)
    .execute(&s.db.pool)
    .await?;
    Ok(())
}

async fn require(s: &AppState, c: &Caller, guid: &str, need: Need) -> ApiResult<Droplet> {
    let d = find(s, guid).await?.ok_or(ApiError::NotFound("Droplet"))?;
    crate::http::apps::require(s, c, &d.app_guid, need).await.map_err(|e| match e {
        ApiError::NotFound(_) => ApiError::NotFound("Droplet"),
        e => e,
    })?;
    Ok(d)
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(
        q.as_deref(),
        &["guids", "states", "app_guids", "space_guids", "organization_guids", "label_selector"],
        &[],
    )?;
    list_with(&s, &c, q, format!("{}/droplets", s.v3())).await
}

async fn list_with(s: &AppState, c: &Caller, q: ListQuery, base: String) -> ApiResult<Json<Value>> {
    let mut sel = Select::from("droplets").join("JOIN apps a ON a.guid = droplets.app_guid");
    crate::http::metadata::select(&mut sel, &q, "droplets.guid")?;
    sel.filter(q.filter("guids"), "droplets.guid")
        .filter(q.filter("states"), "droplets.state")
        .filter(q.filter("app_guids"), "droplets.app_guid")
        .filter(q.filter("package_guids"), "droplets.package_guid")
        .filter(q.filter("space_guids"), "a.space_guid");
    sel.visible("a.space_guid", &c.visible_spaces().await?);
    let (total, rows) = sel.page(&s.db, &q.window()).await?;
    let items = rows
        .iter()
        .map(|r| Droplet::from_row(r).map(|d| d.present(s)))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(q.envelope(&base, total, items)))
}

async fn app_droplets(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let app = crate::http::apps::require(&s, &c, &guid, Need::Read).await?;
    let mut q =
        ListQuery::parse(q.as_deref(), &["guids", "states", "current", "label_selector"], &[])?;
    q.filters.insert("app_guids".into(), vec![app.guid.clone()]);
    if q.filter("current").is_some_and(|v| v.iter().any(|x| x == "true")) {
        q.filters.insert("guids".into(), vec![app.droplet_guid.clone()]);
    }
    q.filters.remove("current");
    list_with(&s, &c, q, format!("{}/apps/{guid}/droplets", s.v3())).await
}

async fn package_droplets(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let (p, _, _) = crate::http::packages::require(&s, &c, &guid, Need::Read).await?;
    let mut q = ListQuery::parse(q.as_deref(), &["guids", "states"], &[])?;
    q.filters.insert("package_guids".into(), vec![p.guid]);
    list_with(&s, &c, q, format!("{}/packages/{guid}/droplets", s.v3())).await
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(require(&s, &c, &guid, Need::Read).await?.present(&s)))
}

async fn download(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    let d = require(&s, &c, &guid, Need::Developer).await?;
    crate::http::packages::stream_blob(
        &s,
        &blobstore::droplet_key(&d.guid)?,
        "application/gzip",
        "Droplet",
    )
    .await
}
