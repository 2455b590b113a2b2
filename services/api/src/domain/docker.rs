//! Docker packages (docs/adr/1200-docker-images.md): a build of a docker package is resolved
//! here, in the api, through `oci`: the image's manifest (its linux/amd64 variant), config and
//! layer list are fetched and verified, and the build ends STAGED with a droplet that pins the
//! image to its digest and records its process, user, environment, working directory and
//! ports (`execution_metadata`, as CC keeps them), or FAILED with the registry's reason.
//! Every layer is read through once and checked against its digest; none is kept here: cells
//! pull them. The credentials stay with the package; desired
//! LRPs carry them to the cells.

use wire::lrp::{DockerConfig, DockerImage};
use wire::v3::{BuildState, DropletState};

use crate::error::{ApiError, ApiResult};
use crate::store::builds::Build;
use crate::store::droplets::Droplet;
use crate::store::packages::Package;
use crate::store::{self, now_ms};
use crate::AppState;
use tracing::Instrument as _;

/// Resolve the image of a STAGING build in the background; the build ends STAGED or FAILED.
pub fn stage(s: &AppState, build: Build, package: Package) {
    let st = s.clone();
    // In the request's span (and its service's), so the staging's logs are the api's.
    let work = async move {
        let guid = build.guid.clone();
        crate::domain::events::api_log(
            &st,
            &build.app_guid,
            &format!("Staging docker image {}", package.image),
        )
        .await;
        let outcome = match resolve(&st, &package).await {
            Ok(r) => {
                let bytes: u64 = r.layers.iter().map(|l| l.size).sum();
                let line = format!(
                    "Verified {} layer(s), {:.1} MB, against their digests",
                    r.layers.len(),
                    bytes as f64 / 1e6
                );
                crate::domain::events::api_log(&st, &build.app_guid, &line).await;
                complete(&st, &build, &package, &r).await
            }
            Err(e) => {
                let why = format!("StagingError - Staging error: {e}");
                crate::domain::staging::fail(&st, &guid, &why).await.map(|_| ())
            }
        };
        if let Err(e) = outcome {
            tracing::warn!(build_guid = %guid, error = %e, "docker staging could not be recorded");
        }
    };
    s.tasks.spawn(work.instrument(tracing::Span::current()));
}

fn credentials(p: &Package) -> Option<oci::Credentials> {
    (!p.docker_username.is_empty()).then(|| oci::Credentials {
        username: p.docker_username.clone(),
        password: p.docker_password.clone(),
    })
}

/// The image resolved to its linux/amd64 manifest, and every layer read through once and
/// checked against its digest (nothing kept: cells pull them again into their cache), so a
/// tampered or truncated layer fails the build rather than the start.
async fn resolve(s: &AppState, p: &Package) -> Result<oci::Resolved, oci::OciError> {
    let image = oci::Reference::parse(&p.image)?;
    let session = s.registry.session(&image, credentials(p));
    let resolved = session.resolve().await?;
    for layer in &resolved.layers {
        session.verify_blob(&layer.digest, layer.size).await?;
    }
    Ok(resolved)
}

/// What a droplet records of the image's config.
pub fn droplet_config(c: &oci::ImageConfig) -> DockerConfig {
    DockerConfig {
        entrypoint: c.entrypoint.clone(),
        cmd: c.cmd.clone(),
        user: c.user.clone(),
        env: c.env.clone(),
        working_dir: c.working_dir.clone(),
        exposed_ports: c.exposed_ports.clone(),
    }
}

/// The STAGED droplet of a resolved image, and the build finished, in one transaction.
async fn complete(s: &AppState, b: &Build, p: &Package, r: &oci::Resolved) -> ApiResult<()> {
    let now = now_ms();
    let metadata = serde_json::to_string(&droplet_config(&r.config))
        .map_err(|e| ApiError::Internal(format!("execution metadata: {e}")))?;
    let process_types = [("web".to_owned(), r.config.command_line())].into_iter().collect();
    let droplet = Droplet {
        guid: b.droplet_guid.clone(),
        app_guid: b.app_guid.clone(),
        package_guid: p.guid.clone(),
        build_guid: b.guid.clone(),
        state: DropletState::Staged,
        error: String::new(),
        sha256: String::new(),
        size: 0,
        buildpacks: Vec::new(),
        process_types,
        execution_metadata: metadata,
        stack: String::new(),
        image: r.reference.to_string(),
        created_at: now,
        updated_at: now,
    };
    crate::domain::staging::build_change(b.state, BuildState::Staged)?;
    let mut tx = store::begin(&s.db).await?;
    store::droplets::insert(&mut *tx, &droplet).await?;
    if !store::builds::finish(&mut *tx, &b.guid, b.state, BuildState::Staged, "", now).await? {
        // Failed (timed out) meanwhile: the droplet goes with the transaction.
        return Ok(());
    }
    tx.commit().await?;
    let line = format!("Staging complete: {} ({})", p.image, r.digest);
    crate::domain::events::api_log(s, &b.app_guid, &line).await;
    Ok(())
}

/// The image a desired LRP of this droplet runs (with the package's credentials); `None` for
/// a buildpack droplet.
pub async fn lrp_image(s: &AppState, d: &Droplet) -> ApiResult<Option<DockerImage>> {
    if d.image.is_empty() {
        return Ok(None);
    }
    let config: DockerConfig = serde_json::from_str(&d.execution_metadata).map_err(|e| {
        tracing::error!(table = "droplets", guid = %d.guid, error = %e, "corrupt execution_metadata");
        ApiError::Internal(format!("droplet {} has corrupt execution metadata", d.guid))
    })?;
    let package = store::packages::find(&s.db.pool, &d.package_guid).await?;
    let (username, password) =
        package.map(|p| (p.docker_username, p.docker_password)).unwrap_or_default();
    Ok(Some(DockerImage { image: d.image.clone(), username, password, config }))
}
