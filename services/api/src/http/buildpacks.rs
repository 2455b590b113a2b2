//! Admin buildpacks and stacks: list, create, update, upload (the zip checked here, stored
//! through [`crate::domain::staging`]) and delete; the bundled buildpacks installed on start
//! and the resolution of names for a stager live in the domain.

use axum::extract::{DefaultBodyLimit, Multipart, Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use wire::v3::stack::{self as v3stack, BuildpackState};
use wire::v3::{Link, Metadata, Page};

use crate::access::Caller;
use crate::domain::staging;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::list::{List, Query};
use crate::http::util::{created, links, ts};
use crate::store::buildpacks::Buildpack;
use crate::store::{self, new_guid, now_ms};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/buildpacks", get(list).post(create))
        .route("/v3/buildpacks/{guid}", get(show).patch(update).delete(remove))
        .route("/v3/buildpacks/{guid}/upload", post(upload).layer(DefaultBodyLimit::max(512 << 20)))
        .route("/v3/admin/actions/clear_buildpack_cache", post(clear_caches))
        .route("/v3/stacks", get(stacks))
        .route("/v3/stacks/{name}", get(stack).patch(update_stack))
}

impl Buildpack {
    pub fn present(&self, s: &AppState) -> v3stack::Buildpack {
        let base = format!("{}/buildpacks/{}", s.v3(), self.guid);
        let some = |x: &str| (!x.is_empty()).then(|| x.to_owned());
        v3stack::Buildpack {
            guid: self.guid.clone(),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            name: self.name.clone(),
            stack: some(&self.stack),
            state: self.state.as_str().to_owned(),
            filename: some(&self.filename),
            position: self.position,
            enabled: self.enabled,
            locked: self.locked,
            lifecycle: Some("buildpack".into()),
            metadata: Metadata::default(),
            links: links([
                ("self", Link::new(base.clone())),
                ("upload", Link::with_method(format!("{base}/upload"), "POST")),
            ]),
        }
    }
}

async fn list(
    State(s): State<AppState>,
    _c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3stack::Buildpack>>> {
    const FILTERS: [&str; 4] = ["names", "stacks", "label_selector", "lifecycle"];
    let orders = ["position", "name"];
    let list = List::parse(&s, q.as_deref(), "buildpacks", "buildpacks", &FILTERS, &orders)?
        .filter("names", "name")
        .filter("stacks", "stack")
        .default_order("position");
    let buildpacks =
        list.fetch(async |sel, w| sel.page_of(&s.db, w, Buildpack::from_row).await).await?;
    Ok(Json(buildpacks.present(|b| b.present(&s))))
}

async fn find(s: &AppState, guid: &str) -> ApiResult<Buildpack> {
    store::buildpacks::find(&s.db.pool, guid).await?.ok_or(ApiError::NotFound("Buildpack"))
}

async fn show(
    State(s): State<AppState>,
    _c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3stack::Buildpack>> {
    Ok(Json(find(&s, &guid).await?.present(&s)))
}

/// `POST /v3/admin/actions/clear_buildpack_cache`: a job that has the stagers drop every
/// app's buildpack cache (admins only).
async fn clear_caches(State(s): State<AppState>, c: Caller) -> ApiResult<Response> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    let s2 = s.clone();
    let work = async move { staging::clear_buildpack_cache(&s2, None).await };
    let job = crate::domain::jobs::spawn(&s, "admin.clear_buildpack_cache", "", "", work).await?;
    Ok(crate::http::jobs::accepted(&s, &job))
}

async fn create(
    State(s): State<AppState>,
    c: Caller,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Response> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    let name = req.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return Err(ApiError::Unprocessable(
            "Name can only contain letters, digits, '_', '-' and '.'".into(),
        ));
    }
    let now = now_ms();
    let b = Buildpack {
        guid: new_guid(),
        stack: req.get("stack").and_then(Value::as_str).unwrap_or_default().to_owned(),
        position: req.get("position").and_then(Value::as_i64).unwrap_or(1).max(1),
        enabled: req.get("enabled").and_then(Value::as_bool).unwrap_or(true),
        locked: req.get("locked").and_then(Value::as_bool).unwrap_or(false),
        filename: String::new(),
        sha256: String::new(),
        state: BuildpackState::AwaitingUpload,
        created_at: now,
        updated_at: now,
        name,
    };
    let taken = || {
        ApiError::Uniqueness(format!(
            "Buildpack with name '{}' and an unassigned stack already exists",
            b.name
        ))
    };
    store::buildpacks::insert(&s.db.pool, &b, taken).await?;
    Ok(created(find(&s, &b.guid).await?.present(&s)))
}

