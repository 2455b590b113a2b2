//! Droplets (docs/api.md): what staging produced — process types, buildpacks,
//! stack and the checksum cells verify — listed, shown and downloaded.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use wire::v3::droplet::{Checksum, DropletRelationships};
use wire::v3::{self, Lifecycle, Link, Metadata, Page, ToOne};

use crate::access::{Caller, Need};
use crate::error::{ApiError, ApiResult};
use crate::http::paging::ListQuery;
use crate::http::util::{links, ts};
use crate::store::droplets::Droplet;
use crate::store::{self, Select};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/droplets", get(list))
        .route("/v3/droplets/{guid}", get(show))
        .route("/v3/droplets/{guid}/download", get(download))
        .route("/v3/apps/{guid}/droplets", get(app_droplets))
        .route("/v3/packages/{guid}/droplets", get(package_droplets))
}

impl Droplet {
    pub fn present(&self, s: &AppState) -> v3::Droplet {
        let base = format!("{}/droplets/{}", s.v3(), self.guid);
        let app = format!("{}/apps/{}", s.v3(), self.app_guid);
        v3::Droplet {
            guid: self.guid.clone(),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            state: self.state,
            error: (!self.error.is_empty()).then(|| self.error.clone()),
            lifecycle: Lifecycle { kind: "buildpack".into(), data: Default::default() },
            execution_metadata: self.execution_metadata.clone(),
            process_types: self.process_types.clone(),
            checksum: Some(Checksum { kind: "sha256".into(), value: Some(self.sha256.clone()) }),
            buildpacks: self.buildpacks.clone(),
            stack: Some(self.stack.clone()),
            image: None,
            relationships: DropletRelationships { app: ToOne::of(&self.app_guid) },
            metadata: Metadata::default(),
            links: links([
                ("self", Link::new(base.clone())),
                ("package", Link::new(format!("{}/packages/{}", s.v3(), self.package_guid))),
                ("app", Link::new(app.clone())),
                (
                    "assign_current_droplet",
                    Link::with_method(format!("{app}/relationships/current_droplet"), "PATCH"),
                ),
                ("download", Link::new(format!("{base}/download"))),
            ]),
        }
    }
}

async fn require(s: &AppState, c: &Caller, guid: &str, need: Need) -> ApiResult<Droplet> {
    let d = store::droplets::find(&s.db.pool, guid).await?.ok_or(ApiError::NotFound("Droplet"))?;
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
) -> ApiResult<Json<Page<v3::Droplet>>> {
    let q = ListQuery::parse(
        q.as_deref(),
        &["guids", "states", "app_guids", "space_guids", "organization_guids", "label_selector"],
        &[],
    )?;
    list_with(&s, &c, q, format!("{}/droplets", s.v3())).await
}

async fn list_with(
    s: &AppState,
    c: &Caller,
    q: ListQuery,
    base: String,
) -> ApiResult<Json<Page<v3::Droplet>>> {
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
    Ok(Json(q.page(&base, total, items)))
}

async fn app_droplets(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Droplet>>> {
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
) -> ApiResult<Json<Page<v3::Droplet>>> {
    let (p, _, _) = crate::http::packages::require(&s, &c, &guid, Need::Read).await?;
    let mut q = ListQuery::parse(q.as_deref(), &["guids", "states"], &[])?;
    q.filters.insert("package_guids".into(), vec![p.guid]);
    list_with(&s, &c, q, format!("{}/packages/{guid}/droplets", s.v3())).await
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::Droplet>> {
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
