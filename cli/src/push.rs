//! `paas push`: the cf CLI's push — manifest from file and flags,
//! apply_manifest, resource matching, upload with a progress bar, staging with its output
//! streamed live, the droplet set, a restart, the wait for instances and the summary.

use std::path::{Path, PathBuf};

use futures::StreamExt as _;
use manifest::{AppManifest, Manifest};
use wire::v3::package::PackageCreate;
use wire::v3::resource::{Resource, ResourceMatches};
use wire::v3::{App, AppState, Package, PackageState};

use crate::apps::{action, set_droplet, summary, wait_running};
use crate::client::{Client, Result};
use crate::error::CliError;
use crate::output::{bold, tty};

/// Flags of `paas push`.
#[derive(Debug, Clone, Default)]
pub struct PushArgs {
    pub name: Option<String>,
    pub manifest: Option<PathBuf>,
    pub path: Option<PathBuf>,
    pub buildpacks: Vec<String>,
    pub memory: Option<String>,
    pub disk: Option<String>,
    pub instances: Option<i64>,
    pub command: Option<String>,
    pub stack: Option<String>,
    pub no_start: bool,
    pub no_route: bool,
    pub random_route: bool,
    pub health_check_type: Option<String>,
    pub endpoint: Option<String>,
    pub timeout: Option<i64>,
    pub strategy: crate::deploy::Strategy,
    /// `-l`: the log rate limit per instance (`1K`, `-1` unlimited).
    pub log_rate: Option<String>,
    /// `--no-manifest`: ignore a manifest in the folder.
    pub no_manifest: bool,
    /// `--vars-file` files in order, then `--var KEY=VALUE` pairs (later ones win).
    pub vars_files: Vec<PathBuf>,
    pub vars: Vec<String>,
    /// `--droplet`: a droplet `.tgz` to run instead of the folder's source.
    pub droplet: Option<PathBuf>,
    /// `-o`: a docker image to run instead of staging source.
    pub docker_image: Option<String>,
    /// `--docker-username` (the password comes from `CF_DOCKER_PASSWORD`).
    pub docker_username: Option<String>,
}

/// Where `push` reads a private registry's password, as the cf CLI does.
pub const DOCKER_PASSWORD_ENV: &str = "CF_DOCKER_PASSWORD";

/// The `((name))` values of `--vars-file` and `--var`.
fn variables(a: &PushArgs) -> Result<std::collections::BTreeMap<String, serde_yaml::Value>> {
    let mut vars = std::collections::BTreeMap::new();
    for f in &a.vars_files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| CliError::Usage(format!("cannot read vars file {}: {e}", f.display())))?;
        let map: std::collections::BTreeMap<String, serde_yaml::Value> =
            serde_yaml::from_str(&text).map_err(|e| {
                CliError::Usage(format!(
                    "vars file {} must be a YAML map of names to values: {e}",
                    f.display()
                ))
            })?;
        vars.extend(map);
    }
    for v in &a.vars {
        let (k, val) = v
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| CliError::Usage(format!("--var {v}: give it as NAME=VALUE")))?;
        vars.insert(k.to_owned(), serde_yaml::Value::String(val.to_owned()));
    }
    Ok(vars)
}

