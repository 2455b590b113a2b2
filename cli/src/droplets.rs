//! An app's packages and droplets: `packages`, `create-package`, `stage-package`, `droplets`,
//! `set-droplet`, `download-droplet`, `export-image`.

use std::path::{Path, PathBuf};

use futures::StreamExt as _;
use tokio::io::AsyncWriteExt as _;
use wire::v3::{Droplet, Package};

use crate::client::{query, Body, Client, Result};
use crate::error::CliError;
use crate::output::{bold, pairs, table};

/// `cf packages APP`: newest first.
pub async fn packages(c: &mut Client, name: &str) -> Result<()> {
    let a = c.app(name).await?;
    println!("Listing packages of app {} in {}...\n", bold(name), c.cfg.where_as());
    let q = query(&[("order_by", "-created_at")]);
    let list: Vec<Package> = c.list(&format!("/v3/apps/{}/packages{q}", a.guid)).await?;
    if list.is_empty() {
        println!("No packages found.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .into_iter()
        .map(|p| vec![p.guid, p.state.as_str().to_lowercase(), p.created_at])
        .collect();
    println!("{}", table(&["guid", "state", "created"], &rows));
    Ok(())
}

/// `cf droplets APP`: newest first, the current one marked.
pub async fn droplets(c: &mut Client, name: &str) -> Result<()> {
    let a = c.app(name).await?;
    println!("Getting droplets of app {} in {}...\n", bold(name), c.cfg.where_as());
    let q = query(&[("order_by", "-created_at")]);
    let list: Vec<Droplet> = c.list(&format!("/v3/apps/{}/droplets{q}", a.guid)).await?;
    if list.is_empty() {
        println!("No droplets found.");
        return Ok(());
    }
    let current = a.relationships.current_droplet.guid().unwrap_or_default();
    let rows: Vec<Vec<String>> = list
        .into_iter()
        .map(|d| {
            let mark = if d.guid == current { " (current)" } else { "" };
            vec![format!("{}{mark}", d.guid), d.state.as_str().to_lowercase(), d.created_at]
        })
        .collect();
    println!("{}", table(&["guid", "state", "created"], &rows));
    Ok(())
}

/// `cf set-droplet APP DROPLET_GUID`.
pub async fn set_droplet(c: &mut Client, name: &str, droplet: &str) -> Result<()> {
    let a = c.app(name).await?;
    println!("Setting app {} to droplet {droplet} in {}...", bold(name), c.cfg.where_as());
    crate::apps::set_droplet(c, &a, droplet).await?;
    println!("OK");
    Ok(())
}

/// Where a droplet goes: `path` as a file, into `path` when it is a folder, else
/// `droplet_GUID.tgz` in the current folder.
fn droplet_file(path: Option<&Path>, guid: &str, ext: &str) -> PathBuf {
    let file = format!("droplet_{guid}.{ext}");
    match path {
        Some(p) if p.is_dir() => p.join(file),
        Some(p) => p.to_path_buf(),
        None => PathBuf::from(file),
    }
}

/// The droplet `droplet`, else the app's current one.
fn droplet_of(name: &str, a: &wire::v3::App, droplet: Option<&str>) -> Result<String> {
    match droplet {
        Some(g) => Ok(g.to_owned()),
        None => a.relationships.current_droplet.guid().map(str::to_owned).ok_or_else(|| {
            CliError::NotFound(format!(
                "App '{name}' does not have a current droplet. See 'paas droplets {name}'."
            ))
        }),
    }
}

/// Stream `url` into `file` through `file.part`, renamed when complete (a failed download
/// leaves nothing behind).
async fn save(c: &mut Client, url: &str, file: &Path) -> Result<PathBuf> {
    let part = PathBuf::from(format!("{}.part", file.display()));
    let mut stream = c.send(reqwest::Method::GET, url, Body::None).await?.bytes_stream();
    let cannot =
        |e: std::io::Error| CliError::Usage(format!("cannot write {}: {e}", file.display()));
    let mut out = tokio::fs::File::create(&part).await.map_err(cannot)?;
    let copied = async {
        while let Some(chunk) = stream.next().await {
            out.write_all(&chunk?).await.map_err(cannot)?;
        }
        out.flush().await.map_err(cannot)?;
        tokio::fs::rename(&part, file).await.map_err(cannot)
    };
    if let Err(e) = copied.await {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(e);
    }
    Ok(std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf()))
}

/// `cf download-droplet APP [--droplet GUID] [--path FILE]`: the current droplet unless one
/// is named.
pub async fn download(
    c: &mut Client,
    name: &str,
    droplet: Option<&str>,
    path: Option<&Path>,
) -> Result<()> {
    let a = c.app(name).await?;
    let guid = droplet_of(name, &a, droplet)?;
    match droplet {
        Some(g) => {
            println!("Downloading droplet {g} for app {} in {}...", bold(name), c.cfg.where_as())
        }
        None => println!(
            "Downloading current droplet for app {} in {}...",
            bold(name),
            c.cfg.where_as()
        ),
    }
    let file = droplet_file(path, &guid, "tgz");
    let shown = save(c, &format!("/v3/droplets/{guid}/download"), &file).await?;
    println!("Droplet downloaded successfully at {}\nOK", shown.display());
    Ok(())
}

/// `paas export-image APP [--droplet GUID] [--path FILE]`: the droplet (current unless
/// named) on its stack with the launcher, as a tar of an OCI image layout tagged `latest`.
pub async fn export_image(
    c: &mut Client,
    name: &str,
    droplet: Option<&str>,
    path: Option<&Path>,
) -> Result<()> {
    let a = c.app(name).await?;
    let guid = droplet_of(name, &a, droplet)?;
    println!(
        "Exporting droplet {guid} of app {} in {} as an OCI image...",
        bold(name),
        c.cfg.where_as()
    );
    let file = droplet_file(path, &guid, "oci.tar");
    let shown = save(c, &format!("/v3/droplets/{guid}/download?format=oci"), &file).await?;
    println!("Image written to {}", shown.display());
    println!(
        "Run it with any OCI runtime, e.g.: mkdir image && tar -xf {} -C image && umoci unpack \
         --image image:latest bundle && runc run -b bundle {name}\nOK",
        shown.display()
    );
    Ok(())
}

/// `cf create-package APP [-p PATH]`: a bits package of the folder, not staged.
pub async fn create_package(c: &mut Client, name: &str, path: Option<&Path>) -> Result<()> {
    let a = c.app(name).await?;
    let dir = match path {
        Some(p) => p.to_path_buf(),
        None => std::env::current_dir().map_err(|e| CliError::Other(e.to_string()))?,
    };
    println!(
        "Uploading and creating bits package for app {} in {}...",
        bold(name),
        c.cfg.where_as()
    );
    let pkg = crate::push::upload_package(c, &a.guid, &dir).await?;
    println!("OK\n\nPackage with guid '{pkg}' has been created.");
    Ok(())
}

/// `cf stage-package APP [--package-guid GUID]`: the newest READY package unless one is named.
/// `cf copy-source SOURCE TARGET [--no-restart]`: the source app's newest package copied to the
/// target app, staged, and the target restarted with it.
pub async fn copy_source(c: &mut Client, from: &str, to: &str, restart: bool) -> Result<()> {
    let (src, dst) = (c.app(from).await?, c.app(to).await?);
    let q = query(&[("states", "READY"), ("order_by", "-created_at")]);
    let newest: Vec<Package> = c.list(&format!("/v3/apps/{}/packages{q}", src.guid)).await?;
    let pkg = newest.into_iter().next().ok_or_else(|| {
        CliError::NotFound(format!("App '{from}' has no package to copy. Push it first."))
    })?;
    println!(
        "Copying source from app {} to target app {} in {}...",
        bold(from),
        bold(to),
        c.cfg.where_as()
    );
    let body = wire::v3::package::PackageCreate::bits(&dst.guid);
    let copy: Package =
        c.post(&format!("/v3/packages{}", query(&[("source_guid", &pkg.guid)])), &body).await?;
    let mut waited = 0;
    let mut state = copy.state;
    while state != wire::v3::PackageState::Ready {
        if state == wire::v3::PackageState::Failed || waited > 600 {
            return Err(CliError::Failed(format!("Copying the package failed ({state}).")));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        waited += 1;
        state = c.get::<Package>(&format!("/v3/packages/{}", copy.guid)).await?.state;
    }
    println!("OK");
    if !restart {
        return Ok(());
    }
    let droplet = crate::staging::stage(c, &dst, &copy.guid).await?;
    crate::apps::set_droplet(c, &dst, &droplet).await?;
    println!("Waiting for app {} to start...", bold(to));
    let dst = crate::apps::action(c, &dst.guid, "restart").await?;
    crate::apps::wait_running(c, &dst).await?;
    println!("OK");
    Ok(())
}

pub async fn stage_package(c: &mut Client, name: &str, package: Option<&str>) -> Result<()> {
    let a = c.app(name).await?;
    let pkg = match package {
        Some(p) => p.to_owned(),
        None => {
            let q = query(&[("states", "READY"), ("order_by", "-created_at")]);
            let list: Vec<Package> = c.list(&format!("/v3/apps/{}/packages{q}", a.guid)).await?;
            list.into_iter().next().map(|p| p.guid).ok_or_else(|| {
                CliError::NotFound(format!(
                    "App '{name}' has no package to stage. Use 'paas create-package {name}' first."
                ))
            })?
        }
    };
    println!("Staging package for app {} in {}...", bold(name), c.cfg.where_as());
    let guid = crate::staging::stage(c, &a, &pkg).await?;
    let d: Droplet = c.get(&format!("/v3/droplets/{guid}")).await?;
    println!("\nPackage staged\n");
    println!(
        "{}\nOK",
        pairs(&[
            ("droplet guid", d.guid),
            ("state", d.state.as_str().to_lowercase()),
            ("created", d.created_at),
        ])
    );
    Ok(())
}
