//! App commands: `apps`, `app`, `create-app`, `rename`, `start`, `stop`, `restart`, `restage`,
//! `scale`, `delete`, `env`, `set-env`, `unset-env`, `events`, and the summary `push` ends
//! with.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wire::v3::app::{
    AppCreate, AppCreateRelationships, AppEnv, CurrentDroplet, EnvironmentVariables,
};
use wire::v3::event::AuditEvent;
use wire::v3::process::{ProcessScale, ProcessStatsList};
use wire::v3::{
    App, AppState, Droplet, InstanceState, Lifecycle, Package, Page, Process, ProcessStats, Rename,
    Route, ToOne,
};

use crate::client::{query, Client, Ignored, Result};
use crate::error::CliError;
use crate::output::{bad, bold, bytes, confirm, ok, pairs, print_json, table};

/// The instances of a process.
async fn stats(c: &mut Client, process: &Process) -> Result<Vec<ProcessStats>> {
    let list: ProcessStatsList = c.get(&format!("/v3/processes/{}/stats", process.guid)).await?;
    Ok(list.resources)
}

fn running(stats: &[ProcessStats]) -> usize {
    stats.iter().filter(|s| s.state == InstanceState::Running).count()
}

async fn urls(c: &mut Client, app: &App) -> Result<String> {
    let routes: Vec<Route> = c.list(&format!("/v3/apps/{}/routes", app.guid)).await?;
    Ok(routes.iter().map(|r| r.url.as_str()).collect::<Vec<_>>().join(", "))
}

pub async fn apps(c: &mut Client, json_out: bool) -> Result<()> {
    let space = c.cfg.require_space()?.clone();
    let path = format!("/v3/apps{}", query(&[("space_guids", &space.guid), ("order_by", "name")]));
    if json_out {
        let list: Vec<Value> = c.list(&path).await?;
        print_json(&Value::Array(list));
        return Ok(());
    }
    let list: Vec<App> = c.list(&path).await?;
    println!(
        "Getting apps in org {} / space {}...\n",
        c.cfg.org.as_ref().map(|o| o.name.clone()).unwrap_or_default(),
        space.name
    );
    let mut rows = Vec::new();
    for a in &list {
        let procs: Vec<Process> = c.list(&format!("/v3/apps/{}/processes", a.guid)).await?;
        let mut parts = Vec::new();
        for p in &procs {
            let all = stats(c, p).await?;
            parts.push(format!("{}:{}/{}", p.kind, running(&all), all.len()));
        }
        rows.push(vec![
            a.name.clone(),
            a.state.as_str().to_lowercase(),
            parts.join(", "),
            urls(c, a).await?,
        ]);
    }
    if rows.is_empty() {
        println!("No apps found.");
    } else {
        println!("{}", table(&["name", "requested state", "processes", "routes"], &rows));
    }
    Ok(())
}

fn since(uptime: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::seconds(uptime);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&f).unwrap_or_default()
}

/// One row of the instance table.
fn instance_row(s: &ProcessStats) -> Vec<String> {
    let st = s.state.as_str().to_lowercase();
    let state = match s.state {
        InstanceState::Running => ok(&st),
        InstanceState::Crashed => bad(&st),
        _ => st,
    };
    let u = &s.usage;
    let quota = |q: Option<u64>| q.map(bytes).unwrap_or_default();
    vec![
        format!("#{}", s.index),
        state,
        since(s.uptime),
        u.cpu.map(|c| format!("{:.1}%", c * 100.0)).unwrap_or_else(|| "0.0%".into()),
        format!("{} of {}", u.mem.map(bytes).unwrap_or_else(|| "0".into()), quota(s.mem_quota)),
        format!("{} of {}", u.disk.map(bytes).unwrap_or_else(|| "0".into()), quota(s.disk_quota)),
        s.details.clone().unwrap_or_default(),
    ]
}