/// The manifest to apply and each app's folder.
pub fn plan(a: &PushArgs, cwd: &Path) -> Result<(Manifest, Vec<PathBuf>)> {
    if a.droplet.is_some() && (a.path.is_some() || a.strategy.kind.is_some()) {
        return Err(CliError::Usage(
            "Incorrect usage: --droplet cannot be used with -p or --strategy".into(),
        ));
    }
    if a.docker_image.is_some()
        && (a.path.is_some() || !a.buildpacks.is_empty() || a.droplet.is_some())
    {
        return Err(CliError::Usage(
            "Incorrect usage: --docker-image cannot be used with -p, -b or --droplet".into(),
        ));
    }
    if let Some(d) = a.droplet.as_ref().filter(|d| !d.is_file()) {
        return Err(CliError::Usage(format!(
            "cannot read the droplet {}: no such file",
            d.display()
        )));
    }
    if a.no_manifest && a.manifest.is_some() {
        return Err(CliError::Usage(
            "Incorrect usage: -f and --no-manifest cannot be used together".into(),
        ));
    }
    let file = match &a.manifest {
        Some(f) => Some(if f.is_dir() { f.join("manifest.yml") } else { f.clone() }),
        None if a.no_manifest => None,
        None => {
            let base = a.path.as_deref().filter(|p| p.is_dir()).unwrap_or(cwd);
            [base.join("manifest.yml"), base.join("manifest.yaml")].into_iter().find(|p| p.exists())
        }
    };
    let (mut m, base) = match &file {
        Some(f) => {
            let text = std::fs::read_to_string(f).map_err(|e| {
                CliError::Usage(format!("cannot read manifest {}: {e}", f.display()))
            })?;
            let m = manifest::parse_with_vars(&text, &variables(a)?)
                .map_err(|e| CliError::Usage(format!("manifest {}: {e}", f.display())))?;
            (m, f.parent().map(Path::to_path_buf).unwrap_or_else(|| cwd.to_owned()))
        }
        None => {
            let name = a.name.clone().ok_or_else(|| CliError::Usage(NAME_REQUIRED.into()))?;
            (
                Manifest {
                    applications: vec![AppManifest { name, ..Default::default() }],
                    ..Default::default()
                },
                cwd.to_owned(),
            )
        }
    };
    select_app(&mut m, a.name.as_deref())?;
    let overrides = a.memory.is_some()
        || a.disk.is_some()
        || a.instances.is_some()
        || a.command.is_some()
        || !a.buildpacks.is_empty()
        || a.stack.is_some()
        || a.path.is_some()
        || a.docker_image.is_some();
    if overrides && m.applications.len() > 1 {
        return Err(CliError::Usage("Incorrect usage: flags apply to a single app; name the app to push (paas push APP ...)".into()));
    }
    let mut dirs = Vec::new();
    for app in &mut m.applications {
        merge(app, a);
        let dir = match (&a.path, &app.path) {
            (Some(p), _) => cwd.join(p),
            (None, Some(p)) => base.join(p),
            (None, None) => base.clone(),
        };
        app.path = Some(dir.display().to_string());
        dirs.push(dir);
    }
    if let Err(errors) = m.validate() {
        return Err(CliError::Usage(
            errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
        ));
    }
    if a.docker_username.is_some() && m.applications.iter().any(|x| x.docker.is_none()) {
        return Err(CliError::Usage(
            "Incorrect usage: --docker-username needs a docker image (-o or the manifest's docker.image)".into(),
        ));
    }
    Ok((m, dirs))
}

/// The app named on the command line, as the cf CLI v8 picks it: the manifest's app of that
/// name; else, when the manifest has a single app, that app renamed; else an error. Without a
/// name every app is pushed, and each must have one.
fn select_app(m: &mut Manifest, name: Option<&str>) -> Result<()> {
    let unnamed = m.applications.iter().any(|app| app.name.trim().is_empty());
    if m.applications.len() > 1 && unnamed {
        return Err(CliError::Usage("Found an application with no name specified.".into()));
    }
    match name {
        Some(name) => {
            if let Some(i) = m.applications.iter().position(|app| app.name == name) {
                let app = m.applications.swap_remove(i);
                m.applications = vec![app];
            } else if let [only] = m.applications.as_mut_slice() {
                only.name = name.to_owned();
            } else {
                return Err(CliError::Usage(format!(
                    "Could not find app named '{name}' in manifest"
                )));
            }
        }
        None if unnamed => return Err(CliError::Usage(NAME_REQUIRED.into())),
        None => {}
    }
    Ok(())
}

const NAME_REQUIRED: &str = "Incorrect usage: the push command requires an app name, given as an argument or in a manifest.yml.";