async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<v3stack::Buildpack>> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    let mut b = find(&s, &guid).await?;
    b.position = req.get("position").and_then(Value::as_i64).unwrap_or(b.position).max(1);
    b.enabled = req.get("enabled").and_then(Value::as_bool).unwrap_or(b.enabled);
    b.locked = req.get("locked").and_then(Value::as_bool).unwrap_or(b.locked);
    if let Some(name) = req.get("name").and_then(Value::as_str) {
        b.name = name.to_owned();
    }
    store::buildpacks::update(&s.db.pool, &b, now_ms()).await?;
    Ok(Json(find(&s, &guid).await?.present(&s)))
}

async fn upload(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    mut mp: Multipart,
) -> ApiResult<Json<v3stack::Buildpack>> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    if find(&s, &guid).await?.locked {
        return Err(ApiError::Unprocessable(
            "The buildpack is locked; unlock it before uploading".into(),
        ));
    }
    let scratch = crate::http::upload::Scratch::new(&s, "buildpack")?;
    let dest = scratch.dir.join("bp.zip");
    let mut filename = String::new();
    while let Some(mut f) = mp
        .next_field()
        .await
        .map_err(|e| ApiError::BadRequest(format!("malformed multipart body: {e}")))?
    {
        if f.name() == Some("bits") {
            filename = f.file_name().unwrap_or("buildpack.zip").to_owned();
            crate::http::upload::field_to_file(&mut f, &dest, 512 << 20).await?;
        }
    }
    if filename.is_empty() {
        return Err(ApiError::Unprocessable(
            "Upload the buildpack zip in the multipart field 'bits'".into(),
        ));
    }
    let check = dest.clone();
    let probe = scratch.dir.join("probe");
    tokio::task::spawn_blocking(move || {
        archive::extract_zip(&check, &probe, &archive::Limits::default())
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Unprocessable(format!("The buildpack is not a valid zip: {e}")))?;
    if !scratch.dir.join("probe/bin/detect").exists()
        && !scratch.dir.join("probe/bin/supply").exists()
    {
        return Err(ApiError::Unprocessable(
            "The buildpack zip has neither bin/detect nor bin/supply at its root".into(),
        ));
    }
    staging::store_buildpack(&s, &guid, &filename, &dest).await?;
    Ok(Json(find(&s, &guid).await?.present(&s)))
}

async fn remove(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    find(&s, &guid).await?;
    let res = staging::delete_buildpack(&s, &guid).await;
    let job = crate::domain::jobs::run(&s, "buildpack.delete", "", "", async { res }).await?;
    Ok(crate::http::jobs::accepted(&s, &job))
}

fn stack_description(name: &str) -> String {
    match name {
        "bookworm" => "Debian 12 (bookworm) with runtimes from Debian packages".into(),
        "trixie" => "Debian 13 (trixie) with runtimes from Debian packages, Go included".into(),
        other => format!("{other}, with runtimes from Debian packages"),
    }
}

fn present_stack(s: &AppState, name: &str) -> v3stack::Stack {
    v3stack::Stack {
        guid: name.to_owned(),
        created_at: ts(0),
        updated_at: ts(0),
        name: name.to_owned(),
        description: Some(stack_description(name)),
        build_rootfs_image: Some(name.to_owned()),
        run_rootfs_image: Some(name.to_owned()),
        default: name == s.config.default_stack,
        state: Some("ACTIVE".into()),
        metadata: Metadata::default(),
        links: links([("self", Link::new(format!("{}/stacks/{name}", s.v3())))]),
    }
}

async fn stacks(
    State(s): State<AppState>,
    _c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3stack::Stack>>> {
    let q = Query::parse(&s, q.as_deref(), "stacks", &["names", "default"], &["name"])?;
    let items: Vec<_> = s
        .config
        .stacks
        .iter()
        .filter(|n| q.filter("names").is_none_or(|f| f.contains(n)))
        .map(|n| present_stack(&s, n))
        .collect();
    Ok(Json(q.page_of(items)))
}

/// Labels and annotations only (admins).
async fn update_stack(
    State(s): State<AppState>,
    c: Caller,
    Path(name): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<v3stack::Stack>> {
    crate::http::metadata::only_metadata(&req)?;
    if !s.config.stacks.contains(&name) {
        return Err(ApiError::NotFound("Stack"));
    }
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    Ok(Json(present_stack(&s, &name)))
}

async fn stack(
    State(s): State<AppState>,
    _c: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<v3stack::Stack>> {
    if !s.config.stacks.contains(&name) {
        return Err(ApiError::NotFound("Stack"));
    }
    Ok(Json(present_stack(&s, &name)))
}
