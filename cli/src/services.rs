//! User-provided services: `services`, `create-user-provided-service` (`cups`),
//! `update-user-provided-service` (`uups`), `delete-service`, `bind-service`,
//! `unbind-service`.

use serde_json::{json, Value};

use crate::apps::guid;
use crate::client::{query, Client, Result};
use crate::error::CliError;
use crate::output::{bold, print_json, table};

/// The service instance of this name in the targeted space.
async fn find(c: &mut Client, name: &str) -> Result<Option<Value>> {
    let space = c.cfg.require_space()?.guid.clone();
    let list = c
        .list(&format!(
            "/v3/service_instances{}",
            query(&[("names", name), ("space_guids", &space)])
        ))
        .await?;
    Ok(list.into_iter().next())
}

pub async fn require(c: &mut Client, name: &str) -> Result<Value> {
    find(c, name).await?.ok_or_else(|| {
        CliError::NotFound(format!("Service instance '{name}' not found. See 'paas services'."))
    })
}

/// `-p` as CF takes it: a JSON object, a file holding one, or a comma-separated list of
/// field names (prompting is not offered: give the values as JSON).
fn credentials(p: &str) -> Result<Value> {
    let text = match std::fs::read_to_string(p) {
        Ok(t) => t,
        Err(_) => p.to_owned(),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err(CliError::Usage(format!(
            "-p takes credentials as a JSON object or a file holding one, e.g. -p '{{\"uri\":\"postgres://...\"}}' (got '{p}')"
        ))),
    }
}

fn tags(t: &str) -> Vec<String> {
    t.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

pub struct UpsArgs {
    pub name: String,
    pub credentials: Option<String>,
    pub syslog_drain_url: Option<String>,
    pub route_service_url: Option<String>,
    pub tags: Option<String>,
}

fn body(a: &UpsArgs) -> Result<Value> {
    let mut b = json!({});
    if let Some(p) = &a.credentials {
        b["credentials"] = credentials(p)?;
    }
    if let Some(l) = &a.syslog_drain_url {
        b["syslog_drain_url"] = json!(l);
    }
    if let Some(r) = &a.route_service_url {
        b["route_service_url"] = json!(r);
    }
    if let Some(t) = &a.tags {
        b["tags"] = json!(tags(t));
    }
    Ok(b)
}

pub async fn create(c: &mut Client, a: UpsArgs) -> Result<()> {
    let space = c.cfg.require_space()?.clone();
    let mut b = body(&a)?;
    b["type"] = json!("user-provided");
    b["name"] = json!(a.name);
    b["relationships"] = json!({"space": {"data": {"guid": space.guid}}});
    println!("Creating user provided service {} in space {} ...", bold(&a.name), bold(&space.name));
    c.post("/v3/service_instances", b).await?;
    println!("OK");
    Ok(())
}

pub async fn update(c: &mut Client, a: UpsArgs) -> Result<()> {
    let si = require(c, &a.name).await?;
    let b = body(&a)?;
    if b.as_object().is_some_and(serde_json::Map::is_empty) {
        return Err(CliError::Usage("nothing to update: give -p, -l, -r or -t".into()));
    }
    println!("Updating user provided service {} ...", bold(&a.name));
    c.patch(&format!("/v3/service_instances/{}", guid(&si)), b).await?;
    println!("OK");
    if a.credentials.is_some() {
        println!(
            "TIP: Use 'paas restage' for bound apps to see the new credentials in VCAP_SERVICES."
        );
    }
    Ok(())
}

pub async fn delete(c: &mut Client, name: &str, force: bool) -> Result<()> {
    if !force && !crate::apps::confirm(&format!("Really delete the service {name}?"))? {
        println!("Delete cancelled");
        return Ok(());
    }
    println!("Deleting service {} ...", bold(name));
    match find(c, name).await? {
        Some(si) => c.delete(&format!("/v3/service_instances/{}", guid(&si))).await?,
        None => println!("Service {name} does not exist."),
    }
    println!("OK");
    Ok(())
}

pub async fn services(c: &mut Client, json_out: bool) -> Result<()> {
    let space = c.cfg.require_space()?.clone();
    let list = c
        .list(&format!(
            "/v3/service_instances{}",
            query(&[("space_guids", &space.guid), ("order_by", "name")])
        ))
        .await?;
    if json_out {
        print_json(&Value::Array(list));
        return Ok(());
    }
    println!("Getting service instances in space {} ...\n", space.name);
    // One request for every binding of the space, with the bound apps included.
    let (bindings, apps) = if list.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let guids: Vec<String> = list.iter().map(guid).collect();
        let page = c
            .get(&format!(
                "/v3/service_credential_bindings{}",
                query(&[
                    ("service_instance_guids", &guids.join(",")),
                    ("include", "app"),
                    ("per_page", "5000"),
                ])
            ))
            .await?;
        let arr = |v: &Value| v.as_array().cloned().unwrap_or_default();
        (arr(&page["resources"]), arr(&page["included"]["apps"]))
    };
    let app_name = |g: &str| {
        apps.iter()
            .find(|a| a["guid"] == g)
            .and_then(|a| a["name"].as_str())
            .unwrap_or(g)
            .to_owned()
    };
    let mut rows = Vec::new();
    for si in &list {
        let bound: Vec<String> = bindings
            .iter()
            .filter(|b| b["relationships"]["service_instance"]["data"]["guid"] == guid(si).as_str())
            .filter_map(|b| b["relationships"]["app"]["data"]["guid"].as_str())
            .map(app_name)
            .collect();
        rows.push(vec![
            si["name"].as_str().unwrap_or("").to_owned(),
            "user-provided".into(),
            bound.join(", "),
            si["syslog_drain_url"].as_str().unwrap_or("").to_owned(),
        ]);
    }
    if rows.is_empty() {
        println!("No service instances found.");
    } else {
        println!("{}", table(&["name", "offering", "bound apps", "syslog drain"], &rows));
    }
    Ok(())
}

pub async fn bind(
    c: &mut Client,
    app: &str,
    service: &str,
    binding_name: Option<&str>,
) -> Result<()> {
    let a = crate::apps::find(c, app).await?;
    let si = require(c, service).await?;
    println!("Binding service instance {} to app {} ...", bold(service), bold(app));
    let mut b = json!({"type": "app", "relationships": {
        "app": {"data": {"guid": guid(&a)}},
        "service_instance": {"data": {"guid": guid(&si)}},
    }});
    if let Some(n) = binding_name {
        b["name"] = json!(n);
    }
    match c.post("/v3/service_credential_bindings", b).await {
        Ok(_) => {}
        Err(CliError::Api { detail, .. }) if detail.contains("already bound") => {
            println!("App {app} is already bound to service instance {service}.");
        }
        Err(e) => return Err(e),
    }
    println!("OK");
    println!("TIP: Use 'paas restage {app}' to ensure your env variable changes take effect (syslog drains apply without it).");
    Ok(())
}

pub async fn unbind(c: &mut Client, app: &str, service: &str) -> Result<()> {
    let a = crate::apps::find(c, app).await?;
    let si = require(c, service).await?;
    println!("Unbinding app {} from service {} ...", bold(app), bold(service));
    let list = c
        .list(&format!(
            "/v3/service_credential_bindings{}",
            query(&[("app_guids", &guid(&a)), ("service_instance_guids", &guid(&si))])
        ))
        .await?;
    match list.first() {
        Some(b) => c.delete(&format!("/v3/service_credential_bindings/{}", guid(b))).await?,
        None => println!("Binding between {service} and {app} did not exist"),
    }
    println!("OK");
    Ok(())
}
