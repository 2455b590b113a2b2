//! Admin buildpacks and stacks: the bundled buildpacks installed on start (a changed bundle
//! replaces the stored zip), admin uploads, positions for detection order, and the
//! resolution of an app's buildpack names into what a stager downloads.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row as _;
use wire::staging::BuildpackRef;

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::body;
use crate::http::paging::ListQuery;
use crate::http::util::{link, link_method, metadata, ts};
use crate::store::Select;
use crate::store::{is_unique_violation, new_guid, now_ms};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/buildpacks", get(list).post(create))
        .route("/v3/buildpacks/{guid}", get(show).patch(update).delete(remove))
        .route("/v3/buildpacks/{guid}/upload", post(upload).layer(DefaultBodyLimit::max(512 << 20)))
        .route("/v3/stacks", get(stacks))
        .route("/v3/stacks/{name}", get(stack))
}

fn present(s: &AppState, r: &AnyRow) -> ApiResult<Value> {
    let guid: String = r.try_get("guid")?;
    let base = format!("{}/buildpacks/{guid}", s.v3());
    let stack: String = r.try_get("stack")?;
    let filename: String = r.try_get("filename")?;
    Ok(json!({
        "guid": guid, "created_at": ts(r.try_get("created_at")?), "updated_at": ts(r.try_get("updated_at")?),
        "name": r.try_get::<String, _>("name")?,
        "stack": if stack.is_empty() { Value::Null } else { json!(stack) },
        "state": r.try_get::<String, _>("state")?,
        "filename": if filename.is_empty() { Value::Null } else { json!(filename) },
        "position": r.try_get::<i64, _>("position")?,
        "enabled": r.try_get::<i64, _>("enabled")? != 0,
        "locked": r.try_get::<i64, _>("locked")? != 0,
        "lifecycle": "buildpack",
        "metadata": metadata(),
        "links": {"self": link(base.clone()), "upload": link_method(format!("{base}/upload"), "POST")},
    }))
}

/// Install or refresh the bundled buildpacks (`(name, position, zip)`), keeping positions an
/// operator changed.
pub async fn install_bundled(s: &AppState, bundled: &[(String, u32, Vec<u8>)]) -> ApiResult<()> {
    for (name, position, zip) in bundled {
        let row = sqlx::query("SELECT guid, sha256 FROM buildpacks WHERE name = $1 AND stack = ''")
            .bind(name)
            .fetch_optional(&s.db.pool)
            .await?;
        let sha = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(zip))
        };
        let guid = match &row {
            Some(r) => {
                let old: String = r.try_get("sha256")?;
                if old == sha {
                    continue;
                }
                r.try_get::<String, _>("guid")?
            }
            None => new_guid(),
        };
        let data = bytes::Bytes::from(zip.clone());
        let stream = futures::stream::once(async move { Ok(data) });
        let info = s.blobs.put_stream(&blobstore::buildpack_key(&guid)?, Box::pin(stream)).await?;
        let now = now_ms();
        if row.is_some() {
            sqlx::query("UPDATE buildpacks SET sha256 = $1, state = 'READY', updated_at = $2 WHERE guid = $3")
                .bind(&info.sha256)
                .bind(now)
                .bind(&guid)
                .execute(&s.db.pool)
                .await?;
        } else {
            let res = sqlx::query(
                "INSERT INTO buildpacks (guid, name, stack, position, enabled, locked, filename, sha256, state, created_at, updated_at) \
                 VALUES ($1, $2, '', $3, 1, 0, $4, $5, 'READY', $6, $6)",
            )
            .bind(&guid)
            .bind(name)
            .bind(i64::from(*position))
            .bind(format!("{name}.zip"))
            .bind(&info.sha256)
            .bind(now)
            .execute(&s.db.pool)
            .await;
            match res {
                Err(e) if is_unique_violation(&e) => {}
                r => {
                    r?;
                }
            }
        }
    }
    Ok(())
}

/// What a build stages with.
pub struct Resolved {
    pub buildpacks: Vec<BuildpackRef>,
    pub skip_detect: bool,
}

