//! Zero-downtime deployments and revisions: `push|restart|restage --strategy rolling|canary`,
//! `cancel-deployment`, `continue-deployment`, `revisions`, `revision`, `rollback` and
//! `restart-app-instance`, as the cf CLI v8 has them. A deployment is watched until it is
//! FINALIZED (or PAUSED, for a canary), printing each change of its status.

use std::time::{Duration, Instant};

use wire::v3::deployment::{DeploymentOptions, DeploymentRelationships, NewDeployment};
use wire::v3::revision::RevisionEnv;
use wire::v3::{App, Deployment, DeploymentReason, Guid, Revision, ToOne};

use crate::client::{query, Client, Ignored, Result};
use crate::error::CliError;
use crate::output::{bold, confirm, pairs, table, tty};

/// `--strategy`, `--max-in-flight`, `--no-wait` of push, restart, restage and rollback.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Strategy {
    /// Deployment strategy: rolling or canary (replace instances without downtime)
    #[arg(long = "strategy", value_parser = ["rolling", "canary"])]
    pub kind: Option<String>,
    /// Instances of the new version started at a time (with --strategy)
    #[arg(long = "max-in-flight", value_parser = clap::value_parser!(i64).range(1..))]
    pub max_in_flight: Option<i64>,
    /// Return once the first new instance is healthy (with --strategy)
    #[arg(long = "no-wait")]
    pub no_wait: bool,
}

impl Strategy {
    /// Whether a deployment was asked for; `--max-in-flight` alone is a usage error.
    pub fn wanted(&self) -> Result<bool> {
        if self.kind.is_none() && (self.max_in_flight.is_some() || self.no_wait) {
            return Err(CliError::Usage(
                "--max-in-flight and --no-wait need --strategy rolling or --strategy canary".into(),
            ));
        }
        Ok(self.kind.is_some())
    }
}

/// Create a deployment of `app` (of `droplet`, or `revision`, or its current droplet) and
/// watch it.
pub async fn deploy(
    c: &mut Client,
    app: &App,
    droplet: Option<&str>,
    revision: Option<&str>,
    s: &Strategy,
) -> Result<Deployment> {
    let body = NewDeployment {
        droplet: droplet.map(Guid::new),
        revision: revision.map(Guid::new),
        strategy: s.kind.clone(),
        options: s
            .max_in_flight
            .map(|n| DeploymentOptions { max_in_flight: Some(n), ..Default::default() }),
        relationships: DeploymentRelationships { app: ToOne::of(&app.guid) },
        metadata: None,
    };
    let d: Deployment = c.post("/v3/deployments", &body).await?;
    println!(
        "Creating deployment for app {} ({} strategy)...\n",
        bold(&app.name),
        s.kind.as_deref().unwrap_or("rolling")
    );
    watch(c, &app.name, d, s.no_wait).await
}

/// Poll the deployment until FINALIZED or PAUSED (or, with `no_wait`, a healthy new
/// instance); a new version that fails stops the watch with the reason.
pub async fn watch(
    c: &mut Client,
    app: &str,
    mut d: Deployment,
    no_wait: bool,
) -> Result<Deployment> {
    let deadline = Instant::now() + Duration::from_secs(15 * 60);
    let mut shown = None;
    loop {
        if shown != Some(d.status.reason) {
            println!("Deployment {}: {}", d.guid, d.status.reason);
            shown = Some(d.status.reason);
        }
        match d.status.reason {
            DeploymentReason::Deployed => {
                println!("\nOK: all instances of '{app}' run the new version.");
                return Ok(d);
            }
            DeploymentReason::Paused => {
                println!(
                    "\nCanary deployment of '{app}' is paused: the canary instances run the new version.\nTIP: run 'paas continue-deployment {app}' to go on, or 'paas cancel-deployment {app}' to go back."
                );
                return Ok(d);
            }
            DeploymentReason::Canceled => {
                return Err(CliError::Failed(format!(
                    "The deployment of '{app}' was canceled; the previous version runs."
                )))
            }
            DeploymentReason::Superseded => {
                return Err(CliError::Failed(format!(
                    "The deployment of '{app}' was superseded by a newer one."
                )))
            }
            DeploymentReason::Deploying | DeploymentReason::Canceling => {}
        }
        if let Some(e) = &d.status.details.error {
            return Err(CliError::Failed(format!(
                "The deployment of '{app}' is not progressing: {e}\nThe previous version keeps serving.\nTIP: run 'paas cancel-deployment {app}' to go back, and 'paas logs {app} --recent' to see why."
            )));
        }
        if no_wait && d.status.details.last_successful_healthcheck.is_some() {
            println!("\nOK: a new instance is healthy; the deployment goes on (--no-wait).");
            return Ok(d);
        }
        if Instant::now() > deadline {
            return Err(CliError::Failed(format!(
                "The deployment of '{app}' did not finish within 15 minutes.\nTIP: 'paas app {app}' shows where it stands."
            )));
        }
        tokio::time::sleep(c.poll).await;
        d = c.get(&format!("/v3/deployments/{}", d.guid)).await?;
    }
}

