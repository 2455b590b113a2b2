//! Packages (contracts/ccapi.md §4.6, §3.1 steps 5-8): bits and docker packages, the upload
//! (multipart `resources` + `bits`), resource matching against the per-file cache, download
//! and copy.

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Multipart, Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row as _;

use crate::access::{Caller, Need};
use crate::error::{ApiError, ApiResult};
use crate::http::apps::App;
use crate::domain::events::{self, Actor};
use crate::http::extract::body;
use crate::http::paging::ListQuery;
use crate::http::upload::{self, Scratch};
use crate::http::util::{link, link_method, metadata, to_one, ts};
use crate::store::Select;
use crate::store::{new_guid, now_ms};
use crate::AppState;

pub fn routes(max_upload: u64) -> Router<AppState> {
    let limit = usize::try_from(max_upload.saturating_add(1 << 20)).unwrap_or(usize::MAX);
    Router::new()
        .route("/v3/packages", get(list).post(create))
        .route("/v3/packages/{guid}", get(show).delete(remove))
        .route("/v3/packages/{guid}/upload", post(upload_bits).layer(DefaultBodyLimit::max(limit)))
        .route("/v3/packages/{guid}/download", get(download))
        .route("/v3/apps/{guid}/packages", get(app_packages))
        .route("/v3/resource_matches", post(resource_matches))
}

#[derive(Debug, Clone)]
pub struct Package {
    pub guid: String,
    pub app_guid: String,
    pub kind: String,
    pub state: String,
    pub sha256: String,
    pub size: i64,
    pub error: String,
    pub image: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Package {
    fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            app_guid: r.try_get("app_guid")?,
            kind: r.try_get("type")?,
            state: r.try_get("state")?,
            sha256: r.try_get("sha256")?,
            size: r.try_get("size")?,
            error: r.try_get("error")?,
            image: r.try_get("image")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    pub fn present(&self, s: &AppState) -> Value {
        let base = format!("{}/packages/{}", s.v3(), self.guid);
        let data = if self.kind == "docker" {
            json!({"image": self.image, "username": null, "password": null})
        } else {
            json!({
                "checksum": {"type": "sha256", "value": if self.sha256.is_empty() { Value::Null } else { json!(self.sha256) }},
                "error": if self.error.is_empty() { Value::Null } else { json!(self.error) },
            })
        };
        json!({
            "guid": self.guid, "created_at": ts(self.created_at), "updated_at": ts(self.updated_at),
            "type": self.kind, "data": data, "state": self.state,
            "relationships": {"app": to_one(&self.app_guid)},
            "metadata": metadata(),
            "links": {
                "self": link(base.clone()),
                "upload": link_method(format!("{base}/upload"), "POST"),
                "download": link_method(format!("{base}/download"), "GET"),
                "app": link(format!("{}/apps/{}", s.v3(), self.app_guid)),
            },
        })
    }
}

pub async fn find(s: &AppState, guid: &str) -> ApiResult<Option<Package>> {
    let row = sqlx::query("SELECT * FROM packages WHERE guid = $1")
        .bind(guid)
        .fetch_optional(&s.db.pool)
        .await?;
    row.as_ref().map(Package::from_row).transpose()
}

/// The package and its app, if the caller may read them (404 "Package" otherwise).
pub async fn require(
    s: &AppState,
    c: &Caller,
    guid: &str,
    need: Need,
) -> ApiResult<(Package, App, crate::store::spaces::Space)> {
    let p = find(s, guid).await?.ok_or(ApiError::NotFound("Package"))?;
    let (app, space) = crate::http::apps::require_with_space(s, c, &p.app_guid, need)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => ApiError::NotFound("Package"),
            e => e,
        })?;
    Ok((p, app, space))
}

async fn insert(s: &AppState, p: &Package) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO packages (guid, app_guid, type, state, sha256, size, error, image, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, '', $7, $8, $8)",
    )
    .bind(&p.guid)
    .bind(&p.app_guid)
    .bind(&p.kind)
    .bind(&p.state)
    .bind(&p.sha256)
    .bind(p.size)
    .bind(&p.image)
    .bind(p.created_at)
    .execute(&s.db.pool)
    .await?;
    Ok(())
}

