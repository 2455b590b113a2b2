//! One staging, as named phases: fetch buildpacks and package, restore the app cache, run the
//! builder in a container, pack and upload the droplet, write the image, save the cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wire::staging::{Staged, StagedBuildpack, StagingOutcome, StagingRequest, StagingResult};

use crate::config::{Backend, Config};
use crate::container::{self, BuildRun, Exit};
use crate::droplet;
use crate::error::StageError;
use crate::fetch::{self, Api, BuildpackCache};
use crate::logs::StgLog;
use crate::report;
use oci::layout::ImageStore;

/// The embedded lifecycle builder.
pub const BUILDER: &str = include_str!("lifecycle/builder.sh");

/// Time spent inside the builder vs. everything else, for the benchmark and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub total: Duration,
    pub builder: Duration,
    /// Time inside buildpack scripts (detect, supply, finalize/compile, release).
    pub scripts: Duration,
}

pub struct Stager {
    /// This stager process as it claims builds at the api (a guid taken at start).
    pub id: String,
    pub config: Arc<Config>,
    pub api: Api,
    pub buildpacks: BuildpackCache,
    pub images: Option<ImageStore>,
    pub bus: bus::DynBus,
    /// What runs and cleans up the staging containers.
    pub host: Arc<dyn ::container::Host>,
}

impl Stager {
    /// Stages `req`; the result says how it ended. Scratch dirs are removed in any case, also
    /// when the staging is dropped half-way (stopped, or the stager shutting down).
    pub async fn stage(&self, req: &StagingRequest) -> (StagingResult, Timings) {
        let log = StgLog::new(self.bus.clone(), &req.app_guid);
        let started = Instant::now();
        let mut timings = Timings::default();
        let root = self.config.work_dir.join("builds").join(format!(
            "{}-{}",
            safe(&req.build_guid),
            uuid::Uuid::new_v4().simple()
        ));
        let scratch = Scratch(Some(root.clone()));
        let outcome = match self.run_phases(req, &root, &log, &mut timings).await {
            Ok(staged) => StagingOutcome::Staged(staged),
            Err(e) => {
                log.err(&format!("Staging failed: {e}")).await;
                tracing::info!(app_guid = %req.app_guid, build = %req.build_guid, error = %e, "staging failed");
                StagingOutcome::Failed(e.to_failure())
            }
        };
        scratch.remove().await;
        timings.total = started.elapsed();
        (StagingResult { build_guid: req.build_guid.clone(), outcome }, timings)
    }