fn merge(app: &mut AppManifest, a: &PushArgs) {
    if let Some(image) = &a.docker_image {
        app.docker = Some(manifest::DockerManifest {
            image: image.clone(),
            username: a.docker_username.clone(),
            ..Default::default()
        });
    } else if let (Some(d), Some(u)) = (app.docker.as_mut(), &a.docker_username) {
        d.username = Some(u.clone());
    }
    if let Some(v) = &a.memory {
        app.memory = Some(v.clone());
    }
    if let Some(v) = &a.disk {
        app.disk_quota = Some(v.clone());
    }
    if let Some(v) = a.instances {
        app.instances = Some(v);
    }
    if let Some(v) = &a.command {
        app.command = Some(Some(v.clone()));
    }
    if !a.buildpacks.is_empty() {
        app.buildpack = None;
        app.buildpacks = Some(a.buildpacks.clone());
    }
    if let Some(v) = &a.stack {
        app.stack = Some(v.clone());
    }
    if let Some(v) = &a.log_rate {
        app.log_rate_limit_per_second = Some(v.clone());
    }
    if let Some(v) = &a.health_check_type {
        app.health.health_check_type = Some(v.clone());
    }
    if let Some(v) = &a.endpoint {
        app.health.health_check_http_endpoint = Some(v.clone());
    }
    if let Some(v) = a.timeout {
        app.health.timeout = Some(v);
    }
    if a.no_route {
        app.no_route = Some(true);
    }
    if a.random_route {
        app.random_route = Some(true);
    }
    if app.no_route != Some(true) && app.random_route != Some(true) {
        app.default_route = Some(true);
    }
}

/// `cf apply-manifest -f PATH`: the manifest (with its `((variables))` filled) applied to the
/// targeted space — apps created or changed, routes, environment, services — with nothing
/// uploaded, staged or started.
pub async fn apply_manifest(
    c: &mut Client,
    file: &Path,
    vars_files: Vec<PathBuf>,
    vars: Vec<String>,
) -> Result<()> {
    let space = c.cfg.require_space()?.clone();
    let file = if file.is_dir() { file.join("manifest.yml") } else { file.to_owned() };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| CliError::Usage(format!("cannot read manifest {}: {e}", file.display())))?;
    let a = PushArgs { vars_files, vars, ..Default::default() };
    let m = manifest::parse_with_vars(&text, &variables(&a)?)
        .map_err(|e| CliError::Usage(format!("manifest {}: {e}", file.display())))?;
    if let Err(errors) = m.validate() {
        return Err(CliError::Usage(
            errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
        ));
    }
    let yaml = m.to_yaml().map_err(|e| CliError::Other(e.to_string()))?;
    println!("Applying manifest file {} in {}...", file.display(), c.cfg.where_as());
    let path = format!("/v3/spaces/{}/actions/apply_manifest", space.guid);
    let res = c.send(reqwest::Method::POST, &path, crate::client::Body::Yaml(yaml)).await?;
    if let Some(loc) = res.headers().get("location").and_then(|v| v.to_str().ok()) {
        let loc = loc.to_owned();
        c.wait_job(&loc).await?;
    }
    println!("OK");
    Ok(())
}

pub async fn push(c: &mut Client, a: PushArgs) -> Result<()> {
    let space = c.cfg.require_space()?.clone();
    let cwd = std::env::current_dir().map_err(|e| CliError::Other(e.to_string()))?;
    let (m, dirs) = plan(&a, &cwd)?;
    let yaml = m.to_yaml().map_err(|e| CliError::Other(e.to_string()))?;
    let names: Vec<String> = m.applications.iter().map(|x| x.name.clone()).collect();
    println!(
        "Pushing app{} {} to org {} / space {} as {}...",
        if names.len() > 1 { "s" } else { "" },
        bold(&names.join(", ")),
        c.cfg.org.as_ref().map(|o| o.name.clone()).unwrap_or_default(),
        space.name,
        c.cfg.user().unwrap_or_default()
    );
    println!("Applying manifest...");
    let res = c
        .send(
            reqwest::Method::POST,
            &format!("/v3/spaces/{}/actions/apply_manifest", space.guid),
            crate::client::Body::Yaml(yaml),
        )
        .await?;
    if let Some(loc) =
        res.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned)
    {
        c.wait_job(&loc).await?;
    }
    let deploying = a.strategy.wanted()?;
    if deploying && a.no_start {
        return Err(CliError::Usage("--strategy and --no-start cannot be used together".into()));
    }
    for (am, dir) in m.applications.iter().zip(dirs) {
        let app = c.app(&am.name).await?;
        match (&a.droplet, &am.docker) {
            (Some(tgz), _) => push_droplet(c, &app, tgz, a.no_start).await?,
            (None, Some(docker)) => push_docker(c, &app, docker, a.no_start).await?,
            (None, None) => {
                push_bits(c, &app, &dir, a.no_start, deploying.then_some(&a.strategy)).await?
            }
        }
    }
    Ok(())
}