/// The app summary (`paas app`, end of `paas push`).
pub async fn summary(c: &mut Client, app: &App) -> Result<()> {
    let g = &app.guid;
    let routes = urls(c, app).await?;
    let droplet: Option<Droplet> = c.get(&format!("/v3/apps/{g}/droplets/current")).await.ok();
    let bps: Vec<String> = droplet
        .as_ref()
        .map(|d| d.buildpacks.iter().map(|b| b.name.clone()).collect())
        .unwrap_or_default();
    println!(
        "{}\n",
        pairs(&[
            ("name", app.name.clone()),
            ("requested state", app.state.as_str().to_lowercase()),
            ("routes", routes),
            ("last uploaded", droplet.as_ref().map(|d| d.created_at.clone()).unwrap_or_default()),
            ("stack", droplet.as_ref().and_then(|d| d.stack.clone()).unwrap_or_default()),
            ("buildpacks", bps.join(", ")),
        ])
    );
    if let Some(lines) = crate::deploy::summary_lines(c, app).await? {
        println!("{lines}\n");
    }
    let procs: Vec<Process> = c.list(&format!("/v3/apps/{g}/processes")).await?;
    for p in procs {
        let all = stats(c, &p).await?;
        println!(
            "{}",
            pairs(&[
                ("type", p.kind.clone()),
                ("instances", format!("{}/{}", running(&all), all.len())),
                ("memory usage", format!("{}M", p.memory_in_mb)),
            ])
        );
        let rows: Vec<Vec<String>> = all.iter().map(instance_row).collect();
        if !rows.is_empty() {
            println!(
                "{}",
                table(&["", "state", "since", "cpu", "memory", "disk", "details"], &rows)
            );
        }
        println!();
    }
    Ok(())
}

/// `paas app --json`: the app, its processes with their stats, and its routes, as the API
/// sent them.
async fn app_json(c: &mut Client, a: &App) -> Result<()> {
    let g = &a.guid;
    let app: Value = c.get(&format!("/v3/apps/{g}")).await?;
    let mut procs = Vec::new();
    let list: Vec<Value> = c.list(&format!("/v3/apps/{g}/processes")).await?;
    for p in list {
        let guid = p["guid"].as_str().unwrap_or_default().to_owned();
        let stats: Value = c.get(&format!("/v3/processes/{guid}/stats")).await?;
        procs.push(json!({"process": p, "stats": stats["resources"]}));
    }
    let routes: Vec<Value> = c.list(&format!("/v3/apps/{g}/routes")).await?;
    print_json(&json!({"app": app, "processes": procs, "routes": routes}));
    Ok(())
}

pub async fn app(c: &mut Client, name: &str, json_out: bool, guid_only: bool) -> Result<()> {
    let a = c.app(name).await?;
    if guid_only {
        println!("{}", a.guid);
        return Ok(());
    }
    if json_out {
        return app_json(c, &a).await;
    }
    println!("Showing health and status for app {} ...\n", bold(name));
    summary(c, &a).await
}

/// Wait until every process has 0 instances or at least one RUNNING.
pub async fn wait_running(c: &mut Client, app: &App) -> Result<()> {
    let mins =
        std::env::var("CF_STARTUP_TIMEOUT").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(5);
    let deadline = Instant::now() + Duration::from_secs(mins * 60);
    let name = &app.name;
    loop {
        let mut stable = true;
        let procs: Vec<Process> = c.list(&format!("/v3/apps/{}/processes", app.guid)).await?;
        for p in procs {
            let all = stats(c, &p).await?;
            if all.is_empty() || running(&all) > 0 {
                continue;
            }
            if all.iter().all(|s| s.state == InstanceState::Crashed) {
                return Err(CliError::Failed(format!(
                    "Start unsuccessful: all instances of '{name}' crashed.\nTIP: use 'paas logs {name} --recent' for more information"
                )));
            }
            stable = false;
        }
        if stable {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(CliError::Failed(format!(
                "Start app timeout: '{name}' did not start within {mins} minutes.\nTIP: use 'paas logs {name} --recent' for more information"
            )));
        }
        tokio::time::sleep(c.poll).await;
    }
}

/// `POST /v3/apps/:guid/actions/<action>`: the app as it is afterwards.
pub async fn action(c: &mut Client, app: &str, action: &str) -> Result<App> {
    c.post(&format!("/v3/apps/{app}/actions/{action}"), &json!({})).await
}