    async fn run_phases(
        &self,
        req: &StagingRequest,
        root: &Path,
        log: &StgLog,
        t: &mut Timings,
    ) -> Result<Staged, StageError> {
        let io = |e: std::io::Error| StageError::platform(format!("scratch dir: {e}"));
        let run = self.prepare(req, root).await?;
        for d in [&run.app, &run.deps, &run.output] {
            tokio::fs::create_dir_all(d).await.map_err(io)?;
        }
        log.out("Downloading buildpacks...").await;
        let mut bp_dirs = Vec::new();
        for bp in &req.buildpacks {
            bp_dirs.push(self.buildpacks.get(&self.api, bp).await?);
        }
        log.out("Downloading app package...").await;
        let zip = root.join("package.zip");
        self.api.download(&req.package_url, &zip).await?;
        fetch::extract(&zip, &run.app).await?;
        let _ = tokio::fs::remove_file(&zip).await;
        let cache_home = app_cache(&self.config.work_dir, &req.app_guid);
        restore_cache(&cache_home, &run.cache).await?;
        tokio::fs::write(&run.builder, BUILDER).await.map_err(io)?;
        let run = BuildRun { buildpacks: bp_dirs.clone(), ..run };
        log.out("Staging...").await;
        let began = Instant::now();
        let exit = container::run(self.config.backend, self.host.as_ref(), &run, log).await?;
        t.builder = began.elapsed();
        let ns = tokio::fs::read_to_string(run.output.join("script_ns")).await.unwrap_or_default();
        t.scripts = Duration::from_nanos(ns.trim().parse().unwrap_or(0));
        check_exit(exit, &run, req)?;
        let out = droplet::read_output(&run.output, &run.app)?;
        save_cache(&run.cache, &cache_home).await;
        let start = out.process_types.get("web").cloned().unwrap_or_default();
        if start.is_empty() {
            log.err("Warning: no start command; give one with a Procfile or the app's command")
                .await;
        }
        log.out("Staging complete").await;
        let info = droplet::staging_info(&out.detected_buildpack, &start);
        let (droplet_dir, tgz) = (root.join("droplet"), root.join("droplet.tgz"));
        let (app, deps, dd, tg) =
            (run.app.clone(), run.deps.clone(), droplet_dir.clone(), tgz.clone());
        let written =
            tokio::task::spawn_blocking(move || droplet::pack(&app, &deps, &dd, &info, &tg))
                .await
                .map_err(|e| StageError::platform(e.to_string()))??;
        log.out("Uploading droplet...").await;
        report::upload_droplet(&self.api, &req.droplet_upload_url, &tgz, written.size).await?;
        log.out("Uploading complete").await;
        // The OCI image is an extra output (cells run the droplet itself): a stack that is not
        // built on this host (process backend) leaves the droplet without one.
        let image_digest = match &self.images {
            Some(store) => match store.write(&req.stack, &tgz, &start).await {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::warn!(error = %e, "droplet image not written");
                    None
                }
            },
            None => None,
        };
        Ok(Staged {
            droplet_sha256: written.sha256,
            droplet_size: written.size,
            detected_buildpack: out.detected_buildpack.clone(),
            buildpacks: staged_buildpacks(req, &bp_dirs, &out),
            process_types: out.process_types,
            execution_metadata: String::new(),
            image_digest,
        })
    }

    async fn prepare(&self, req: &StagingRequest, root: &Path) -> Result<BuildRun, StageError> {
        let rootfs = match self.config.backend {
            Backend::Runc => Some(
                stack::find(&self.config.stacks_dir, &req.stack)
                    .map_err(|e| StageError::platform(e.to_string()))?,
            ),
            Backend::Process => None,
        };
        let memory_mb =
            if req.memory_mb == 0 { self.config.default_memory_mb } else { req.memory_mb };
        let mut env: Vec<(String, String)> =
            req.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        env.retain(|(k, _)| !k.starts_with("PAAS_"));
        if !req.env.contains_key("MEMORY_LIMIT") {
            env.push(("MEMORY_LIMIT".into(), format!("{memory_mb}m")));
        }
        env.push(("CF_STACK".into(), req.stack.clone()));
        let ca_file = Some(self.config.trusted_ca_file.clone()).filter(|p| p.is_file());
        if let Some(ca) = &ca_file {
            let inside = match self.config.backend {
                Backend::Runc => PathBuf::from(crate::config::CA_BUNDLE),
                Backend::Process => ca.clone(),
            };
            for var in ["SSL_CERT_FILE", "PIP_CERT", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE"] {
                env.push((var.into(), inside.display().to_string()));
            }
        }
        env.push(("PAAS_SKIP_DETECT".into(), req.skip_detect.to_string()));
        let names: Vec<&str> = req.buildpacks.iter().map(|b| b.name.as_str()).collect();
        env.push(("PAAS_BUILDPACK_NAMES".into(), names.join("\n")));
        Ok(BuildRun {
            id: format!("stg-{}", uuid::Uuid::new_v4().simple()),
            root: root.to_owned(),
            app: root.join("app"),
            cache: root.join("cache"),
            deps: root.join("deps"),
            output: root.join("output"),
            buildpacks: Vec::new(),
            builder: root.join("builder"),
            env,
            rootfs,
            ca_file,
            memory_mb,
            disk_mb: if req.disk_mb == 0 { self.config.default_disk_mb } else { req.disk_mb },
            timeout: Duration::from_secs(if req.timeout_secs == 0 {
                self.config.default_timeout_secs
            } else {
                req.timeout_secs
            }),
        })
    }
}