/// The body of a docker package: the image, and the credentials when a user name is given
/// (the password from [`DOCKER_PASSWORD_ENV`], which must then be set).
pub fn docker_package(
    app: &str,
    docker: &manifest::DockerManifest,
    password: Option<String>,
) -> Result<serde_json::Value> {
    let mut data = serde_json::json!({"image": docker.image});
    if let Some(user) = &docker.username {
        let password = password.filter(|p| !p.is_empty()).ok_or_else(|| {
            CliError::Usage(format!(
                "Environment variable {DOCKER_PASSWORD_ENV} not set: export the registry password of '{user}' as {DOCKER_PASSWORD_ENV} and push again."
            ))
        })?;
        data["username"] = user.clone().into();
        data["password"] = password.into();
    }
    Ok(serde_json::json!({"type": "docker", "data": data,
        "relationships": {"app": {"data": {"guid": app}}}}))
}

/// A docker image: a docker package, staged (the image resolved), set and started.
async fn push_docker(
    c: &mut Client,
    app: &App,
    docker: &manifest::DockerManifest,
    no_start: bool,
) -> Result<()> {
    let body = docker_package(&app.guid, docker, std::env::var(DOCKER_PASSWORD_ENV).ok())?;
    if docker.username.is_some() {
        println!(
            "Using docker repository password from environment variable {DOCKER_PASSWORD_ENV}."
        );
    }
    let pkg: Package = c.post("/v3/packages", &body).await?;
    if no_start {
        if app.state == AppState::Started {
            action(c, &app.guid, "stop").await?;
        }
        println!("OK (not started: --no-start)");
        return Ok(());
    }
    let droplet = crate::staging::stage(c, app, &pkg.guid).await?;
    set_droplet(c, app, &droplet).await?;
    println!("Waiting for app {} to start...\n", bold(&app.name));
    let app = action(c, &app.guid, "restart").await?;
    wait_running(c, &app).await?;
    summary(c, &app).await
}

/// The files of `files` the platform already has, asked in batches of 5000.
async fn matched(c: &mut Client, files: &[crate::upload::AppFile]) -> Result<Vec<Resource>> {
    let resources: Vec<Resource> =
        files.iter().filter(|f| !f.symlink && f.size > 0).map(|f| f.resource()).collect();
    let mut matched = Vec::new();
    for chunk in resources.chunks(5000) {
        let body = ResourceMatches { resources: chunk.to_vec() };
        let res: ResourceMatches = c.post("/v3/resource_matches", &body).await?;
        matched.extend(res.resources);
    }
    Ok(matched)
}

/// Wait for the package's upload to be processed.
async fn wait_ready(c: &mut Client, pkg: &str) -> Result<()> {
    loop {
        let p: Package = c.get(&format!("/v3/packages/{pkg}")).await?;
        match p.state {
            PackageState::Ready => return Ok(()),
            PackageState::Failed => {
                return Err(CliError::Failed("Package processing failed".into()))
            }
            PackageState::Expired => return Err(CliError::Failed("Package expired".into())),
            _ => tokio::time::sleep(c.poll).await,
        }
    }
}

/// A new bits package of the app from `dir` (only the files the platform lacks travel), READY:
/// its guid.
pub async fn upload_package(c: &mut Client, app: &str, dir: &Path) -> Result<String> {
    let files = crate::upload::walk(dir)?;
    println!("Packaging files to upload...");
    let matched = matched(c, &files).await?;
    let have: std::collections::HashSet<(&str, &str)> =
        matched.iter().map(|r| (r.path.as_str(), r.checksum.value.as_str())).collect();
    let send: Vec<&crate::upload::AppFile> = files
        .iter()
        .filter(|f| !have.contains(&(f.rel.to_string_lossy().as_ref(), f.sha1.as_str())))
        .collect();
    let pkg: Package = c.post("/v3/packages", &PackageCreate::bits(app)).await?;
    let pkg = pkg.guid;
    let tmp = tempdir()?;
    let zip_path = tmp.join("package.zip");
    let size = if send.is_empty() { 0 } else { crate::upload::zip(dir, &send, &zip_path)? };
    println!(
        "Uploading files ({} of {} need uploading, {})...",
        send.len(),
        files.len(),
        crate::output::bytes(size)
    );
    upload(c, &pkg, &matched, if send.is_empty() { None } else { Some((&zip_path, size)) }).await?;
    let _ = std::fs::remove_dir_all(&tmp);
    wait_ready(c, &pkg).await?;
    Ok(pkg)
}