fn buildpack_ref(s: &AppState, r: &AnyRow) -> ApiResult<BuildpackRef> {
    let guid: String = r.try_get("guid")?;
    let name: String = r.try_get("name")?;
    let sha: String = r.try_get("sha256")?;
    Ok(BuildpackRef {
        key: format!("{name}-{}", &sha[..sha.len().min(12)]),
        url: format!("{}/internal/v1/buildpacks/{guid}/download", s.internal_url()),
        name,
        sha256: sha,
    })
}

/// Named buildpacks in order (detection skipped, as in CF), or every enabled one by position.
pub async fn resolve(s: &AppState, names: &[String], stack: &str) -> ApiResult<Resolved> {
    if names.is_empty() {
        let rows = sqlx::query(
            "SELECT * FROM buildpacks WHERE enabled = 1 AND state = 'READY' AND (stack = '' OR stack = $1) ORDER BY position, created_at",
        )
        .bind(stack)
        .fetch_all(&s.db.pool)
        .await?;
        let buildpacks = rows.iter().map(|r| buildpack_ref(s, r)).collect::<ApiResult<Vec<_>>>()?;
        if buildpacks.is_empty() {
            return Err(ApiError::Unprocessable(
                "No buildpacks are installed for this stack; an admin must add one.".into(),
            ));
        }
        return Ok(Resolved { buildpacks, skip_detect: false });
    }
    let mut out = Vec::new();
    for n in names {
        let row = sqlx::query("SELECT * FROM buildpacks WHERE name = $1 AND state = 'READY' AND (stack = '' OR stack = $2)")
            .bind(n)
            .bind(stack)
            .fetch_optional(&s.db.pool)
            .await?
            .ok_or_else(|| unknown(n))?;
        out.push(buildpack_ref(s, &row)?);
    }
    Ok(Resolved { buildpacks: out, skip_detect: true })
}

fn unknown(name: &str) -> ApiError {
    ApiError::Unprocessable(format!(
        "Buildpack \"{name}\" must be an existing admin buildpack or a valid git URI (this platform has no internet access, so only admin buildpacks work; see 'paas buildpacks')"
    ))
}

/// Every name must be an admin buildpack.
pub async fn check_names(s: &AppState, names: &[String]) -> ApiResult<()> {
    for n in names {
        let hit = sqlx::query("SELECT guid FROM buildpacks WHERE name = $1")
            .bind(n)
            .fetch_optional(&s.db.pool)
            .await?;
        if hit.is_none() {
            return Err(unknown(n));
        }
    }
    Ok(())
}

async fn list(
    State(s): State<AppState>,
    _c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(
        q.as_deref(),
        &["names", "stacks", "label_selector", "lifecycle"],
        &["position", "name"],
    )?;
    let explicit = q.order_by != "created_at";
    let mut sel = Select::from("buildpacks");
    crate::http::metadata::select(&mut sel, &q, "buildpacks.guid")?;
    sel.filter(q.filter("names"), "name").filter(q.filter("stacks"), "stack");
    let mut q = q;
    if !explicit {
        q.order_by = "position".into();
    }
    let (total, rows) = sel.page(&s.db, &q.window()).await?;
    let items = rows.iter().map(|r| present(&s, r)).collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(q.envelope(&format!("{}/buildpacks", s.v3()), total, items)))
}

async fn find(s: &AppState, guid: &str) -> ApiResult<AnyRow> {
    sqlx::query("SELECT * FROM buildpacks WHERE guid = $1")
        .bind(guid)
        .fetch_optional(&s.db.pool)
        .await?
        .ok_or(ApiError::NotFound("Buildpack"))
}

async fn show(
    State(s): State<AppState>,
    _c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(present(&s, &find(&s, &guid).await?)?))
}