/// The scratch dir of a staging, removed when the staging ends or is dropped.
struct Scratch(Option<PathBuf>);

impl Scratch {
    async fn remove(mut self) {
        if let Some(dir) = self.0.take() {
            let _ = tokio::fs::remove_dir_all(&dir).await;
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let Some(dir) = self.0.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(move || {
                    let _ = std::fs::remove_dir_all(&dir);
                });
            }
            Err(_) => {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
}

fn check_exit(exit: Exit, run: &BuildRun, req: &StagingRequest) -> Result<(), StageError> {
    match exit {
        Exit::Code(0) => Ok(()),
        Exit::Code(code) => Err(droplet::builder_failure(&run.output)
            .unwrap_or_else(|| StageError::platform(format!("the builder exited with status {code}")))),
        Exit::TimedOut => Err(StageError::failed(
            "StagingTimeExpired",
            format!("Staging time expired: the staging took longer than {} s", run.timeout.as_secs()),
        )),
        Exit::OutOfMemory => Err(StageError::failed(
            "StagingError",
            format!("Staging error: out of memory: the staging container exceeded its {} MB memory limit", run.memory_mb),
        )),
        Exit::OutOfDisk { used_mb } => Err(StageError::failed(
            "StagingError",
            format!("Staging error: out of disk: staging used {used_mb} MB of its {} MB disk limit (app {})", run.disk_mb, req.app_guid),
        )),
    }
}

fn staged_buildpacks(
    req: &StagingRequest,
    dirs: &[PathBuf],
    out: &droplet::BuilderOutput,
) -> Vec<StagedBuildpack> {
    let used: Vec<usize> = if req.skip_detect {
        (0..req.buildpacks.len()).collect()
    } else {
        vec![out.buildpack_index]
    };
    used.into_iter()
        .filter_map(|i| Some((req.buildpacks.get(i)?, dirs.get(i)?)))
        .map(|(bp, dir)| StagedBuildpack {
            key: bp.key.clone(),
            name: bp.name.clone(),
            version: std::fs::read_to_string(dir.join("VERSION"))
                .unwrap_or_default()
                .trim()
                .to_owned(),
            detect_output: if req.skip_detect { String::new() } else { out.detect_output.clone() },
        })
        .collect()
}

/// Where the buildpack cache of an app is kept between its stagings.
fn app_cache(work_dir: &Path, app_guid: &str) -> PathBuf {
    work_dir.join("app-cache").join(safe(app_guid))
}

/// Drop the kept buildpack cache of `app_guid`, or every app's with `None`; whether there was
/// one. A staging under way keeps the cache it took and saves it when it ends.
pub async fn delete_caches(work_dir: &Path, app_guid: Option<&str>) -> std::io::Result<bool> {
    let dir = match app_guid {
        Some("") => return Ok(false),
        Some(guid) => app_cache(work_dir, guid),
        None => work_dir.join("app-cache"),
    };
    match tokio::fs::remove_dir_all(&dir).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Moves the app's saved cache into the build (or creates an empty one).
async fn restore_cache(saved: &Path, cache: &Path) -> Result<(), StageError> {
    if tokio::fs::rename(saved, cache).await.is_err() {
        tokio::fs::create_dir_all(cache)
            .await
            .map_err(|e| StageError::platform(format!("cache: {e}")))?;
    }
    Ok(())
}

/// Keeps the build's cache for the app's next staging (best effort).
async fn save_cache(cache: &Path, saved: &Path) {
    if let Some(parent) = saved.parent() {
        let _ = tokio::fs::create_dir_all(parent).await;
    }
    let _ = tokio::fs::remove_dir_all(saved).await;
    if let Err(e) = tokio::fs::rename(cache, saved).await {
        tracing::warn!(error = %e, "cannot keep the app cache");
    }
}

/// A path segment from a guid: only `[A-Za-z0-9_-]`.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect()
}