async fn create(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
    raw: Bytes,
) -> ApiResult<Response> {
    let req: Value = body(&raw)?;
    let app_guid =
        req.pointer("/relationships/app/data/guid").and_then(Value::as_str).unwrap_or_default();
    let (app, space) = crate::http::apps::require_with_space(&s, &c, app_guid, Need::Developer)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => {
                ApiError::Unprocessable("App must exist and you must have access to it".into())
            }
            e => e,
        })?;
    let now = now_ms();
    let source = q.as_deref().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "source_guid")
            .map(|(_, v)| v.into_owned())
    });
    let mut p = Package {
        guid: new_guid(),
        app_guid: app.guid.clone(),
        kind: "bits".into(),
        state: "AWAITING_UPLOAD".into(),
        sha256: String::new(),
        size: 0,
        error: String::new(),
        image: String::new(),
        created_at: now,
        updated_at: now,
    };
    if let Some(src) = source {
        let (from, _, _) = require(&s, &c, &src, Need::Read).await?;
        if from.state != "READY" {
            return Err(ApiError::Unprocessable("Only READY packages can be copied".into()));
        }
        p.kind = from.kind.clone();
        p.image = from.image.clone();
        if from.kind == "bits" {
            s.blobs
                .copy(&blobstore::package_key(&from.guid)?, &blobstore::package_key(&p.guid)?)
                .await?;
        }
        p.sha256 = from.sha256;
        p.size = from.size;
        p.state = "READY".into();
    } else {
        let kind = req.get("type").and_then(Value::as_str).unwrap_or_default();
        match kind {
            "bits" => {}
            "docker" => {
                let image = req.pointer("/data/image").and_then(Value::as_str).unwrap_or_default();
                if image.is_empty() {
                    return Err(ApiError::Unprocessable(
                        "Data image required for docker packages".into(),
                    ));
                }
                p.kind = "docker".into();
                p.image = image.into();
                p.state = "READY".into();
            }
            _ => {
                return Err(ApiError::Unprocessable("Type must be one of 'bits', 'docker'".into()))
            }
        }
    }
    insert(&s, &p).await?;
    let t = space.target(&app.guid, "app", &app.name);
    events::record(
        &s,
        "audit.app.package.create",
        &Actor::of(&c),
        &t,
        json!({"package_guid": p.guid}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(p.present(&s))).into_response())
}

async fn set_state(
    s: &AppState,
    guid: &str,
    state: &str,
    error: &str,
    sha256: &str,
    size: i64,
) -> ApiResult<()> {
    sqlx::query("UPDATE packages SET state = $1, error = $2, sha256 = $3, size = $4, updated_at = $5 WHERE guid = $6")
        .bind(state)
        .bind(error)
        .bind(sha256)
        .bind(size)
        .bind(now_ms())
        .bind(guid)
        .execute(&s.db.pool)
        .await?;
    Ok(())
}

async fn upload_bits(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    multipart: Multipart,
) -> ApiResult<Json<Value>> {
    let (p, app, space) = require(&s, &c, &guid, Need::Developer).await?;
    if p.kind != "bits" {
        return Err(ApiError::Unprocessable(
            "Bits can only be uploaded to a package of type 'bits'".into(),
        ));
    }
    let claimed = sqlx::query("UPDATE packages SET state = 'PROCESSING_UPLOAD', updated_at = $1 WHERE guid = $2 AND state = 'AWAITING_UPLOAD'")
        .bind(now_ms())
        .bind(&p.guid)
        .execute(&s.db.pool)
        .await?;
    if claimed.rows_affected() == 0 {
        return Err(ApiError::PackageBitsAlreadyUploaded);
    }
    match receive(&s, &p, multipart).await {
        Ok((sha256, size)) => set_state(&s, &p.guid, "READY", "", &sha256, size).await?,
        Err(e) => {
            // A bad upload leaves the package as it was, so the client can simply try again.
            let (state, err) = if matches!(e, ApiError::Internal(_)) {
                ("FAILED", e.to_string())
            } else {
                ("AWAITING_UPLOAD", String::new())
            };
            set_state(&s, &p.guid, state, &err, "", 0).await?;
            return Err(e);
        }
    }
    let t = space.target(&app.guid, "app", &app.name);
    events::record(
        &s,
        "audit.app.upload-bits",
        &Actor::of(&c),
        &t,
        json!({"package_guid": p.guid}),
    )
    .await;
    let p = find(&s, &guid).await?.ok_or(ApiError::NotFound("Package"))?;
    Ok(Json(p.present(&s)))
}

/// Read the multipart body, assemble the package and store it. Returns (sha256, size).
async fn receive(s: &AppState, p: &Package, mut multipart: Multipart) -> ApiResult<(String, i64)> {
    let scratch = Scratch::new(s, "upload")?;
    let mut resources = Vec::new();
    let mut bits = None;
    let malformed = |e: axum::extract::multipart::MultipartError| {
        ApiError::AppBitsUploadInvalid(format!("malformed multipart body: {e}"))
    };
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        match field.name().unwrap_or_default() {
            "resources" => {
                let text = field.text().await.map_err(malformed)?;
                let v: Value = serde_json::from_str(&text).map_err(|e| {
                    ApiError::AppBitsUploadInvalid(format!("resources is not valid JSON: {e}"))
                })?;
                resources = upload::parse_resources(&v)?;
            }
            "bits" => {
                let dest = scratch.dir.join("bits.zip");
                upload::field_to_file(&mut field, &dest, s.config.max_upload_bytes).await?;
                bits = Some(dest);
            }
            other => {
                return Err(ApiError::AppBitsUploadInvalid(format!(
                    "unexpected multipart field '{other}'; send 'resources' and 'bits'"
                )))
            }
        }
    }
    if bits.is_none() && resources.is_empty() {
        return Err(ApiError::AppBitsUploadInvalid(
            "the upload has neither 'bits' nor 'resources'".into(),
        ));
    }
    let zip = upload::assemble(s, &scratch, bits, resources).await?;
    let info = s.blobs.put_file(&blobstore::package_key(&p.guid)?, &zip).await?;
    Ok((info.sha256, i64::try_from(info.size).unwrap_or(i64::MAX)))
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(
        q.as_deref(),
        &[
            "guids",
            "states",
            "types",
            "app_guids",
            "space_guids",
            "organization_guids",
            "label_selector",
        ],
        &[],
    )?;
    list_with(&s, &c, q, format!("{}/packages", s.v3())).await
}

