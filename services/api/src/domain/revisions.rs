//! Revisions (docs/api.md "Deployments and revisions"): when an app starts or is deployed with
//! a droplet, environment or process commands that differ from its newest revision, a new
//! revision records them, numbered from 1 per app (wrapping after 9999, as CC) and described
//! as CC describes them. An app keeps its newest 100.

use std::collections::BTreeMap;

use crate::error::ApiResult;
use crate::store::apps::App;
use crate::store::processes::Process;
use crate::store::revisions::Revision;
use crate::store::{self, new_guid, now_ms, Exec};

/// What a revision would hold for `app` running `processes` now.
fn snapshot(app: &App, processes: &[Process]) -> (BTreeMap<String, Option<String>>, String) {
    let cmds = processes.iter().map(|p| (p.kind.clone(), p.command.clone())).collect();
    (cmds, app.droplet_guid.clone())
}

/// The revision `app` runs with `processes`: its newest if nothing changed, else a new one
/// described by what changed (or by `why` when given, as for a rollback).
pub async fn record(
    tx: &mut sqlx::AnyConnection,
    app: &App,
    processes: &[Process],
    why: Option<String>,
) -> ApiResult<Revision> {
    let (processes, droplet) = snapshot(app, processes);
    let latest = store::revisions::latest(&mut *tx, &app.guid).await?;
    let mut changes = Vec::new();
    match &latest {
        None => changes.push("Initial revision.".to_owned()),
        Some(r) => {
            if r.droplet_guid != droplet {
                changes.push("New droplet deployed.".to_owned());
            }
            if r.env != app.env {
                changes.push("New environment variables deployed.".to_owned());
            }
            for (kind, cmd) in &processes {
                if r.processes.get(kind).cloned().flatten() != *cmd {
                    changes.push(format!("Custom start command updated for '{kind}' process."));
                }
            }
        }
    }
    if let (Some(r), None, true) = (&latest, &why, changes.is_empty()) {
        return Ok(r.clone());
    }
    let now = now_ms();
    let version = latest.as_ref().map_or(1, |r| r.version % 9999 + 1);
    let rev = Revision {
        guid: new_guid(),
        app_guid: app.guid.clone(),
        version,
        droplet_guid: droplet,
        processes,
        env: app.env.clone(),
        description: why.unwrap_or_else(|| changes.join(" ")),
        created_at: now,
        updated_at: now,
    };
    store::revisions::insert(&mut *tx, &rev).await?;
    store::revisions::prune(&mut *tx, &app.guid).await?;
    Ok(rev)
}

/// Whether the revision's droplet is still there to deploy.
pub async fn deployable<'e>(ex: impl Exec<'e>, r: &Revision) -> ApiResult<bool> {
    Ok(store::droplets::find(ex, &r.droplet_guid).await?.is_some())
}
