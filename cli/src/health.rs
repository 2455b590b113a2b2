//! Health checks of an app's processes: `get-health-check`, `set-health-check`.

use wire::v3::process::{HealthCheckChange, HealthCheckChangeData, ProcessUpdate};
use wire::v3::Process;

use crate::client::{Client, Ignored, Result};
use crate::error::CliError;
use crate::output::{bold, table};

/// `cf get-health-check APP`: each process's check, endpoint and invocation timeout.
pub async fn get(c: &mut Client, name: &str) -> Result<()> {
    let a = c.app(name).await?;
    println!("Getting health check type for app {} in {}...\n", bold(name), c.cfg.where_as());
    let procs: Vec<Process> = c.list(&format!("/v3/apps/{}/processes", a.guid)).await?;
    let rows: Vec<Vec<String>> = procs
        .iter()
        .map(|p| {
            let h = &p.health_check;
            vec![
                p.kind.clone(),
                h.kind.clone(),
                h.data.endpoint.clone().unwrap_or_default(),
                h.data.invocation_timeout.map(|t| t.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    println!(
        "{}",
        table(&["process", "health check", "endpoint (for http)", "invocation timeout"], &rows)
    );
    Ok(())
}

/// What `set-health-check` sets.
pub struct HealthArgs {
    pub kind: String,
    pub endpoint: Option<String>,
    pub invocation_timeout: Option<i64>,
    pub process: String,
}

/// `cf set-health-check APP TYPE`: takes effect when the app restarts.
pub async fn set(c: &mut Client, name: &str, h: HealthArgs) -> Result<()> {
    let a = c.app(name).await?;
    let p: Process = match c.get(&format!("/v3/apps/{}/processes/{}", a.guid, h.process)).await {
        Err(CliError::Api { status: 404, .. }) => {
            return Err(CliError::NotFound(format!(
                "Process '{}' not found in app '{name}'. See 'paas get-health-check {name}'.",
                h.process
            )))
        }
        other => other?,
    };
    println!(
        "Updating health check type for app {} process {} in {}...",
        bold(name),
        bold(&h.process),
        c.cfg.where_as()
    );
    let endpoint = if h.kind == "http" { h.endpoint.or(Some("/".into())) } else { None };
    let body = ProcessUpdate {
        health_check: HealthCheckChange {
            kind: h.kind,
            data: HealthCheckChangeData { endpoint, invocation_timeout: h.invocation_timeout },
        },
    };
    let _: Ignored = c.patch(&format!("/v3/processes/{}", p.guid), &body).await?;
    println!("OK\n\nTIP: An app restart is required for the change to take effect.");
    Ok(())
}