async fn list_with(s: &AppState, c: &Caller, q: ListQuery, base: String) -> ApiResult<Json<Value>> {
    let mut sel = Select::from("packages").join("JOIN apps a ON a.guid = packages.app_guid");
    crate::http::metadata::select(&mut sel, &q, "packages.guid")?;
    sel.filter(q.filter("guids"), "packages.guid")
        .filter(q.filter("states"), "packages.state")
        .filter(q.filter("types"), "packages.type")
        .filter(q.filter("app_guids"), "packages.app_guid")
        .filter(q.filter("space_guids"), "a.space_guid");
    sel.visible("a.space_guid", &c.visible_spaces().await?);
    let (total, rows) = sel.page(&s.db, &q.window()).await?;
    let items = rows
        .iter()
        .map(|r| Package::from_row(r).map(|p| p.present(s)))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(q.envelope(&base, total, items)))
}

async fn app_packages(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let app = crate::http::apps::require(&s, &c, &guid, Need::Read).await?;
    let mut q = ListQuery::parse(q.as_deref(), &["guids", "states", "types"], &[])?;
    q.filters.insert("app_guids".into(), vec![app.guid]);
    list_with(&s, &c, q, format!("{}/apps/{guid}/packages", s.v3())).await
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(require(&s, &c, &guid, Need::Read).await?.0.present(&s)))
}

async fn remove(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    let (p, _, _) = require(&s, &c, &guid, Need::Developer).await?;
    let res: ApiResult<()> = async {
        if p.kind == "bits" {
            s.blobs.delete(&blobstore::package_key(&p.guid)?).await?;
        }
        sqlx::query("DELETE FROM packages WHERE guid = $1")
            .bind(&p.guid)
            .execute(&s.db.pool)
            .await?;
        Ok(())
    }
    .await;
    let job = crate::domain::jobs::run(&s, "package.delete", "", "", async { res }).await?;
    Ok(crate::http::jobs::accepted(&s, &job))
}

/// Stream a stored blob as `application/zip` or `application/gzip`.
pub async fn stream_blob(
    s: &AppState,
    key: &str,
    content_type: &'static str,
    what: &'static str,
) -> ApiResult<Response> {
    let reader = match s.blobs.get(key).await {
        Ok(r) => r,
        Err(blobstore::BlobError::NotFound { .. }) => return Err(ApiError::NotFound(what)),
        Err(e) => return Err(e.into()),
    };
    let len = reader.info().size;
    let sha = reader.info().sha256.clone();
    let stream = tokio_util::io::ReaderStream::new(reader);
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
            (header::ETAG, format!("\"{sha}\"")),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn download(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    let (p, _, _) = require(&s, &c, &guid, Need::Developer).await?;
    if p.kind != "bits" || p.state != "READY" {
        return Err(ApiError::Unprocessable(
            "Package has no bits to download; only READY bits packages do".into(),
        ));
    }
    stream_blob(&s, &blobstore::package_key(&p.guid)?, "application/zip", "Package").await
}

/// Which of the listed files the platform already has (by SHA-1), echoing each entry.
async fn resource_matches(
    State(s): State<AppState>,
    _c: Caller,
    raw: Bytes,
) -> ApiResult<Response> {
    let req: Value = body(&raw)?;
    let list = req
        .get("resources")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::Unprocessable("Resources must be an array".into()))?;
    if list.len() > 5000 {
        return Err(ApiError::Unprocessable(
            "Resources array is too long (maximum 5000 per request)".into(),
        ));
    }
    let mut found = Vec::new();
    for r in list {
        let sha1 = r
            .pointer("/checksum/value")
            .or_else(|| r.get("sha1"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let size =
            r.get("size_in_bytes").or_else(|| r.get("size")).and_then(Value::as_u64).unwrap_or(0);
        if sha1.len() != 40
            || !sha1.chars().all(|c| c.is_ascii_hexdigit())
            || size < s.config.resource_cache_min_bytes
        {
            continue;
        }
        let key = blobstore::resource_key(&sha1.to_ascii_lowercase())?;
        if matches!(s.blobs.info(&key).await, Ok(info) if info.size == size) {
            let mut r = r.clone();
            if r.get("mode").is_none() {
                r["mode"] = json!("644");
            }
            found.push(r);
        }
    }
    Ok((StatusCode::CREATED, Json(json!({ "resources": found }))).into_response())
}
