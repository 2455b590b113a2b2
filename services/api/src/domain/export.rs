//! Droplets as portable OCI images (`GET /v3/droplets/:guid/download?format=oci`): the
//! droplet on its stack with the launcher, written through `oci::layout` into the api's own
//! image layout (the stack's layer is compressed once per stack build and reused) and exported
//! as a tar of an OCI image layout holding that one image, tagged `latest` (ADR 1201). It runs with any
//! OCI runtime: `umoci unpack --image DIR:latest BUNDLE && runc run -b BUNDLE ID`.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt as _;
use wire::v3::DropletState;

use crate::error::{ApiError, ApiResult};
use crate::store;
use crate::store::droplets::Droplet;
use crate::AppState;

/// Write the image of a STAGED buildpack droplet as `<dir>/image.tar`; its path.
pub async fn oci_image(s: &AppState, d: &Droplet, dir: &Path) -> ApiResult<PathBuf> {
    if !d.image.is_empty() {
        return Err(ApiError::Unprocessable(format!(
            "This droplet is the docker image {}; pull it from its registry.",
            d.image
        )));
    }
    if d.state != DropletState::Staged {
        return Err(ApiError::Unprocessable(format!(
            "Only a STAGED droplet can be exported; this one is {}.",
            d.state
        )));
    }
    if stack::find(&s.config.stacks_dir, &d.stack).is_err() {
        return Err(ApiError::Unprocessable(format!(
            "The stack '{}' is not built where the api runs ({}), so the image cannot be made.",
            d.stack,
            s.config.stacks_dir.display()
        )));
    }
    let tgz = dir.join("droplet.tgz");
    let mut reader = s.blobs.get(&blobstore::droplet_key(&d.guid)?).await?;
    let mut file = tokio::fs::File::create(&tgz).await?;
    tokio::io::copy(&mut reader, &mut file).await?;
    file.flush().await?;
    let start = start_command(s, d).await?;
    let internal = |e: std::io::Error| ApiError::Internal(format!("droplet image: {e}"));
    let tar = dir.join("image.tar");
    let digest = s.images.export_droplet(&d.stack, &tgz, &start, &tar).await.map_err(internal)?;
    tracing::info!(droplet_guid = %d.guid, digest, "droplet exported as an OCI image");
    Ok(tar)
}

/// The app's web process command, else the droplet's `web` process type.
async fn start_command(s: &AppState, d: &Droplet) -> ApiResult<String> {
    let web = store::processes::find_by_type(&s.db.pool, &d.app_guid, "web").await?;
    Ok(web
        .and_then(|p| p.command)
        .or_else(|| d.process_types.get("web").cloned())
        .unwrap_or_default())
}
