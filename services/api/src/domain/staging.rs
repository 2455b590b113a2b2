//! The staging pipeline: packages (created, copied, their upload stored), buildpacks (the
//! bundled ones installed, admin zips stored, names resolved for a stager), and builds. A build
//! is recorded STAGING and its staging request published; the first stager to [`claim`] it
//! stages it, heartbeating with the same claim, and reports through the internal API
//! ([`complete`]); a STAGED report creates the droplet. A build whose stager stopped
//! heartbeating, or that overran the staging timeout, is failed by [`sweep`] (a request no
//! stager claimed is sent again by `staging_requests`), so a build never stays STAGING
//! forever. Every change of a package's, build's or droplet's state is checked against
//! its lifecycle in `wire::v3` first ([`package_change`], [`build_change`], [`droplet_change`]).
//! See docs/api.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bus::BusExt as _;
use serde_json::Value;
use wire::staging::{BuildpackRef, StagingOutcome, StagingRequest, StagingResult};
use wire::v3::droplet::DropletBuildpack;
use wire::v3::stack::BuildpackState;
use wire::v3::{build, droplet, package, BuildState, DropletState, PackageState};

use crate::error::{ApiError, ApiResult};
use crate::store::buildpacks::Buildpack;
use crate::store::builds::Build;
use crate::store::droplets::Droplet;
use crate::store::packages::Package;
use crate::store::{self, new_guid, now_ms};
use crate::AppState;

// ---- state changes ----

/// A package may go from `from` to `to`: an upload to a package that is not AWAITING_UPLOAD is
/// CC's `PackageBitsAlreadyUploaded`; any other change outside the lifecycle is a 422.
pub fn package_change(from: PackageState, to: PackageState) -> ApiResult<()> {
    if package::allows(from, to) {
        return Ok(());
    }
    if to == PackageState::ProcessingUpload {
        return Err(ApiError::PackageBitsAlreadyUploaded);
    }
    Err(ApiError::Unprocessable(format!("Package state cannot change from {from} to {to}")))
}

/// A build may go from `from` to `to`: only a STAGING build finishes, once.
pub fn build_change(from: BuildState, to: BuildState) -> ApiResult<()> {
    if build::allows(from, to) {
        return Ok(());
    }
    Err(ApiError::Unprocessable(format!("Build is {from}, not STAGING; it cannot become {to}")))
}

/// A droplet may go from `from` to `to`.
pub fn droplet_change(from: DropletState, to: DropletState) -> ApiResult<()> {
    if droplet::allows(from, to) {
        return Ok(());
    }
    Err(ApiError::Unprocessable(format!("Droplet state cannot change from {from} to {to}")))
}

// ---- packages ----

/// A new package of `kind` (`bits` awaiting its upload, or a READY `docker` image).
pub async fn create_package(
    s: &AppState,
    app_guid: &str,
    kind: &str,
    image: &str,
) -> ApiResult<Package> {
    let now = now_ms();
    let state = if kind == "docker" { PackageState::Ready } else { PackageState::AwaitingUpload };
    let p = Package {
        guid: new_guid(),
        app_guid: app_guid.to_owned(),
        kind: kind.to_owned(),
        state,
        sha256: String::new(),
        size: 0,
        error: String::new(),
        image: image.to_owned(),
        docker_username: String::new(),
        docker_password: String::new(),
        created_at: now,
        updated_at: now,
    };
    store::packages::insert(&s.db.pool, &p).await?;
    Ok(p)
}

/// A READY docker package of `image`, with the registry credentials if any.
pub async fn create_docker_package(
    s: &AppState,
    app_guid: &str,
    image: &str,
    creds: Option<(String, String)>,
) -> ApiResult<Package> {
    let now = now_ms();
    let (docker_username, docker_password) = creds.unwrap_or_default();
    let p = Package {
        guid: new_guid(),
        app_guid: app_guid.to_owned(),
        kind: "docker".into(),
        state: PackageState::Ready,
        sha256: String::new(),
        size: 0,
        error: String::new(),
        image: image.to_owned(),
        docker_username,
        docker_password,
        created_at: now,
        updated_at: now,
    };
    store::packages::insert(&s.db.pool, &p).await?;
    Ok(p)
}

