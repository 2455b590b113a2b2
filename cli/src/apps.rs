//! App commands: `apps`, `app`, `start`, `stop`, `restart`, `restage`, `scale`, `delete`,
//! `env`, `set-env`, `unset-env`, `events`, and the summary `push` ends with.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::client::{query, Client, Result};
use crate::error::CliError;
use crate::output::{bad, bold, bytes, ok, pairs, print_json, table};

/// The app of this name in the targeted space.
pub async fn find(c: &mut Client, name: &str) -> Result<Value> {
    let space = c.cfg.require_space()?.guid.clone();
    let list =
        c.list(&format!("/v3/apps{}", query(&[("names", name), ("space_guids", &space)]))).await?;
    list.into_iter().next().ok_or_else(|| CliError::NotFound(format!("App '{name}' not found.")))
}

pub fn guid(v: &Value) -> String {
    v["guid"].as_str().unwrap_or_default().to_owned()
}

pub async fn apps(c: &mut Client, json_out: bool) -> Result<()> {
    let space = c.cfg.require_space()?.clone();
    let list = c
        .list(&format!("/v3/apps{}", query(&[("space_guids", &space.guid), ("order_by", "name")])))
        .await?;
    if json_out {
        print_json(&Value::Array(list));
        return Ok(());
    }
    println!(
        "Getting apps in org {} / space {}...\n",
        c.cfg.org.as_ref().map(|o| o.name.clone()).unwrap_or_default(),
        space.name
    );
    let mut rows = Vec::new();
    for a in &list {
        let g = guid(a);
        let procs = c.list(&format!("/v3/apps/{g}/processes")).await?;
        let mut parts = Vec::new();
        for p in &procs {
            let stats = c.get(&format!("/v3/processes/{}/stats", guid(p))).await?;
            let all = stats["resources"].as_array().cloned().unwrap_or_default();
            let running = all.iter().filter(|s| s["state"] == "RUNNING").count();
            parts.push(format!("{}:{running}/{}", p["type"].as_str().unwrap_or(""), all.len()));
        }
        let routes = c.list(&format!("/v3/apps/{g}/routes")).await?;
        let urls: Vec<&str> = routes.iter().filter_map(|r| r["url"].as_str()).collect();
        rows.push(vec![
            a["name"].as_str().unwrap_or("").to_owned(),
            a["state"].as_str().unwrap_or("").to_lowercase(),
            parts.join(", "),
            urls.join(", "),
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

/// The app summary (`paas app`, end of `paas push`).
pub async fn summary(c: &mut Client, app: &Value) -> Result<()> {
    let g = guid(app);
    let routes = c.list(&format!("/v3/apps/{g}/routes")).await?;
    let urls: Vec<&str> = routes.iter().filter_map(|r| r["url"].as_str()).collect();
    let droplet = c.get(&format!("/v3/apps/{g}/droplets/current")).await.ok();
    let bps: Vec<String> = droplet
        .as_ref()
        .and_then(|d| d["buildpacks"].as_array())
        .map(|b| b.iter().filter_map(|x| x["name"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    println!(
        "{}\n",
        pairs(&[
            ("name", app["name"].as_str().unwrap_or("").to_owned()),
            ("requested state", app["state"].as_str().unwrap_or("").to_lowercase()),
            ("routes", urls.join(", ")),
            (
                "last uploaded",
                droplet.as_ref().and_then(|d| d["created_at"].as_str()).unwrap_or("").to_owned()
            ),
            ("stack", droplet.as_ref().and_then(|d| d["stack"].as_str()).unwrap_or("").to_owned()),
            ("buildpacks", bps.join(", ")),
        ])
    );
    for p in c.list(&format!("/v3/apps/{g}/processes")).await? {
        let stats = c.get(&format!("/v3/processes/{}/stats", guid(&p))).await?;
        let all = stats["resources"].as_array().cloned().unwrap_or_default();
        let running = all.iter().filter(|s| s["state"] == "RUNNING").count();
        println!(
            "{}",
            pairs(&[
                ("type", p["type"].as_str().unwrap_or("").to_owned()),
                ("instances", format!("{running}/{}", all.len())),
                ("memory usage", format!("{}M", p["memory_in_mb"])),
            ])
        );
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|s| {
                let st = s["state"].as_str().unwrap_or("").to_lowercase();
                let state = if st == "running" {
                    ok(&st)
                } else if st == "crashed" {
                    bad(&st)
                } else {
                    st
                };
                let u = &s["usage"];
                let quota = |k: &str| s[k].as_u64().map(bytes).unwrap_or_default();
                vec![
                    format!("#{}", s["index"]),
                    state,
                    since(s["uptime"].as_i64().unwrap_or(0)),
                    u["cpu"]
                        .as_f64()
                        .map(|c| format!("{:.1}%", c * 100.0))
                        .unwrap_or_else(|| "0.0%".into()),
                    format!(
                        "{} of {}",
                        u["mem"].as_u64().map(bytes).unwrap_or_else(|| "0".into()),
                        quota("mem_quota")
                    ),
                    format!(
                        "{} of {}",
                        u["disk"].as_u64().map(bytes).unwrap_or_else(|| "0".into()),
                        quota("disk_quota")
                    ),
                    s["details"].as_str().unwrap_or("").to_owned(),
                ]
            })
            .collect();
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

pub async fn app(c: &mut Client, name: &str, json_out: bool, guid_only: bool) -> Result<()> {
    let a = find(c, name).await?;
    if guid_only {
        println!("{}", guid(&a));
        return Ok(());
    }
    if json_out {
        let g = guid(&a);
        let mut procs = Vec::new();
        for p in c.list(&format!("/v3/apps/{g}/processes")).await? {
            let stats = c.get(&format!("/v3/processes/{}/stats", guid(&p))).await?;
            procs.push(json!({"process": p, "stats": stats["resources"]}));
        }
        print_json(
            &json!({"app": a, "processes": procs, "routes": c.list(&format!("/v3/apps/{g}/routes")).await?}),
        );
        return Ok(());
    }
    println!("Showing health and status for app {} ...\n", bold(name));
    summary(c, &a).await
}

/// Wait until every process has 0 instances or at least one RUNNING.
pub async fn wait_running(c: &mut Client, app: &Value) -> Result<()> {
    let mins =
        std::env::var("CF_STARTUP_TIMEOUT").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(5);
    let deadline = Instant::now() + Duration::from_secs(mins * 60);
    let g = guid(app);
    let name = app["name"].as_str().unwrap_or("").to_owned();
    loop {
        let mut stable = true;
        for p in c.list(&format!("/v3/apps/{g}/processes")).await? {
            let stats = c.get(&format!("/v3/processes/{}/stats", guid(&p))).await?;
            let all = stats["resources"].as_array().cloned().unwrap_or_default();
            if all.is_empty() || all.iter().any(|s| s["state"] == "RUNNING") {
                continue;
            }
            if all.iter().all(|s| s["state"] == "CRASHED") {
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

pub async fn start(c: &mut Client, name: &str) -> Result<()> {
    let a = find(c, name).await?;
    println!("Starting app {} ...\n", bold(name));
    let a = c.post(&format!("/v3/apps/{}/actions/start", guid(&a)), json!({})).await?;
    wait_running(c, &a).await?;
    summary(c, &a).await
}

pub async fn stop(c: &mut Client, name: &str) -> Result<()> {
    let a = find(c, name).await?;
    println!("Stopping app {} ...", bold(name));
    c.post(&format!("/v3/apps/{}/actions/stop", guid(&a)), json!({})).await?;
    println!("OK");
    Ok(())
}

pub async fn restart(c: &mut Client, name: &str) -> Result<()> {
    let a = find(c, name).await?;
    println!("Restarting app {} ...\n", bold(name));
    let a = c.post(&format!("/v3/apps/{}/actions/restart", guid(&a)), json!({})).await?;
    wait_running(c, &a).await?;
    summary(c, &a).await
}

pub async fn restage(c: &mut Client, name: &str) -> Result<()> {
    let a = find(c, name).await?;
    let g = guid(&a);
    let droplet = c.get(&format!("/v3/apps/{g}/droplets/current")).await.map_err(|_| {
        CliError::Failed(format!("App '{name}' has no droplet to restage; push it first."))
    })?;
    let pkg = droplet["links"]["package"]["href"]
        .as_str()
        .and_then(|h| h.rsplit('/').next())
        .unwrap_or("")
        .to_owned();
    println!("Restaging app {} ...\n", bold(name));
    let droplet = crate::push::stage(c, &a, &pkg).await?;
    c.patch(
        &format!("/v3/apps/{g}/relationships/current_droplet"),
        json!({"data": {"guid": droplet}}),
    )
    .await?;
    let a = c.post(&format!("/v3/apps/{g}/actions/restart"), json!({})).await?;
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
    let a = find(c, name).await?;
    let mut body = json!({});
    if let Some(i) = instances {
        body["instances"] = json!(i);
    }
    let mb = |s: &str| {
        manifest::parse_size_mb(s).map_err(|e| CliError::Usage(format!("invalid size '{s}': {e}")))
    };
    if let Some(m) = &memory {
        body["memory_in_mb"] = json!(mb(m)?);
    }
    if let Some(d) = &disk {
        body["disk_in_mb"] = json!(mb(d)?);
    }
    if body.as_object().is_some_and(|o| o.is_empty()) {
        let p = c.get(&format!("/v3/apps/{}/processes/{process}", guid(&a))).await?;
        println!(
            "{}",
            pairs(&[
                ("memory", format!("{}M", p["memory_in_mb"])),
                ("disk", format!("{}M", p["disk_in_mb"])),
                ("instances", p["instances"].to_string())
            ])
        );
        return Ok(());
    }
    println!("Scaling app {} ...", bold(name));
    c.post(&format!("/v3/apps/{}/processes/{process}/actions/scale", guid(&a)), body).await?;
    if a["state"] == "STARTED" {
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
    let a = match find(c, name).await {
        Ok(a) => a,
        Err(CliError::NotFound(_)) => {
            println!("App '{name}' does not exist.\nOK");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    println!("Deleting app {} ...", bold(name));
    let g = guid(&a);
    let mapped = if routes { c.list(&format!("/v3/apps/{g}/routes")).await? } else { vec![] };
    c.delete(&format!("/v3/apps/{g}")).await?;
    for r in mapped {
        c.delete(&format!("/v3/routes/{}", guid(&r))).await?;
    }
    println!("OK");
    Ok(())
}

pub fn confirm(question: &str) -> Result<bool> {
    use std::io::Write as _;
    print!("{question} [yN]: ");
    let _ = std::io::stdout().flush();
    let mut s = String::new();
    std::io::stdin().read_line(&mut s).map_err(|e| CliError::Other(e.to_string()))?;
    Ok(matches!(s.trim(), "y" | "Y" | "yes"))
}

pub async fn env(c: &mut Client, name: &str, json_out: bool) -> Result<()> {
    let a = find(c, name).await?;
    let e = c.get(&format!("/v3/apps/{}/env", guid(&a))).await?;
    if json_out {
        print_json(&e);
        return Ok(());
    }
    println!("Getting env variables for app {} ...\n", bold(name));
    println!(
        "System-Provided:\n{}\n",
        serde_json::to_string_pretty(&e["system_env_json"]).unwrap_or_default()
    );
    println!("{}\n", serde_json::to_string_pretty(&e["application_env_json"]).unwrap_or_default());
    println!("User-Provided:");
    if let Some(vars) = e["environment_variables"].as_object() {
        for (k, v) in vars {
            println!("{k}: {}", v.as_str().unwrap_or(""));
        }
    }
    Ok(())
}

pub async fn set_env(c: &mut Client, name: &str, key: &str, value: Option<&str>) -> Result<()> {
    let a = find(c, name).await?;
    match value {
        Some(_) => println!("Setting env variable {} for app {} ...", bold(key), bold(name)),
        None => println!("Removing env variable {} from app {} ...", bold(key), bold(name)),
    }
    c.patch(&format!("/v3/apps/{}/environment_variables", guid(&a)), json!({"var": {key: value}}))
        .await?;
    println!("OK\nTIP: Use 'paas restage {name}' to ensure your env variable changes take effect.");
    Ok(())
}

pub async fn events(c: &mut Client, name: &str, json_out: bool) -> Result<()> {
    let a = find(c, name).await?;
    let list = c
        .get(&format!(
            "/v3/audit_events{}",
            query(&[("target_guids", &guid(&a)), ("order_by", "-created_at"), ("per_page", "50")])
        ))
        .await?;
    let list = list["resources"].as_array().cloned().unwrap_or_default();
    if json_out {
        print_json(&Value::Array(list));
        return Ok(());
    }
    println!("Getting events for app {} ...\n", bold(name));
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|e| {
            vec![
                e["created_at"].as_str().unwrap_or("").to_owned(),
                e["type"].as_str().unwrap_or("").to_owned(),
                e["actor"]["name"].as_str().unwrap_or("").to_owned(),
                e["data"].get("request").map(|r| r.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    println!("{}", table(&["time", "event", "actor", "description"], &rows));
    Ok(())
}