pub async fn start(c: &mut Client, name: &str) -> Result<()> {
    let a = c.app(name).await?;
    println!("Starting app {} ...\n", bold(name));
    stage_if_unstaged(c, &a).await?;
    let a = action(c, &a.guid, "start").await?;
    wait_running(c, &a).await?;
    summary(c, &a).await
}

pub async fn stop(c: &mut Client, name: &str) -> Result<()> {
    let a = c.app(name).await?;
    println!("Stopping app {} ...", bold(name));
    action(c, &a.guid, "stop").await?;
    println!("OK");
    Ok(())
}

pub async fn restart(c: &mut Client, name: &str, strategy: &crate::deploy::Strategy) -> Result<()> {
    let a = c.app(name).await?;
    println!("Restarting app {} ...\n", bold(name));
    stage_if_unstaged(c, &a).await?;
    if strategy.wanted()? {
        crate::deploy::deploy(c, &a, None, None, strategy).await?;
        let a = c.app(name).await?;
        return summary(c, &a).await;
    }
    let a = action(c, &a.guid, "restart").await?;
    wait_running(c, &a).await?;
    summary(c, &a).await
}

/// As cf v8 before `start` and `restart`: an app without a droplet (pushed with `--no-start`)
/// has its newest READY package staged, with the staging output shown, and the droplet set.
/// Without a package the start goes ahead and the API answers why it cannot.
async fn stage_if_unstaged(c: &mut Client, a: &App) -> Result<()> {
    match c.get::<Droplet>(&format!("/v3/apps/{}/droplets/current", a.guid)).await {
        Ok(_) => return Ok(()),
        Err(CliError::Api { status: 404, .. }) => {}
        Err(e) => return Err(e),
    }
    let path = format!(
        "/v3/apps/{}/packages{}",
        a.guid,
        query(&[("states", "READY"), ("order_by", "-created_at"), ("per_page", "1")])
    );
    let page: Page<Package> = c.get(&path).await?;
    let Some(pkg) = page.resources.into_iter().next() else { return Ok(()) };
    let droplet = crate::staging::stage(c, a, &pkg.guid).await?;
    set_droplet(c, a, &droplet).await
}

/// Make `droplet` the app's current one.
pub async fn set_droplet(c: &mut Client, app: &App, droplet: &str) -> Result<()> {
    let rel = format!("/v3/apps/{}/relationships/current_droplet", app.guid);
    let _: Ignored = c.patch(&rel, &CurrentDroplet::set(droplet)).await?;
    Ok(())
}

pub async fn restage(c: &mut Client, name: &str, strategy: &crate::deploy::Strategy) -> Result<()> {
    let deploying = strategy.wanted()?;
    let a = c.app(name).await?;
    let droplet: Droplet =
        c.get(&format!("/v3/apps/{}/droplets/current", a.guid)).await.map_err(|_| {
            CliError::Failed(format!("App '{name}' has no droplet to restage; push it first."))
        })?;
    let pkg = droplet.package_guid().unwrap_or_default().to_owned();
    println!("Restaging app {} ...\n", bold(name));
    let droplet = crate::staging::stage(c, &a, &pkg).await?;
    if deploying {
        crate::deploy::deploy(c, &a, Some(&droplet), None, strategy).await?;
        let a = c.app(name).await?;
        return summary(c, &a).await;
    }
    set_droplet(c, &a, &droplet).await?;
    let a = action(c, &a.guid, "restart").await?;
    wait_running(c, &a).await?;
    summary(c, &a).await
}