/// The app's ACTIVE deployment.
pub async fn active(c: &mut Client, app: &App) -> Result<Option<Deployment>> {
    let path = format!(
        "/v3/deployments{}",
        query(&[
            ("app_guids", &app.guid),
            ("status_values", "ACTIVE"),
            ("order_by", "-created_at"),
            ("per_page", "1")
        ])
    );
    let page: wire::v3::Page<Deployment> = c.get(&path).await?;
    Ok(page.resources.into_iter().next())
}

fn no_active(name: &str) -> CliError {
    CliError::Failed(format!("No active deployment found for app '{name}'."))
}

pub async fn cancel(c: &mut Client, name: &str) -> Result<()> {
    let app = c.app(name).await?;
    let d = active(c, &app).await?.ok_or_else(|| no_active(name))?;
    println!("Canceling deployment for app {}...", bold(name));
    let _: Ignored = c.post(&format!("/v3/deployments/{}/actions/cancel", d.guid), &()).await?;
    println!(
        "OK\nTIP: the previous version is being restored; 'paas app {name}' shows its progress."
    );
    Ok(())
}

pub async fn resume(c: &mut Client, name: &str, no_wait: bool) -> Result<()> {
    let app = c.app(name).await?;
    let d = active(c, &app).await?.ok_or_else(|| no_active(name))?;
    if d.status.reason != DeploymentReason::Paused {
        return Err(CliError::Failed(format!(
            "The deployment of '{name}' is {}, not paused: nothing to continue.",
            d.status.reason
        )));
    }
    println!("Continuing deployment for app {}...\n", bold(name));
    let d: Deployment =
        c.post(&format!("/v3/deployments/{}/actions/continue", d.guid), &()).await?;
    watch(c, name, d, no_wait).await?;
    Ok(())
}

async fn revisions_of(c: &mut Client, app: &App, versions: Option<i64>) -> Result<Vec<Revision>> {
    let v = versions.map(|v| v.to_string());
    let mut q = vec![("order_by", "-created_at")];
    if let Some(v) = &v {
        q.push(("versions", v));
    }
    c.list(&format!("/v3/apps/{}/revisions{}", app.guid, query(&q))).await
}

async fn deployed_guids(c: &mut Client, app: &App) -> Result<Vec<String>> {
    let list: Vec<Revision> = c.list(&format!("/v3/apps/{}/revisions/deployed", app.guid)).await?;
    Ok(list.into_iter().map(|r| r.guid).collect())
}

pub async fn revisions(c: &mut Client, name: &str) -> Result<()> {
    let app = c.app(name).await?;
    println!(
        "Getting revisions for app {} as {}...\n",
        bold(name),
        c.cfg.user().unwrap_or_default()
    );
    let list = revisions_of(c, &app, None).await?;
    let deployed = deployed_guids(c, &app).await?;
    if list.is_empty() {
        println!("No revisions found.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            let mark = if deployed.contains(&r.guid) { "(deployed)" } else { "" };
            vec![
                format!(
                    "{}{}",
                    r.version,
                    if mark.is_empty() { String::new() } else { format!(" {mark}") }
                ),
                r.description.clone(),
                r.deployable.to_string(),
                r.guid.clone(),
                r.created_at.clone(),
            ]
        })
        .collect();
    println!(
        "{}",
        table(&["revision", "description", "deployable", "revision guid", "created at"], &rows)
    );
    Ok(())
}

