//! Droplets (docs/api.md): what staging produced — process types, buildpacks,
//! stack and the checksum cells verify — listed, shown and downloaded; and droplets a client
//! brings, created and then uploaded.

use axum::extract::{DefaultBodyLimit, Multipart, Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use wire::v3::droplet::{Checksum, DropletRelationships};
use wire::v3::{self, Lifecycle, Link, Metadata, Page, ToOne};

use crate::access::{Caller, Need};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::list::List;
use crate::http::upload::{self, Scratch};
use crate::http::util::{created, links, ts};
use crate::store;
use crate::store::droplets::Droplet;
use crate::AppState;

pub fn routes(max_upload: u64) -> Router<AppState> {
    let limit = usize::try_from(max_upload.saturating_add(1 << 20)).unwrap_or(usize::MAX);
    Router::new()
        .route("/v3/droplets", get(list).post(create))
        .route("/v3/droplets/{guid}/upload", post(upload).layer(DefaultBodyLimit::max(limit)))
        .route("/v3/droplets/{guid}", get(show).patch(update))
        .route("/v3/droplets/{guid}/download", get(download))
        .route("/v3/apps/{guid}/droplets", get(app_droplets))
        .route("/v3/packages/{guid}/droplets", get(package_droplets))
}

impl Droplet {
    pub fn present(&self, s: &AppState) -> v3::Droplet {
        let base = format!("{}/droplets/{}", s.v3(), self.guid);
        let app = format!("{}/apps/{}", s.v3(), self.app_guid);
        let docker = !self.image.is_empty();
        let kind = if docker { "docker" } else { "buildpack" };
        v3::Droplet {
            guid: self.guid.clone(),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            state: self.state,
            error: (!self.error.is_empty()).then(|| self.error.clone()),
            lifecycle: Lifecycle { kind: kind.into(), data: Default::default() },
            execution_metadata: self.execution_metadata.clone(),
            process_types: self.process_types.clone(),
            // CC: docker droplets have neither a checksum nor a stack, but an image.
            checksum: (!docker).then(|| Checksum {
                kind: "sha256".into(),
                value: (!self.sha256.is_empty()).then(|| self.sha256.clone()),
            }),
            buildpacks: self.buildpacks.clone(),
            stack: (!docker).then(|| self.stack.clone()),
            image: docker.then(|| self.image.clone()),
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
                ("upload", Link::with_method(format!("{base}/upload"), "POST")),
            ])
            .into_iter()
            .filter(|(k, _)| match k.as_str() {
                "package" => !self.package_guid.is_empty(),
                "upload" => self.state == v3::DropletState::AwaitingUpload,
                "download" => self.state == v3::DropletState::Staged,
                _ => true,
            })
            .collect(),
        }
    }
}

/// `POST /v3/droplets`: a droplet of the app, AWAITING_UPLOAD.
async fn create(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
    CfJson(req): CfJson<v3::droplet::DropletCreate>,
) -> ApiResult<Response> {
    let source = q.as_deref().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "source_guid")
            .map(|(_, v)| v.into_owned())
    });
    let app_guid = req.relationships.app.data.map(|g| g.guid).unwrap_or_default();
    let app = crate::http::apps::require(&s, &c, &app_guid, Need::Developer).await.map_err(
        |e| match e {
            ApiError::NotFound(_) => ApiError::Unprocessable(
                "App with guid given does not exist or you do not have access to it.".into(),
            ),
            e => e,
        },
    )?;
    if let Some(src) = source {
        // CC's copy: a STAGED droplet the caller may read, for an app the caller develops.
        let from = require(&s, &c, &src, Need::Read).await?;
        let d = crate::domain::droplets::copy(&s, &from, &app).await?;
        return Ok(created(d.present(&s)));
    }
    let types = req.process_types.unwrap_or_default();
    if types.keys().any(|k| k.trim().is_empty()) {
        return Err(ApiError::Unprocessable("Process types must have names".into()));
    }
    let d = crate::domain::droplets::create(&s, &app, types).await?;
    Ok(created(d.present(&s)))
}