async fn push_bits(
    c: &mut Client,
    app: &App,
    dir: &Path,
    no_start: bool,
    strategy: Option<&crate::deploy::Strategy>,
) -> Result<()> {
    let g = &app.guid;
    let pkg = upload_package(c, g, dir).await?;
    if no_start {
        if app.state == AppState::Started {
            action(c, g, "stop").await?;
        }
        println!("OK (not started: --no-start)");
        return Ok(());
    }
    let droplet = crate::staging::stage(c, app, &pkg).await?;
    if let Some(strategy) = strategy {
        crate::deploy::deploy(c, app, Some(&droplet), None, strategy).await?;
        let app = c.app(&app.name).await?;
        return summary(c, &app).await;
    }
    set_droplet(c, app, &droplet).await?;
    println!("Waiting for app {} to start...\n", bold(&app.name));
    let app = action(c, g, "restart").await?;
    wait_running(c, &app).await?;
    summary(c, &app).await
}

/// `--droplet`: upload the droplet, make it current and (re)start the app; nothing is staged.
async fn push_droplet(c: &mut Client, app: &App, tgz: &Path, no_start: bool) -> Result<()> {
    let body = serde_json::json!({"relationships": {"app": {"data": {"guid": app.guid}}}});
    let droplet: wire::v3::Droplet = c.post("/v3/droplets", &body).await?;
    println!("Uploading droplet bits...");
    let file = tokio::fs::File::open(tgz)
        .await
        .map_err(|e| CliError::Usage(format!("cannot read the droplet {}: {e}", tgz.display())))?;
    let size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let part = reqwest::multipart::Part::stream_with_length(
        reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file)),
        size,
    )
    .file_name("droplet.tgz")
    .mime_str("application/gzip")
    .map_err(|e| CliError::Other(e.to_string()))?;
    let token = c.token().await?;
    let res = c
        .http
        .post(c.url(&format!("/v3/droplets/{}/upload", droplet.guid)))
        .bearer_auth(&token)
        .multipart(reqwest::multipart::Form::new().part("bits", part))
        .send()
        .await?;
    if !res.status().is_success() {
        return Err(crate::client::api_error(res).await);
    }
    if let Some(loc) = res.headers().get("location").and_then(|v| v.to_str().ok()) {
        let loc = loc.to_owned();
        c.wait_job(&loc).await?;
    }
    set_droplet(c, app, &droplet.guid).await?;
    if no_start {
        if app.state == AppState::Started {
            action(c, &app.guid, "stop").await?;
        }
        println!("OK (not started: --no-start)");
        return Ok(());
    }
    println!("Waiting for app {} to start...\n", bold(&app.name));
    let app = action(c, &app.guid, "restart").await?;
    wait_running(c, &app).await?;
    summary(c, &app).await
}

fn tempdir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!(
        "paas-push-{}-{}",
        std::process::id(),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    std::fs::create_dir_all(&d).map_err(|e| CliError::Other(format!("{}: {e}", d.display())))?;
    Ok(d)
}