pub async fn scale(
    c: &mut Client,
    name: &str,
    instances: Option<i64>,
    memory: Option<String>,
    disk: Option<String>,
    process: &str,
) -> Result<()> {
    let a = c.app(name).await?;
    let mb = |s: &Option<String>| -> Result<Option<i64>> {
        s.as_deref()
            .map(|s| {
                manifest::parse_size_mb(s)
                    .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
                    .map_err(|e| CliError::Usage(format!("invalid size '{s}': {e}")))
            })
            .transpose()
    };
    let body = ProcessScale {
        instances,
        memory_in_mb: mb(&memory)?,
        disk_in_mb: mb(&disk)?,
        ..Default::default()
    };
    if body.is_empty() {
        let p: Process = c.get(&format!("/v3/apps/{}/processes/{process}", a.guid)).await?;
        println!(
            "{}",
            pairs(&[
                ("memory", format!("{}M", p.memory_in_mb)),
                ("disk", format!("{}M", p.disk_in_mb)),
                ("instances", p.instances.to_string())
            ])
        );
        return Ok(());
    }
    println!("Scaling app {} ...", bold(name));
    let path = format!("/v3/apps/{}/processes/{process}/actions/scale", a.guid);
    let _: Ignored = c.post(&path, &body).await?;
    if a.state == AppState::Started {
        wait_running(c, &a).await?;
    }
    println!("OK");
    Ok(())
}