async fn revision_by_version(c: &mut Client, app: &App, version: i64) -> Result<Revision> {
    revisions_of(c, app, Some(version)).await?.into_iter().next().ok_or_else(|| {
        CliError::NotFound(format!(
            "Revision {version} of app '{}' not found.\nTIP: 'paas revisions {}' lists them.",
            app.name, app.name
        ))
    })
}

pub async fn revision(c: &mut Client, name: &str, version: i64) -> Result<()> {
    let app = c.app(name).await?;
    println!("Showing revision {version} for app {}...\n", bold(name));
    let r = revision_by_version(c, &app, version).await?;
    let deployed = deployed_guids(c, &app).await?.contains(&r.guid);
    println!(
        "{}",
        pairs(&[
            ("revision", r.version.to_string()),
            ("deployed", deployed.to_string()),
            ("description", r.description.clone()),
            ("deployable", r.deployable.to_string()),
            ("revision GUID", r.guid.clone()),
            ("droplet GUID", r.droplet.guid.clone()),
            ("created on", r.created_at.clone()),
        ])
    );
    let cmds: Vec<Vec<String>> = r
        .processes
        .iter()
        .map(|(k, p)| {
            vec![k.clone(), p.command.clone().unwrap_or_else(|| "(from the droplet)".into())]
        })
        .collect();
    println!("\n{}", table(&["process", "command"], &cmds));
    match c.get::<RevisionEnv>(&format!("/v3/revisions/{}/environment_variables", r.guid)).await {
        Ok(env) => {
            println!("\napplication environment variables:");
            for (k, v) in env.var {
                println!("   {k}: {v}");
            }
        }
        Err(CliError::Api { status: 403, .. }) => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

pub async fn rollback(
    c: &mut Client,
    name: &str,
    version: i64,
    force: bool,
    s: &Strategy,
) -> Result<()> {
    let app = c.app(name).await?;
    let r = revision_by_version(c, &app, version).await?;
    if !r.deployable {
        return Err(CliError::Failed(format!(
            "Revision {version} of '{name}' cannot be deployed: its droplet no longer exists."
        )));
    }
    if !force {
        if !tty() {
            return Err(CliError::Usage(format!(
                "rolling '{name}' back needs a confirmation: run it on a terminal or add -f"
            )));
        }
        if !confirm(&format!("Rolling '{name}' back to revision {version} will create a new revision. Are you sure you want to continue?"))? {
            println!("App '{name}' has not been rolled back to revision {version}.");
            return Ok(());
        }
    }
    println!("Rolling back to revision {version} for app {}...\n", bold(name));
    let strategy =
        Strategy { kind: Some(s.kind.clone().unwrap_or_else(|| "rolling".into())), ..s.clone() };
    deploy(c, &app, None, Some(&r.guid), &strategy).await?;
    Ok(())
}

pub async fn restart_instance(c: &mut Client, name: &str, index: u32, process: &str) -> Result<()> {
    let app = c.app(name).await?;
    println!("Restarting instance {index} of process {process} of app {}...", bold(name));
    c.delete(&format!("/v3/apps/{}/processes/{process}/instances/{index}", app.guid)).await?;
    println!("OK");
    Ok(())
}

/// The active deployment's lines of `paas app`, if there is one.
pub async fn summary_lines(c: &mut Client, app: &App) -> Result<Option<String>> {
    let Some(d) = active(c, app).await? else { return Ok(None) };
    let mut lines = format!(
        "Active deployment with status {} (since {}).\n{}",
        d.status.reason,
        d.status.details.last_status_change.clone().unwrap_or_else(|| d.created_at.clone()),
        pairs(&[
            ("strategy", d.strategy.clone()),
            ("max-in-flight", d.options.max_in_flight.unwrap_or(1).to_string()),
        ])
    );
    if let Some(e) = &d.status.details.error {
        lines.push_str(&format!("\nerror: {e}"));
    }
    Ok(Some(lines))
}