/// Multipart `resources` + `bits`, streamed from disk with a progress bar on a terminal.
async fn upload(
    c: &mut Client,
    pkg: &str,
    matched: &[Resource],
    zip: Option<(&Path, u64)>,
) -> Result<()> {
    for attempt in 0..3 {
        let token = c.token().await?;
        let resources = serde_json::to_string(matched)
            .map_err(|e| CliError::Other(format!("cannot encode the resources: {e}")))?;
        let mut form = reqwest::multipart::Form::new().text("resources", resources);
        if let Some((path, size)) = zip {
            let file =
                tokio::fs::File::open(path).await.map_err(|e| CliError::Other(e.to_string()))?;
            let bar = if tty() {
                indicatif::ProgressBar::new(size)
            } else {
                indicatif::ProgressBar::hidden()
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template("  {bar:40} {bytes}/{total_bytes}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let b2 = bar.clone();
            let stream = tokio_util::io::ReaderStream::new(file).inspect(move |chunk| {
                if let Ok(c) = chunk {
                    b2.inc(c.len() as u64);
                }
            });
            let part = reqwest::multipart::Part::stream_with_length(
                reqwest::Body::wrap_stream(stream),
                size,
            )
            .file_name("package.zip")
            .mime_str("application/zip")
            .map_err(|e| CliError::Other(e.to_string()))?;
            form = form.part("bits", part);
            let res = c
                .http
                .post(c.url(&format!("/v3/packages/{pkg}/upload")))
                .bearer_auth(&token)
                .multipart(form)
                .send()
                .await;
            bar.finish_and_clear();
            match res {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => return Err(crate::client::api_error(r).await),
                Err(e) if attempt < 2 && (e.is_request() || e.is_connect()) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let res = c
            .http
            .post(c.url(&format!("/v3/packages/{pkg}/upload")))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await?;
        if res.status().is_success() {
            return Ok(());
        }
        return Err(crate::client::api_error(res).await);
    }
    Err(CliError::Failed(
        "the upload failed three times; check your connection and try again".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_merge_into_the_manifest_and_default_route_is_added() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::write(
            d.path().join("manifest.yml"),
            "applications:\n- name: web\n  memory: 512M\n  env:\n    A: b\n",
        )
        .expect("w");
        let a = PushArgs {
            memory: Some("256M".into()),
            instances: Some(2),
            buildpacks: vec!["python_buildpack".into()],
            ..Default::default()
        };
        let (m, dirs) = plan(&a, d.path()).expect("plan");
        let app = &m.applications[0];
        assert_eq!(app.memory.as_deref(), Some("256M"));
        assert_eq!(app.instances, Some(2));
        assert_eq!(app.buildpacks.as_deref(), Some(&["python_buildpack".to_owned()][..]));
        assert_eq!(app.default_route, Some(true));
        assert_eq!(dirs[0], d.path());
    }

    #[test]
    fn vars_fill_the_manifest_and_no_manifest_ignores_it() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::write(
            d.path().join("manifest.yml"),
            "applications:\n- name: ((app))\n  instances: ((count))\n  env:\n    GREETING: hi ((who))\n",
        )
        .expect("w");
        std::fs::write(d.path().join("vars.yml"), "app: from-file\ncount: 3\nwho: file\n")
            .expect("w");
        let a = PushArgs {
            vars_files: vec![d.path().join("vars.yml")],
            vars: vec!["who=world".into()],
            log_rate: Some("1K".into()),
            ..Default::default()
        };
        let (m, _) = plan(&a, d.path()).expect("plan");
        let app = &m.applications[0];
        assert_eq!((app.name.as_str(), app.instances), ("from-file", Some(3)));
        let env = app.env.as_ref().expect("env");
        assert_eq!(env["GREETING"], serde_yaml::Value::String("hi world".into()), "--var wins");
        assert_eq!(app.log_rate_limit_per_second.as_deref(), Some("1K"));

        let missing = plan(&PushArgs::default(), d.path()).expect_err("unset vars");
        assert!(
            missing.to_string().contains("app") && missing.to_string().contains("count"),
            "{missing}"
        );
        let bad = PushArgs { vars: vec!["novalue".into()], ..Default::default() };
        assert!(plan(&bad, d.path()).expect_err("bad --var").to_string().contains("NAME=VALUE"));
        std::fs::write(d.path().join("list.yml"), "- a\n- b\n").expect("w");
        let bad_file =
            PushArgs { vars_files: vec![d.path().join("list.yml")], ..Default::default() };
        let e = plan(&bad_file, d.path()).expect_err("a list");
        assert!(e.to_string().contains("must be a YAML map"), "{e}");

        let bare = PushArgs { name: Some("bare".into()), no_manifest: true, ..Default::default() };
        let (m, _) = plan(&bare, d.path()).expect("plan");
        assert_eq!((m.applications[0].name.as_str(), m.applications[0].instances), ("bare", None));
        let both =
            PushArgs { no_manifest: true, manifest: Some(d.path().into()), ..Default::default() };
        assert!(plan(&both, d.path()).is_err());
    }

    #[test]
    fn a_name_on_the_command_line_picks_or_renames_the_app_as_cf_does() {
        let d = tempfile::tempdir().expect("tmp");
        let named = |n: &str| PushArgs { name: Some(n.into()), ..Default::default() };
        std::fs::write(
            d.path().join("manifest.yml"),
            "applications:\n- name: web\n  memory: 64M\n",
        )
        .expect("w");
        let (m, _) = plan(&named("renamed"), d.path()).expect("a single app is renamed");
        assert_eq!(m.applications.len(), 1);
        assert_eq!(m.applications[0].name, "renamed");
        assert_eq!(m.applications[0].memory.as_deref(), Some("64M"), "the rest is kept");

        std::fs::write(
            d.path().join("manifest.yml"),
            "applications:\n- name: web\n  memory: 64M\n- name: worker\n  memory: 32M\n",
        )
        .expect("w");
        let (m, _) = plan(&named("worker"), d.path()).expect("the named app is picked");
        assert_eq!(m.applications.len(), 1);
        assert_eq!(m.applications[0].memory.as_deref(), Some("32M"));
        match plan(&named("other"), d.path()) {
            Err(CliError::Usage(msg)) => {
                assert_eq!(msg, "Could not find app named 'other' in manifest")
            }
            other => panic!("several apps and none named so: {other:?}"),
        }
        let (m, _) = plan(&PushArgs::default(), d.path()).expect("no name: every app");
        assert_eq!(m.applications.len(), 2);

        std::fs::write(
            d.path().join("manifest.yml"),
            "applications:\n- name: web\n- memory: 32M\n",
        )
        .expect("w");
        match plan(&named("web"), d.path()) {
            Err(CliError::Usage(msg)) => {
                assert_eq!(msg, "Found an application with no name specified.")
            }
            other => panic!("an app without a name among several: {other:?}"),
        }
    }

    #[test]
    fn a_docker_image_goes_into_the_manifest_and_its_password_comes_from_the_environment() {
        let d = tempfile::tempdir().expect("tempdir");
        let a = PushArgs {
            name: Some("img".into()),
            docker_image: Some("127.0.0.1:5000/app:1".into()),
            docker_username: Some("alice".into()),
            no_manifest: true,
            ..Default::default()
        };
        let (m, _) = plan(&a, d.path()).expect("plan");
        let docker = m.applications[0].docker.clone().expect("docker");
        assert_eq!(
            (docker.image.as_str(), docker.username.as_deref()),
            ("127.0.0.1:5000/app:1", Some("alice"))
        );
        let missing = docker_package("g", &docker, None).expect_err("no password");
        assert!(missing.to_string().contains("CF_DOCKER_PASSWORD not set"), "{missing}");
        let body = docker_package("g", &docker, Some("pw".into())).expect("body");
        assert_eq!(
            body["data"],
            serde_json::json!({"image": "127.0.0.1:5000/app:1", "username": "alice", "password": "pw"})
        );
        let anonymous = manifest::DockerManifest { username: None, ..docker };
        let body = docker_package("g", &anonymous, None).expect("anonymous");
        assert_eq!(body["data"], serde_json::json!({"image": "127.0.0.1:5000/app:1"}));
        let with_path = PushArgs { path: Some(d.path().into()), ..a.clone() };
        assert!(matches!(plan(&with_path, d.path()), Err(CliError::Usage(_))));
        let user_only = PushArgs { docker_image: None, ..a };
        assert!(matches!(plan(&user_only, d.path()), Err(CliError::Usage(_))));
    }

    #[test]
    fn without_a_manifest_the_name_is_required() {
        let d = tempfile::tempdir().expect("tmp");
        assert!(matches!(plan(&PushArgs::default(), d.path()), Err(CliError::Usage(_))));
        let a = PushArgs { name: Some("x".into()), random_route: true, ..Default::default() };
        let (m, _) = plan(&a, d.path()).expect("plan");
        assert_eq!(m.applications[0].random_route, Some(true));
        assert_eq!(m.applications[0].default_route, None);
    }
}