/// A READY copy of a READY package (its bits copied in the blobstore) for `app_guid`.
pub async fn copy_package(s: &AppState, app_guid: &str, from: &Package) -> ApiResult<Package> {
    if from.state != PackageState::Ready {
        return Err(ApiError::Unprocessable("Only READY packages can be copied".into()));
    }
    let now = now_ms();
    let p = Package {
        guid: new_guid(),
        app_guid: app_guid.to_owned(),
        kind: from.kind.clone(),
        state: PackageState::Ready,
        sha256: from.sha256.clone(),
        size: from.size,
        error: String::new(),
        image: from.image.clone(),
        docker_username: from.docker_username.clone(),
        docker_password: from.docker_password.clone(),
        created_at: now,
        updated_at: now,
    };
    if from.kind == "bits" {
        s.blobs
            .copy(&blobstore::package_key(&from.guid)?, &blobstore::package_key(&p.guid)?)
            .await?;
    }
    store::packages::insert(&s.db.pool, &p).await?;
    Ok(p)
}

/// Take a bits package AWAITING_UPLOAD for an upload (PROCESSING_UPLOAD).
pub async fn claim_upload(s: &AppState, p: &Package) -> ApiResult<()> {
    if p.kind != "bits" {
        return Err(ApiError::Unprocessable(
            "Bits can only be uploaded to a package of type 'bits'".into(),
        ));
    }
    let (from, to) = (p.state, PackageState::ProcessingUpload);
    package_change(from, to)?;
    // The package may have changed since it was read: only one upload wins.
    if !store::packages::set_state(&s.db.pool, &p.guid, from, to, now_ms()).await? {
        return Err(ApiError::PackageBitsAlreadyUploaded);
    }
    Ok(())
}

/// End a claimed upload: store the assembled zip and make the package READY. A bad upload
/// leaves the package AWAITING_UPLOAD, so the client can simply try again; a failure of ours
/// makes it FAILED. The upload's error is returned either way.
pub async fn finish_upload(s: &AppState, guid: &str, zip: ApiResult<PathBuf>) -> ApiResult<()> {
    let stored = match zip {
        Ok(zip) => s.blobs.put_file(&blobstore::package_key(guid)?, &zip).await.map_err(Into::into),
        Err(e) => Err(e),
    };
    let pool = &s.db.pool;
    let from = PackageState::ProcessingUpload;
    match stored {
        Ok(info) => {
            let to = PackageState::Ready;
            package_change(from, to)?;
            let size = i64::try_from(info.size).unwrap_or(i64::MAX);
            store::packages::set_upload(pool, guid, from, to, "", &info.sha256, size, now_ms())
                .await?;
            Ok(())
        }
        Err(e) => {
            let (to, err) = if matches!(e, ApiError::Internal(_)) {
                (PackageState::Failed, e.to_string())
            } else {
                (PackageState::AwaitingUpload, String::new())
            };
            package_change(from, to)?;
            store::packages::set_upload(pool, guid, from, to, &err, "", 0, now_ms()).await?;
            Err(e)
        }
    }
}

/// Remove a package and its bits.
pub async fn delete_package(s: &AppState, p: &Package) -> ApiResult<()> {
    if p.kind == "bits" {
        s.blobs.delete(&blobstore::package_key(&p.guid)?).await?;
    }
    store::packages::delete(&s.db.pool, &p.guid).await
}

// ---- buildpacks ----