async fn create(State(s): State<AppState>, c: Caller, raw: Bytes) -> ApiResult<Response> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    let req: Value = body(&raw)?;
    let name = req.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return Err(ApiError::Unprocessable(
            "Name can only contain letters, digits, '_', '-' and '.'".into(),
        ));
    }
    let stack = req.get("stack").and_then(Value::as_str).unwrap_or_default().to_owned();
    let position = req.get("position").and_then(Value::as_i64).unwrap_or(1).max(1);
    let enabled = req.get("enabled").and_then(Value::as_bool).unwrap_or(true);
    let locked = req.get("locked").and_then(Value::as_bool).unwrap_or(false);
    let guid = new_guid();
    let now = now_ms();
    let res = sqlx::query(
        "INSERT INTO buildpacks (guid, name, stack, position, enabled, locked, filename, sha256, state, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, '', '', 'AWAITING_UPLOAD', $7, $7)",
    )
    .bind(&guid)
    .bind(&name)
    .bind(&stack)
    .bind(position)
    .bind(i64::from(enabled))
    .bind(i64::from(locked))
    .bind(now)
    .execute(&s.db.pool)
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Uniqueness(format!(
                "Buildpack with name '{name}' and an unassigned stack already exists"
            )))
        }
        r => r?,
    };
    Ok((StatusCode::CREATED, Json(present(&s, &find(&s, &guid).await?)?)).into_response())
}

async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    let row = find(&s, &guid).await?;
    let req: Value = body(&raw)?;
    let position =
        req.get("position").and_then(Value::as_i64).unwrap_or(row.try_get("position")?).max(1);
    let enabled = req
        .get("enabled")
        .and_then(Value::as_bool)
        .map_or(row.try_get::<i64, _>("enabled")?, i64::from);
    let locked = req
        .get("locked")
        .and_then(Value::as_bool)
        .map_or(row.try_get::<i64, _>("locked")?, i64::from);
    let name =
        req.get("name").and_then(Value::as_str).map(str::to_owned).unwrap_or(row.try_get("name")?);
    sqlx::query("UPDATE buildpacks SET name = $1, position = $2, enabled = $3, locked = $4, updated_at = $5 WHERE guid = $6")
        .bind(&name)
        .bind(position)
        .bind(enabled)
        .bind(locked)
        .bind(now_ms())
        .bind(&guid)
        .execute(&s.db.pool)
        .await?;
    Ok(Json(present(&s, &find(&s, &guid).await?)?))
}

async fn upload(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    mut mp: Multipart,
) -> ApiResult<Json<Value>> {
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    let row = find(&s, &guid).await?;
    if row.try_get::<i64, _>("locked")? != 0 {
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
    let info = s.blobs.put_file(&blobstore::buildpack_key(&guid)?, &dest).await?;
    sqlx::query("UPDATE buildpacks SET filename = $1, sha256 = $2, state = 'READY', updated_at = $3 WHERE guid = $4")
        .bind(&filename)
        .bind(&info.sha256)
        .bind(now_ms())
        .bind(&guid)
        .execute(&s.db.pool)
        .await?;
    Ok(Json(present(&s, &find(&s, &guid).await?)?))
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
    let res: ApiResult<()> = async {
        s.blobs.delete(&blobstore::buildpack_key(&guid)?).await?;
        sqlx::query("DELETE FROM buildpacks WHERE guid = $1")
            .bind(&guid)
            .execute(&s.db.pool)
            .await?;
        Ok(())
    }
    .await;
    let job = crate::domain::jobs::run(&s, "buildpack.delete", "", "", async { res }).await?;
    Ok(crate::http::jobs::accepted(&s, &job))
}

fn present_stack(s: &AppState, name: &str) -> Value {
    json!({
        "guid": name, "created_at": ts(0), "updated_at": ts(0), "name": name,
        "description": "Debian 12 (bookworm) with runtimes from Debian packages",
        "build_rootfs_image": name, "run_rootfs_image": name,
        "default": name == s.config.default_stack, "state": "ACTIVE", "metadata": metadata(),
        "links": {"self": link(format!("{}/stacks/{name}", s.v3()))},
    })
}

async fn stacks(
    State(s): State<AppState>,
    _c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(q.as_deref(), &["names", "default"], &["name"])?;
    let items: Vec<Value> = s
        .config
        .stacks
        .iter()
        .filter(|n| q.filter("names").is_none_or(|f| f.contains(n)))
        .map(|n| present_stack(&s, n))
        .collect();
    let total = items.len() as i64;
    Ok(Json(q.envelope(&format!("{}/stacks", s.v3()), total, items)))
}

async fn stack(
    State(s): State<AppState>,
    _c: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    if !s.config.stacks.contains(&name) {
        return Err(ApiError::NotFound("Stack"));
    }
    Ok(Json(present_stack(&s, &name)))
}
