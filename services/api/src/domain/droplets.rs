//! Droplets a client brings (`cf push --droplet`, CC's `POST /v3/droplets` and its upload):
//! created AWAITING_UPLOAD for an app, then an upload is checked — a gzipped tar the archive
//! rules accept, with the droplet's `app/` — and stored; the droplet is STAGED with its
//! checksum and size, its process types those given at creation or, when none were, the
//! `start_command` of its `staging_info.yml` as `web`. A refused upload leaves the droplet
//! AWAITING_UPLOAD for another try; a failure of ours makes it FAILED.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wire::v3::DropletState;

use crate::domain::staging::droplet_change;
use crate::error::{ApiError, ApiResult};
use crate::store::apps::App;
use crate::store::droplets::Droplet;
use crate::store::{self, new_guid, now_ms};
use crate::AppState;

/// A droplet waiting for its upload, on the app's stack.
pub async fn create(
    s: &AppState,
    app: &App,
    process_types: BTreeMap<String, String>,
) -> ApiResult<Droplet> {
    let now = now_ms();
    let d = Droplet {
        guid: new_guid(),
        app_guid: app.guid.clone(),
        package_guid: String::new(),
        build_guid: String::new(),
        state: DropletState::AwaitingUpload,
        error: String::new(),
        sha256: String::new(),
        size: 0,
        buildpacks: Vec::new(),
        process_types,
        execution_metadata: String::new(),
        image: String::new(),
        stack: app.stack.clone(),
        created_at: now,
        updated_at: now,
    };
    store::droplets::insert(&s.db.pool, &d).await?;
    Ok(d)
}

/// CC's droplet copy (`POST /v3/droplets?source_guid=`): a STAGED droplet's bits and
/// settings for another app; COPYING while the bits are copied, then STAGED (or FAILED).
pub async fn copy(s: &AppState, from: &Droplet, to_app: &App) -> ApiResult<Droplet> {
    if from.state != DropletState::Staged {
        return Err(ApiError::Unprocessable(format!(
            "Only a STAGED droplet can be copied; this one is {}.",
            from.state
        )));
    }
    if !from.image.is_empty() {
        return copy_docker(s, from, to_app).await;
    }
    let now = now_ms();
    let mut d = Droplet {
        guid: new_guid(),
        app_guid: to_app.guid.clone(),
        package_guid: String::new(),
        build_guid: String::new(),
        state: DropletState::Copying,
        created_at: now,
        updated_at: now,
        ..from.clone()
    };
    store::droplets::insert(&s.db.pool, &d).await?;
    let copied =
        s.blobs.copy(&blobstore::droplet_key(&from.guid)?, &blobstore::droplet_key(&d.guid)?).await;
    let to = match &copied {
        Ok(info) if info.sha256 == from.sha256 => DropletState::Staged,
        Ok(_) => {
            d.error = "the copied bits do not match the droplet's checksum".into();
            DropletState::Failed
        }
        Err(e) => {
            d.error = format!("copying the droplet's bits: {e}");
            DropletState::Failed
        }
    };
    droplet_change(DropletState::Copying, to)?;
    d.state = to;
    store::droplets::set_upload(&s.db.pool, &d, DropletState::Copying, now_ms()).await?;
    Ok(d)
}

/// A docker droplet has no bits: the copy is STAGED at once with the same pinned image, and
/// its package (the registry credentials the cells pull with) is copied for the app too, so
/// the copy keeps working when the source app goes.
async fn copy_docker(s: &AppState, from: &Droplet, to_app: &App) -> ApiResult<Droplet> {
    let package = match store::packages::find(&s.db.pool, &from.package_guid).await? {
        Some(p) => crate::domain::staging::copy_package(s, &to_app.guid, &p).await?.guid,
        None => String::new(),
    };
    let now = now_ms();
    let d = Droplet {
        guid: new_guid(),
        app_guid: to_app.guid.clone(),
        package_guid: package,
        build_guid: String::new(),
        state: DropletState::Staged,
        created_at: now,
        updated_at: now,
        ..from.clone()
    };
    store::droplets::insert(&s.db.pool, &d).await?;
    Ok(d)
}

