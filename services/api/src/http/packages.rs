//! Packages (docs/api.md): bits and docker packages, the upload (multipart `resources` +
//! `bits`), resource matching against the per-file cache, download and copy.

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use wire::v3::droplet::Checksum;
use wire::v3::package::{PackageData, PackageRelationships};
use wire::v3::{self, Link, Metadata, PackageState, Page, ToOne};

use crate::access::{Caller, Need};
use crate::domain::events::{self, Actor};
use crate::domain::feature_flags::{self as flags, Flag};
use crate::domain::staging;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::list::List;
use crate::http::upload::{self, Scratch};
use crate::http::util::{created, links, ts};
use crate::store;
use crate::store::apps::App;
use crate::store::packages::Package;
use crate::AppState;

pub fn routes(max_upload: u64) -> Router<AppState> {
    let limit = usize::try_from(max_upload.saturating_add(1 << 20)).unwrap_or(usize::MAX);
    Router::new()
        .route("/v3/packages", get(list).post(create))
        .route("/v3/packages/{guid}", get(show).patch(update).delete(remove))
        .route("/v3/packages/{guid}/upload", post(upload_bits).layer(DefaultBodyLimit::max(limit)))
        .route("/v3/packages/{guid}/download", get(download))
        .route("/v3/apps/{guid}/packages", get(app_packages))
        .route("/v3/resource_matches", post(resource_matches))
}

impl Package {
    pub fn present(&self, s: &AppState) -> v3::Package {
        let base = format!("{}/packages/{}", s.v3(), self.guid);
        let some = |x: &str| (!x.is_empty()).then(|| x.to_owned());
        let data = if self.kind == "docker" {
            // The password is never shown back (CC: `***` when there is one).
            let user = some(&self.docker_username);
            let password = user.as_ref().map(|_| "***".to_owned());
            PackageData::Docker { image: self.image.clone(), username: user, password }
        } else {
            PackageData::Bits {
                checksum: Checksum { kind: "sha256".into(), value: some(&self.sha256) },
                error: some(&self.error),
            }
        };
        v3::Package {
            guid: self.guid.clone(),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            kind: self.kind.clone(),
            data,
            state: self.state,
            relationships: PackageRelationships { app: ToOne::of(&self.app_guid) },
            metadata: Metadata::default(),
            links: links([
                ("self", Link::new(base.clone())),
                ("upload", Link::with_method(format!("{base}/upload"), "POST")),
                ("download", Link::with_method(format!("{base}/download"), "GET")),
                ("app", Link::new(format!("{}/apps/{}", s.v3(), self.app_guid))),
            ]),
        }
    }
}

/// The package and its app, if the caller may read them (404 "Package" otherwise).
pub async fn require(
    s: &AppState,
    c: &Caller,
    guid: &str,
    need: Need,
) -> ApiResult<(Package, App, crate::store::spaces::Space)> {
    let p = store::packages::find(&s.db.pool, guid).await?.ok_or(ApiError::NotFound("Package"))?;
    let (app, space) = crate::http::apps::require_with_space(s, c, &p.app_guid, need)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => ApiError::NotFound("Package"),
            e => e,
        })?;
    Ok((p, app, space))
}

async fn create(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Response> {
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
    let source = q.as_deref().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "source_guid")
            .map(|(_, v)| v.into_owned())
    });
    let p = if let Some(src) = source {
        let (from, _, _) = require(&s, &c, &src, Need::Read).await?;
        staging::copy_package(&s, &app.guid, &from).await?
    } else {
        match req.get("type").and_then(Value::as_str).unwrap_or_default() {
            "bits" => staging::create_package(&s, &app.guid, "bits", "").await?,
            "docker" => {
                let image = req.pointer("/data/image").and_then(Value::as_str).unwrap_or_default();
                if image.is_empty() {
                    return Err(ApiError::Unprocessable(
                        "Data image required for docker packages".into(),
                    ));
                }
                flags::require(&s, &c, Flag::DiegoDocker).await?;
                let text = |k: &str| req.pointer(&format!("/data/{k}")).and_then(Value::as_str);
                let creds = match (text("username"), text("password")) {
                    (None, None) => None,
                    (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => {
                        Some((u.to_owned(), p.to_owned()))
                    }
                    _ => {
                        return Err(ApiError::Unprocessable(
                            "Data username and password must both be given for a private image"
                                .into(),
                        ))
                    }
                };
                if let Err(e) = oci::Reference::parse(image) {
                    return Err(ApiError::Unprocessable(e.to_string()));
                }
                staging::create_docker_package(&s, &app.guid, image, creds).await?
            }
            _ => {
                return Err(ApiError::Unprocessable("Type must be one of 'bits', 'docker'".into()))
            }
        }
    };
    let t = space.target(&app.guid, "app", &app.name);
    events::record(
        &s,
        "audit.app.package.create",
        &Actor::of(&c),
        &t,
        json!({"package_guid": p.guid}),
    )
    .await;
    Ok(created(p.present(&s)))
}