/// Install or refresh the bundled buildpacks (`(name, position, zip)`), keeping positions an
/// operator changed.
pub async fn install_bundled(s: &AppState, bundled: &[(String, u32, Vec<u8>)]) -> ApiResult<()> {
    for (name, position, zip) in bundled {
        let old = store::buildpacks::find_unstacked(&s.db.pool, name).await?;
        let sha = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(zip))
        };
        let guid = match &old {
            Some(b) if b.sha256 == sha => continue,
            Some(b) => b.guid.clone(),
            None => new_guid(),
        };
        let data = bytes::Bytes::from(zip.clone());
        let stream = futures::stream::once(async move { Ok(data) });
        let info = s.blobs.put_stream(&blobstore::buildpack_key(&guid)?, Box::pin(stream)).await?;
        let now = now_ms();
        if old.is_some() {
            store::buildpacks::set_bits(&s.db.pool, &guid, None, &info.sha256, now).await?;
        } else {
            let b = Buildpack {
                guid,
                name: name.clone(),
                stack: String::new(),
                position: i64::from(*position),
                enabled: true,
                locked: false,
                filename: format!("{name}.zip"),
                sha256: info.sha256,
                state: BuildpackState::Ready,
                created_at: now,
                updated_at: now,
            };
            // Another api instance installing the same bundle at once is as good.
            let taken = || ApiError::Uniqueness(String::new());
            match store::buildpacks::insert(&s.db.pool, &b, taken).await {
                Err(ApiError::Uniqueness(_)) | Ok(()) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Store an admin's buildpack zip (already checked) and make the buildpack READY.
pub async fn store_buildpack(
    s: &AppState,
    guid: &str,
    filename: &str,
    zip: &Path,
) -> ApiResult<()> {
    let info = s.blobs.put_file(&blobstore::buildpack_key(guid)?, zip).await?;
    store::buildpacks::set_bits(&s.db.pool, guid, Some(filename), &info.sha256, now_ms()).await
}

/// Remove a buildpack and its zip.
pub async fn delete_buildpack(s: &AppState, guid: &str) -> ApiResult<()> {
    s.blobs.delete(&blobstore::buildpack_key(guid)?).await?;
    store::buildpacks::delete(&s.db.pool, guid).await
}

/// What a build stages with.
pub struct Resolved {
    pub buildpacks: Vec<BuildpackRef>,
    pub skip_detect: bool,
}

fn buildpack_ref(s: &AppState, b: &Buildpack) -> BuildpackRef {
    let sha = &b.sha256;
    BuildpackRef {
        key: format!("{}-{}", b.name, &sha[..sha.len().min(12)]),
        url: format!("{}/internal/v1/buildpacks/{}/download", s.internal_url(), b.guid),
        name: b.name.clone(),
        sha256: sha.clone(),
    }
}

/// Named buildpacks in order (detection skipped, as in CF), or every enabled one by position.
pub async fn resolve(s: &AppState, names: &[String], stack: &str) -> ApiResult<Resolved> {
    if names.is_empty() {
        let all = store::buildpacks::enabled_for(&s.db.pool, stack).await?;
        if all.is_empty() {
            return Err(ApiError::Unprocessable(
                "No buildpacks are installed for this stack; an admin must add one.".into(),
            ));
        }
        let buildpacks = all.iter().map(|b| buildpack_ref(s, b)).collect();
        return Ok(Resolved { buildpacks, skip_detect: false });
    }
    let mut out = Vec::new();
    for n in names {
        let b = store::buildpacks::ready_named(&s.db.pool, n, stack)
            .await?
            .ok_or_else(|| unknown(n))?;
        out.push(buildpack_ref(s, &b));
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
        if !store::buildpacks::name_exists(&s.db.pool, n).await? {
            return Err(unknown(n));
        }
    }
    Ok(())
}

// ---- builds ----

/// Only a READY package can be staged.
pub fn check_stageable(p: &Package) -> ApiResult<()> {
    if p.state != PackageState::Ready {
        return Err(ApiError::BadRequest("Cannot stage package whose state is not ready.".into()));
    }
    Ok(())
}

/// What a new build stages: the package of an app, its lifecycle and limits, who asked, and
/// the app's environment with `VCAP_APPLICATION` and `VCAP_SERVICES`.
pub struct NewBuild {
    pub app_guid: String,
    pub package_guid: String,
    pub buildpacks: Vec<String>,
    pub stack: String,
    pub memory_mb: i64,
    pub disk_mb: i64,
    pub created_by: Value,
    pub env: BTreeMap<String, String>,
    /// A docker package: its image is resolved by the api (the `docker` module), not by a
    /// stager.
    pub docker: bool,
}

/// A recorded STAGING build and the request that stages it.
pub struct Staging {
    pub build: Build,
    pub request: StagingRequest,
}

/// Record a STAGING build unless the app already has one; [`publish`] sends its request.
pub async fn create_build(s: &AppState, new: NewBuild) -> ApiResult<Staging> {
    let refs = if new.docker {
        Resolved { buildpacks: Vec::new(), skip_detect: true }
    } else {
        resolve(s, &new.buildpacks, &new.stack).await?
    };
    let now = now_ms();
    let timeout_ms = i64::try_from(s.config.staging_timeout_secs).unwrap_or(900) * 1000;
    let build = Build {
        guid: new_guid(),
        app_guid: new.app_guid,
        package_guid: new.package_guid,
        droplet_guid: new_guid(),
        state: BuildState::Staging,
        error: String::new(),
        buildpacks: new.buildpacks,
        stack: new.stack,
        memory_mb: new.memory_mb,
        disk_mb: new.disk_mb,
        created_by: new.created_by,
        deadline: now + timeout_ms,
        created_at: now,
        updated_at: now,
    };
    // Checked and inserted in one transaction, so two racing requests cannot both win.
    let mut tx = store::begin(&s.db).await?;
    if store::builds::staging_of_app(&mut *tx, &build.app_guid).await? {
        return Err(ApiError::StagingInProgress);
    }
    store::builds::insert(&mut *tx, &build).await?;
    tx.commit().await?;
    let request = staging_request(s, &build, refs, new.env);
    Ok(Staging { build, request })
}

/// The staging request of build `b`, staging with `refs` in the environment `env`.
pub fn staging_request(
    s: &AppState,
    b: &Build,
    refs: Resolved,
    mut env: BTreeMap<String, String>,
) -> StagingRequest {
    env.insert("MEMORY_LIMIT".into(), format!("{}m", b.memory_mb));
    env.insert("CF_STACK".into(), b.stack.clone());
    let base = s.internal_url();
    StagingRequest {
        build_guid: b.guid.clone(),
        app_guid: b.app_guid.clone(),
        package_guid: b.package_guid.clone(),
        package_url: format!("{base}/internal/v1/packages/{}/download", b.package_guid),
        buildpacks: refs.buildpacks,
        skip_detect: refs.skip_detect,
        stack: b.stack.clone(),
        memory_mb: u64::try_from(b.memory_mb).unwrap_or(1024),
        disk_mb: u64::try_from(b.disk_mb).unwrap_or(4096),
        timeout_secs: s.config.staging_timeout_secs,
        env,
        droplet_upload_url: format!("{base}/internal/v1/builds/{}/droplet", b.guid),
        completion_url: format!("{base}/internal/v1/builds/{}/completed", b.guid),
        claim_url: format!("{base}/internal/v1/builds/{}/claim", b.guid),
    }
}

/// Ask every stager to drop the buildpack cache it keeps for `app` (every app's with `None`),
/// as Cloud Controller deletes an app's buildpack cache blobs.
pub async fn clear_buildpack_cache(s: &AppState, app: Option<&str>) -> ApiResult<()> {
    let body = wire::staging::BuildpackCacheDelete { app_guid: app.map(str::to_owned) };
    s.bus.publish_json(wire::subjects::BUILDPACK_CACHE_DELETE, &body).await.map_err(|e| {
        ApiError::ServiceUnavailable(format!("the stagers could not be reached ({e})"))
    })
}

/// Send the staging request; a build whose request cannot be sent fails at once. The build
/// as it is now.
pub async fn publish(s: &AppState, staging: &Staging) -> ApiResult<Build> {
    let guid = &staging.build.guid;
    if let Err(e) = s.bus.publish_json(wire::subjects::STAGING_REQUEST, &staging.request).await {
        let why =
            format!("StagingError - Staging error: the staging request could not be sent ({e})");
        fail(s, guid, &why).await?;
    }
    store::builds::find(&s.db.pool, guid).await?.ok_or(ApiError::NotFound("Build"))
}

/// Fail a STAGING build (no effect on a finished one, nor on one that is gone); whether it
/// was STAGING.
pub async fn fail(s: &AppState, guid: &str, error: &str) -> ApiResult<bool> {
    let Some(b) = store::builds::find(&s.db.pool, guid).await? else { return Ok(false) };
    let (from, to) = (b.state, BuildState::Failed);
    if build_change(from, to).is_err() {
        return Ok(false);
    }
    let failed = store::builds::finish(&s.db.pool, guid, from, to, error, now_ms()).await?;
    if failed {
        failed_log(s, &b.app_guid, error).await;
    }
    Ok(failed)
}

/// A failed staging in the app's log stream.
async fn failed_log(s: &AppState, app_guid: &str, error: &str) {
    crate::domain::events::api_log(s, app_guid, &format!("Staging failed: {error}")).await;
}

/// Stager `stager_id` claims the STAGING build `guid`: the first claim wins, and the winner's
/// claims after it are its heartbeats. A build another stager claimed, or that is no longer
/// STAGING (failed, staged), is a conflict: the stager leaves it.
pub async fn claim(s: &AppState, guid: &str, stager_id: &str) -> ApiResult<()> {
    if stager_id.is_empty() {
        return Err(ApiError::Unprocessable("stager_id must not be empty".into()));
    }
    if store::builds::claim(&s.db.pool, guid, stager_id, now_ms()).await? {
        return Ok(());
    }
    let b = store::builds::find(&s.db.pool, guid).await?.ok_or(ApiError::NotFound("Build"))?;
    if b.state != BuildState::Staging {
        return Err(ApiError::Conflict(format!("Build is {}, not STAGING", b.state)));
    }
    Err(ApiError::Conflict("Build is claimed by another stager".into()))
}

/// The stager's report. Idempotent: a repeated report of a finished build changes nothing.
/// The build when this report staged it (its droplet was created).
pub async fn complete(
    s: &AppState,
    guid: &str,
    result: &StagingResult,
) -> ApiResult<Option<Build>> {
    let b = store::builds::find(&s.db.pool, guid).await?.ok_or(ApiError::NotFound("Build"))?;
    let to = match result.outcome {
        StagingOutcome::Failed(_) => BuildState::Failed,
        StagingOutcome::Staged(_) => BuildState::Staged,
    };
    // A finished build stays as it is: a repeated report changes nothing.
    if build_change(b.state, to).is_err() {
        return Ok(None);
    }
    let staged = match &result.outcome {
        StagingOutcome::Failed(f) => {
            fail(s, guid, &f.build_error()).await?;
            return Ok(None);
        }
        StagingOutcome::Staged(staged) => staged,
    };
    let key = blobstore::droplet_key(&b.droplet_guid)?;
    let info = match s.blobs.info(&key).await {
        Ok(i) => i,
        Err(blobstore::BlobError::NotFound { .. }) => {
            return Err(ApiError::Unprocessable(
                "The droplet was not uploaded before staging was reported complete.".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    // The stager's upload is processed: the droplet is STAGED when its checksum matches.
    droplet_change(DropletState::ProcessingUpload, DropletState::Staged)?;
    if info.sha256 != staged.droplet_sha256 {
        droplet_change(DropletState::ProcessingUpload, DropletState::Failed)?;
        fail(s, guid, "StagingError - Staging error: the uploaded droplet does not match its reported checksum").await?;
        return Ok(None);
    }
    let now = now_ms();
    let buildpacks = staged
        .buildpacks
        .iter()
        .map(|b| DropletBuildpack {
            name: b.name.clone(),
            buildpack_name: Some(b.name.clone()),
            version: Some(b.version.clone()),
            detect_output: Some(b.detect_output.clone()),
        })
        .collect();
    let droplet = Droplet {
        guid: b.droplet_guid.clone(),
        app_guid: b.app_guid.clone(),
        package_guid: b.package_guid.clone(),
        build_guid: b.guid.clone(),
        state: DropletState::Staged,
        error: String::new(),
        sha256: staged.droplet_sha256.clone(),
        size: i64::try_from(staged.droplet_size).unwrap_or(i64::MAX),
        buildpacks,
        process_types: staged.process_types.clone(),
        execution_metadata: staged.execution_metadata.clone(),
        stack: b.stack.clone(),
        image: String::new(),
        created_at: now,
        updated_at: now,
    };
    let mut tx = store::begin(&s.db).await?;
    store::droplets::insert(&mut *tx, &droplet).await?;
    if !store::builds::finish(&mut *tx, guid, b.state, to, "", now).await? {
        // Failed (timed out) meanwhile: the droplet goes with the transaction.
        return Ok(None);
    }
    tx.commit().await?;
    Ok(Some(b))
}

/// Why a build whose stager stopped heartbeating for `secs` failed.
pub fn stopped_stager(secs: u64) -> String {
    format!(
        "StagingError - Staging error: the stager staging this build stopped (no heartbeat for {secs} s); push again"
    )
}

/// Fail every STAGING build past its deadline, and every claimed one whose stager has not
/// heartbeated for `staging_heartbeat_timeout_secs`; how many.
pub async fn sweep(s: &AppState) -> ApiResult<u64> {
    let mut n = 0;
    let now = now_ms();
    for g in store::builds::overdue(&s.db.pool, now).await? {
        let why =
            "StagingTimeExpired - Staging time expired: no stager finished this build in time";
        if fail(s, &g, why).await? {
            n += 1;
        }
    }
    let secs = s.config.staging_heartbeat_timeout_secs;
    let cutoff = now.saturating_sub(i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX));
    let why = stopped_stager(secs);
    for g in store::builds::stale_claims(&s.db.pool, cutoff).await? {
        debug_assert!(build::allows(BuildState::Staging, BuildState::Failed));
        // A heartbeat that came in since keeps the build.
        if !store::builds::fail_stale_claim(&s.db.pool, &g, cutoff, &why, now_ms()).await? {
            continue;
        }
        n += 1;
        tracing::warn!(build = %g, "failed a build whose stager stopped heartbeating");
        if let Some(b) = store::builds::find(&s.db.pool, &g).await? {
            failed_log(s, &b.app_guid, &why).await;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_changes_only_along_its_lifecycle() {
        use PackageState::*;
        assert!(package_change(AwaitingUpload, ProcessingUpload).is_ok());
        assert!(package_change(ProcessingUpload, AwaitingUpload).is_ok());
        for from in [Ready, Failed, ProcessingUpload, Copying, Expired] {
            assert!(matches!(
                package_change(from, ProcessingUpload),
                Err(ApiError::PackageBitsAlreadyUploaded)
            ));
        }
        assert!(matches!(package_change(Failed, Ready), Err(ApiError::Unprocessable(_))));
    }

    #[test]
    fn a_build_finishes_once() {
        use BuildState::*;
        assert!(build_change(Staging, Staged).is_ok());
        assert!(build_change(Staging, Failed).is_ok());
        for (from, to) in [(Staged, Failed), (Failed, Staged), (Staged, Staged), (Staging, Staging)]
        {
            assert!(matches!(build_change(from, to), Err(ApiError::Unprocessable(_))));
        }
    }

    #[test]
    fn a_droplet_is_staged_only_from_its_processed_upload() {
        use DropletState::*;
        assert!(droplet_change(ProcessingUpload, Staged).is_ok());
        assert!(droplet_change(ProcessingUpload, Failed).is_ok());
        for (from, to) in [(Expired, Staged), (Failed, Staged), (Staged, ProcessingUpload)] {
            assert!(matches!(droplet_change(from, to), Err(ApiError::Unprocessable(_))));
        }
    }
}