/// Take a droplet AWAITING_UPLOAD for an upload; only one upload wins.
pub async fn claim_upload(s: &AppState, d: &Droplet) -> ApiResult<()> {
    let (from, to) = (d.state, DropletState::ProcessingUpload);
    if from != DropletState::AwaitingUpload {
        return Err(ApiError::Unprocessable(format!(
            "Bits may be uploaded only to a droplet in AWAITING_UPLOAD; this one is {from}."
        )));
    }
    droplet_change(from, to)?;
    if !store::droplets::set_state(&s.db.pool, &d.guid, from, to, now_ms()).await? {
        return Err(ApiError::Unprocessable(
            "The droplet's bits are being uploaded already.".into(),
        ));
    }
    Ok(())
}

/// What an uploaded droplet holds: checked by extracting it under `scratch` with the archive
/// rules; the `start_command` of its `staging_info.yml`, if any.
fn inspect(tgz: &Path, scratch: &Path, limits: archive::Limits) -> ApiResult<Option<String>> {
    let dest = scratch.join("droplet");
    let opts = archive::ExtractOptions { allow_absolute_symlinks: true };
    archive::extract_tar_gz_with_options(tgz, &dest, &limits, &opts).map_err(|e| {
        ApiError::Unprocessable(format!("The droplet is not a valid gzipped tar: {e}"))
    })?;
    if !dest.join("app").is_dir() {
        return Err(ApiError::Unprocessable(
            "The droplet has no app/ directory: upload a droplet as 'paas download-droplet' \
             gives it"
                .into(),
        ));
    }
    #[derive(serde::Deserialize)]
    struct Info {
        #[serde(default)]
        start_command: String,
    }
    let info = std::fs::read_to_string(dest.join("staging_info.yml")).ok();
    let start = info
        .and_then(|t| serde_yaml::from_str::<Info>(&t).ok())
        .map(|i| i.start_command)
        .filter(|c| !c.trim().is_empty());
    Ok(start)
}

/// End a claimed upload of `tgz` (or its refusal).
pub async fn finish_upload(
    s: &AppState,
    d: &Droplet,
    tgz: ApiResult<PathBuf>,
    scratch: &Path,
) -> ApiResult<Droplet> {
    let limits = archive::Limits {
        max_total_bytes: s.config.max_package_bytes,
        max_files: s.config.max_package_files,
        max_ratio: s.config.max_expansion_ratio,
        max_file_bytes: s.config.max_package_bytes,
    };
    let checked = match tgz {
        Ok(path) => {
            let (p, dir) = (path.clone(), scratch.to_owned());
            let start = tokio::task::spawn_blocking(move || inspect(&p, &dir, limits))
                .await
                .map_err(|e| ApiError::Internal(format!("droplet check: {e}")))?;
            start.map(|start| (path, start))
        }
        Err(e) => Err(e),
    };
    let stored = match checked {
        Ok((path, start)) => s
            .blobs
            .put_file(&blobstore::droplet_key(&d.guid)?, &path)
            .await
            .map(|info| (info, start))
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let from = DropletState::ProcessingUpload;
    let mut done = d.clone();
    let outcome = match stored {
        Ok((info, start)) => {
            done.state = DropletState::Staged;
            done.sha256 = info.sha256;
            done.size = i64::try_from(info.size).unwrap_or(i64::MAX);
            if done.process_types.is_empty() {
                done.process_types.insert("web".into(), start.unwrap_or_default());
            }
            Ok(())
        }
        Err(e) => {
            done.state = if matches!(e, ApiError::Internal(_)) {
                done.error = e.to_string();
                DropletState::Failed
            } else {
                DropletState::AwaitingUpload
            };
            Err(e)
        }
    };
    droplet_change(from, done.state)?;
    store::droplets::set_upload(&s.db.pool, &done, from, now_ms()).await?;
    outcome.map(|()| done)
}