async fn upload_bits(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    multipart: Multipart,
) -> ApiResult<Json<v3::Package>> {
    let (p, app, space) = require(&s, &c, &guid, Need::Developer).await?;
    flags::require(&s, &c, Flag::AppBitsUpload).await?;
    staging::claim_upload(&s, &p).await?;
    let (_scratch, zip) = match receive(&s, multipart).await {
        Ok((scratch, zip)) => (Some(scratch), Ok(zip)),
        Err(e) => (None, Err(e)),
    };
    staging::finish_upload(&s, &p.guid, zip).await?;
    let t = space.target(&app.guid, "app", &app.name);
    events::record(
        &s,
        "audit.app.upload-bits",
        &Actor::of(&c),
        &t,
        json!({"package_guid": p.guid}),
    )
    .await;
    let p = store::packages::find(&s.db.pool, &guid).await?.ok_or(ApiError::NotFound("Package"))?;
    Ok(Json(p.present(&s)))
}

/// Read the multipart body and assemble the package zip; the scratch space holding it.
async fn receive(s: &AppState, mut multipart: Multipart) -> ApiResult<(Scratch, PathBuf)> {
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
    Ok((scratch, zip))
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Package>>> {
    const FILTERS: [&str; 7] = [
        "guids",
        "states",
        "types",
        "app_guids",
        "space_guids",
        "organization_guids",
        "label_selector",
    ];
    list_with(&s, &c, List::parse(&s, q.as_deref(), "packages", "packages", &FILTERS, &[])?).await
}

async fn list_with(s: &AppState, c: &Caller, list: List) -> ApiResult<Json<Page<v3::Package>>> {
    let list = list
        .join("JOIN apps a ON a.guid = packages.app_guid")
        .filter("guids", "packages.guid")
        .filter("states", "packages.state")
        .filter("types", "packages.type")
        .filter("app_guids", "packages.app_guid")
        .filter("space_guids", "a.space_guid")
        .visible("a.space_guid", &c.visible_spaces().await?);
    let packages =
        list.fetch(async |sel, w| sel.page_of(&s.db, w, Package::from_row).await).await?;
    Ok(Json(packages.present(|p| p.present(s))))
}

async fn app_packages(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Package>>> {
    let app = crate::http::apps::require(&s, &c, &guid, Need::Read).await?;
    let path = format!("apps/{guid}/packages");
    let list =
        List::parse(&s, q.as_deref(), &path, "packages", &["guids", "states", "types"], &[])?
            .set("app_guids", vec![app.guid]);
    list_with(&s, &c, list).await
}

/// Labels and annotations only.
async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<v3::Package>> {
    crate::http::metadata::only_metadata(&req)?;
    Ok(Json(require(&s, &c, &guid, Need::Developer).await?.0.present(&s)))
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::Package>> {
    Ok(Json(require(&s, &c, &guid, Need::Read).await?.0.present(&s)))
}

async fn remove(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    let (p, _, _) = require(&s, &c, &guid, Need::Developer).await?;
    let res = staging::delete_package(&s, &p).await;
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
    if p.kind != "bits" || p.state != PackageState::Ready {
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
    CfJson(req): CfJson<Value>,
) -> ApiResult<Response> {
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
    // With `resource_matching` off every file is uploaded.
    let matching = flags::enabled(&s, Flag::ResourceMatching).await?;
    for r in list.iter().filter(|_| matching) {
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
                r["mode"] = Value::from("644");
            }
            found.push(r);
        }
    }
    Ok(created(Matches { resources: found }))
}

/// The answer of `POST /v3/resource_matches`: the matched entries as the client sent them
/// (v3 `checksum`/`size_in_bytes` or the older `sha1`/`size`, with any other fields), so a
/// client finds its own entries back unchanged.
#[derive(serde::Serialize)]
struct Matches {
    resources: Vec<Value>,
}