/// `POST /v3/droplets/:guid/upload` (multipart `bits`: the droplet `.tgz`): a job that checks
/// and stores it; the droplet is STAGED when it completes.
async fn upload(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    mut multipart: Multipart,
) -> ApiResult<Response> {
    let d = require(&s, &c, &guid, Need::Developer).await?;
    crate::domain::droplets::claim_upload(&s, &d).await?;
    let scratch = Scratch::new(&s, "droplet")?;
    let received = async {
        let malformed = |e: axum::extract::multipart::MultipartError| {
            ApiError::Unprocessable(format!("malformed multipart body: {e}"))
        };
        let mut tgz = None;
        while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
            if field.name() != Some("bits") {
                return Err(ApiError::Unprocessable(
                    "unexpected multipart field; send the droplet as 'bits'".into(),
                ));
            }
            let dest = scratch.dir.join("droplet.tgz");
            upload::field_to_file(&mut field, &dest, s.config.max_upload_bytes).await?;
            tgz = Some(dest);
        }
        tgz.ok_or_else(|| ApiError::Unprocessable("the upload has no 'bits'".into()))
    }
    .await;
    let done = crate::domain::droplets::finish_upload(&s, &d, received, &scratch.dir).await;
    let outcome = done.map(|_| ());
    let job = crate::domain::jobs::run(&s, "droplet.upload", "droplet", &d.guid, async { outcome })
        .await?;
    Ok(crate::http::jobs::accepted(&s, &job))
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
    const FILTERS: [&str; 6] =
        ["guids", "states", "app_guids", "space_guids", "organization_guids", "label_selector"];
    let list = List::parse(&s, q.as_deref(), "droplets", "droplets", &FILTERS, &[])?;
    list_with(&s, &c, list).await
}

async fn list_with(s: &AppState, c: &Caller, list: List) -> ApiResult<Json<Page<v3::Droplet>>> {
    let list = list
        .join("JOIN apps a ON a.guid = droplets.app_guid")
        .filter("guids", "droplets.guid")
        .filter("states", "droplets.state")
        .filter("app_guids", "droplets.app_guid")
        .filter("package_guids", "droplets.package_guid")
        .filter("space_guids", "a.space_guid")
        .visible("a.space_guid", &c.visible_spaces().await?);
    let droplets =
        list.fetch(async |sel, w| sel.page_of(&s.db, w, Droplet::from_row).await).await?;
    Ok(Json(droplets.present(|d| d.present(s))))
}

async fn app_droplets(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Droplet>>> {
    let app = crate::http::apps::require(&s, &c, &guid, Need::Read).await?;
    const FILTERS: [&str; 4] = ["guids", "states", "current", "label_selector"];
    let path = format!("apps/{guid}/droplets");
    let mut list = List::parse(&s, q.as_deref(), &path, "droplets", &FILTERS, &[])?
        .set("app_guids", vec![app.guid.clone()]);
    if list.query().filter("current").is_some_and(|v| v.iter().any(|x| x == "true")) {
        list = list.set("guids", vec![app.droplet_guid.clone()]);
    }
    list_with(&s, &c, list).await
}

async fn package_droplets(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Droplet>>> {
    let (p, _, _) = crate::http::packages::require(&s, &c, &guid, Need::Read).await?;
    let path = format!("packages/{guid}/droplets");
    let list = List::parse(&s, q.as_deref(), &path, "droplets", &["guids", "states"], &[])?
        .set("package_guids", vec![p.guid]);
    list_with(&s, &c, list).await
}

/// Labels and annotations only.
async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<serde_json::Value>,
) -> ApiResult<Json<v3::Droplet>> {
    crate::http::metadata::only_metadata(&req)?;
    Ok(Json(require(&s, &c, &guid, Need::Developer).await?.present(&s)))
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
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let mut oci = false;
    for (k, v) in form_urlencoded::parse(q.as_deref().unwrap_or_default().as_bytes()) {
        match (k.as_ref(), v.as_ref()) {
            ("format", "oci") => oci = true,
            ("format", "tgz") => {}
            ("format", other) => {
                return Err(ApiError::BadQuery(format!(
                    "format must be 'tgz' or 'oci', not '{other}'"
                )))
            }
            (k, _) => return Err(ApiError::BadQuery(format!("Unknown query parameter(s): '{k}'"))),
        }
    }
    let d = require(&s, &c, &guid, Need::Developer).await?;
    if oci {
        return export(&s, &d).await;
    }
    crate::http::packages::stream_blob(
        &s,
        &blobstore::droplet_key(&d.guid)?,
        "application/gzip",
        "Droplet",
    )
    .await
}

/// The droplet as a tar of an OCI image layout, streamed from a scratch file already unlinked.
async fn export(s: &AppState, d: &Droplet) -> ApiResult<Response> {
    use axum::http::header;
    use axum::response::IntoResponse as _;
    let scratch = Scratch::new(s, "export")?;
    let tar = crate::domain::export::oci_image(s, d, &scratch.dir).await?;
    let file = tokio::fs::File::open(&tar).await?;
    let len = file.metadata().await?.len();
    drop(scratch);
    let stream = tokio_util::io::ReaderStream::new(file);
    let name = format!("attachment; filename=\"droplet_{}.oci.tar\"", d.guid);
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}