pub async fn delete(c: &mut Client, name: &str, force: bool, routes: bool) -> Result<()> {
    if !force && !confirm(&format!("Really delete the app {name}?"))? {
        println!("Delete cancelled");
        return Ok(());
    }
    let a = match c.app(name).await {
        Ok(a) => a,
        Err(CliError::NotFound(_)) => {
            println!("App '{name}' does not exist.\nOK");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    println!("Deleting app {} ...", bold(name));
    let g = &a.guid;
    let mapped: Vec<Route> =
        if routes { c.list(&format!("/v3/apps/{g}/routes")).await? } else { vec![] };
    c.delete(&format!("/v3/apps/{g}")).await?;
    for r in mapped {
        c.delete(&format!("/v3/routes/{}", r.guid)).await?;
    }
    println!("OK");
    Ok(())
}

pub async fn env(c: &mut Client, name: &str, json_out: bool) -> Result<()> {
    let a = c.app(name).await?;
    let path = format!("/v3/apps/{}/env", a.guid);
    if json_out {
        let e: Value = c.get(&path).await?;
        print_json(&e);
        return Ok(());
    }
    let e: AppEnv = c.get(&path).await?;
    println!("Getting env variables for app {} ...\n", bold(name));
    let pretty = |m| serde_json::to_string_pretty(m).unwrap_or_default();
    println!("System-Provided:\n{}\n", pretty(&e.system_env_json));
    println!("{}\n", pretty(&e.application_env_json));
    println!("User-Provided:");
    for (k, v) in &e.environment_variables {
        println!("{k}: {}", v.as_str().unwrap_or(""));
    }
    Ok(())
}

pub async fn set_env(c: &mut Client, name: &str, key: &str, value: Option<&str>) -> Result<()> {
    let a = c.app(name).await?;
    match value {
        Some(_) => println!("Setting env variable {} for app {} ...", bold(key), bold(name)),
        None => println!("Removing env variable {} from app {} ...", bold(key), bold(name)),
    }
    let body = EnvironmentVariables {
        var: [(key.to_owned(), value.map(str::to_owned))].into_iter().collect(),
        ..Default::default()
    };
    let _: Ignored = c.patch(&format!("/v3/apps/{}/environment_variables", a.guid), &body).await?;
    println!("OK\nTIP: Use 'paas restage {name}' to ensure your env variable changes take effect.");
    Ok(())
}

pub async fn events(c: &mut Client, name: &str, json_out: bool) -> Result<()> {
    let a = c.app(name).await?;
    let path = format!(
        "/v3/audit_events{}",
        query(&[("target_guids", &a.guid), ("order_by", "-created_at"), ("per_page", "50")])
    );
    if json_out {
        let page: Page<Value> = c.get(&path).await?;
        print_json(&Value::Array(page.resources));
        return Ok(());
    }
    let page: Page<AuditEvent> = c.get(&path).await?;
    println!("Getting events for app {} ...\n", bold(name));
    let rows: Vec<Vec<String>> = page
        .resources
        .iter()
        .map(|e| vec![e.created_at.clone(), e.kind.clone(), e.actor.name.clone(), description(e)])
        .collect();
    println!("{}", table(&["time", "event", "actor", "description"], &rows));
    Ok(())
}

/// The description column of `events`, as cf shows it: a crash's index, reason, cell, instance
/// and exit description; for other events what was asked.
fn description(e: &AuditEvent) -> String {
    if e.kind == "audit.app.process.crash" || e.kind == "app.crash" {
        return ["index", "reason", "cell_id", "instance", "exit_description"]
            .iter()
            .filter_map(|key| {
                let value = match e.data.get(*key)? {
                    Value::String(s) => s.clone(),
                    Value::Null => return None,
                    other => other.to_string(),
                };
                Some(format!("{key}: {value}"))
            })
            .collect::<Vec<_>>()
            .join(", ");
    }
    e.data.get("request").map(|r| r.to_string()).unwrap_or_default()
}

/// `cf create-app APP [--app-type buildpack|docker]`: an app without bits, stopped.
pub async fn create_app(c: &mut Client, name: &str, app_type: Option<&str>) -> Result<()> {
    let space = c.cfg.require_space()?.guid.clone();
    println!("Creating app {} in {}...", bold(name), c.cfg.where_as());
    let body = AppCreate {
        name: name.to_owned(),
        relationships: AppCreateRelationships { space: ToOne::of(&space) },
        lifecycle: app_type.map(|t| Lifecycle { kind: t.to_owned(), ..Default::default() }),
    };
    match c.post::<Ignored>("/v3/apps", &body).await {
        Ok(_) => {}
        Err(CliError::Api { detail, .. }) if detail.contains("already exists") => {
            println!("App '{name}' already exists.");
        }
        Err(e) => return Err(e),
    }
    println!("OK");
    Ok(())
}

/// `cf rename OLD NEW`.
/// `cf create-app-manifest APP [-p PATH]`: the API's manifest of the app, written to PATH
/// (default `./APP_manifest.yml`).
pub async fn create_manifest(
    c: &mut Client,
    name: &str,
    path: Option<&std::path::Path>,
) -> Result<()> {
    let app = c.app(name).await?;
    println!(
        "Creating an app manifest from current settings of app {} in {}...",
        bold(name),
        c.cfg.where_as()
    );
    let res = c
        .send(
            reqwest::Method::GET,
            &format!("/v3/apps/{}/manifest", app.guid),
            crate::client::Body::None,
        )
        .await?;
    let yaml = res.text().await?;
    let default = std::path::PathBuf::from(format!("{name}_manifest.yml"));
    let file = match path {
        Some(p) if p.is_dir() => p.join(format!("{name}_manifest.yml")),
        Some(p) => p.to_owned(),
        None => default,
    };
    std::fs::write(&file, yaml).map_err(|e| {
        CliError::Failed(format!(
            "Cannot write {}: {e}. Choose another path with -p.",
            file.display()
        ))
    })?;
    println!("Manifest file created successfully at {}\n\nOK", file.display());
    Ok(())
}

pub async fn rename(c: &mut Client, old: &str, new: &str) -> Result<()> {
    let a = c.app(old).await?;
    println!("Renaming app {} to {} in {}...", bold(old), bold(new), c.cfg.where_as());
    let _: Ignored =
        c.patch(&format!("/v3/apps/{}", a.guid), &Rename { name: new.to_owned() }).await?;
    println!("OK");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, data: Value) -> AuditEvent {
        serde_json::from_value(json!({"guid": "e", "type": kind, "data": data})).expect("event")
    }

    #[test]
    fn crash_events_are_described_as_cf_does() {
        let crash = event(
            "audit.app.process.crash",
            json!({"index": 0, "reason": "CRASHED", "cell_id": "cell-1", "instance": "i-1",
                "exit_description": "APP/PROC/WEB: Exited with status 1", "crash_count": 1}),
        );
        assert_eq!(
            description(&crash),
            "index: 0, reason: CRASHED, cell_id: cell-1, instance: i-1, \
             exit_description: APP/PROC/WEB: Exited with status 1"
        );
        let unplaced = event("audit.app.process.crash", json!({"index": 2, "reason": "CRASHED"}));
        assert_eq!(description(&unplaced), "index: 2, reason: CRASHED");
        let update = event("audit.app.update", json!({"request": {"name": "b"}}));
        assert_eq!(description(&update), r#"{"name":"b"}"#);
    }
}
