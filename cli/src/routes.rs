//! `routes` (with the route service bound to each), `create-route`, `map-route`,
//! `unmap-route`, `delete-route`, `domains`, `create-private-domain`.

use serde_json::{json, Value};

use crate::apps::guid;
use crate::client::{query, Client, Result};
use crate::error::CliError;
use crate::output::{bold, print_json, table};

async fn domain(c: &mut Client, name: &str) -> Result<Value> {
    c.list(&format!("/v3/domains{}", query(&[("names", name)])))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            CliError::NotFound(format!("Domain '{name}' not found. See 'paas domains'."))
        })
}

pub async fn find_route(
    c: &mut Client,
    domain_name: &str,
    host: &str,
    path: &str,
) -> Result<Option<Value>> {
    let d = domain(c, domain_name).await?;
    let list = c
        .list(&format!(
            "/v3/routes{}",
            query(&[("domain_guids", &guid(&d)), ("hosts", host), ("paths", path)])
        ))
        .await?;
    Ok(list.into_iter().next())
}

pub fn url(host: &str, domain: &str, path: &str) -> String {
    if host.is_empty() {
        format!("{domain}{path}")
    } else {
        format!("{host}.{domain}{path}")
    }
}

pub async fn routes(c: &mut Client, json_out: bool) -> Result<()> {
    let space = c.cfg.require_space()?.clone();
    let list = c.list(&format!("/v3/routes{}", query(&[("space_guids", &space.guid)]))).await?;
    if json_out {
        print_json(&Value::Array(list));
        return Ok(());
    }
    println!("Getting routes in space {} ...\n", space.name);
    let services = crate::route_services::bound_instances(c, &list).await?;
    let mut rows = Vec::new();
    for r in &list {
        let mut apps = Vec::new();
        for d in r["destinations"].as_array().cloned().unwrap_or_default() {
            if let Some(g) = d["app"]["guid"].as_str() {
                if let Ok(a) = c.get(&format!("/v3/apps/{g}")).await {
                    apps.push(a["name"].as_str().unwrap_or("").to_owned());
                }
            }
        }
        rows.push(vec![
            space.name.clone(),
            r["url"].as_str().unwrap_or("").to_owned(),
            apps.join(", "),
            services.get(&guid(r)).cloned().unwrap_or_default(),
        ]);
    }
    if rows.is_empty() {
        println!("No routes found.");
    } else {
        println!("{}", table(&["space", "route", "apps", "service instance"], &rows));
    }
    Ok(())
}

pub async fn create_route(
    c: &mut Client,
    domain_name: &str,
    host: &str,
    path: &str,
) -> Result<Value> {
    let space = c.cfg.require_space()?.clone();
    let d = domain(c, domain_name).await?;
    println!("Creating route {} ...", bold(&url(host, domain_name, path)));
    let body = json!({"host": host, "path": path, "relationships": {"space": {"data": {"guid": space.guid}}, "domain": {"data": {"guid": guid(&d)}}}});
    match c.post("/v3/routes", body).await {
        Ok(r) => {
            println!("OK");
            Ok(r)
        }
        Err(CliError::Api { detail, .. }) if detail.contains("already exists") => {
            println!("Route {} already exists.\nOK", url(host, domain_name, path));
            find_route(c, domain_name, host, path).await?.ok_or(CliError::Failed(detail))
        }
        Err(e) => Err(e),
    }
}

pub async fn map_route(
    c: &mut Client,
    app: &str,
    domain_name: &str,
    host: &str,
    path: &str,
    protocol: Option<&str>,
) -> Result<()> {
    let a = crate::apps::find(c, app).await?;
    let r = match find_route(c, domain_name, host, path).await? {
        Some(r) => r,
        None => create_route(c, domain_name, host, path).await?,
    };
    println!("Mapping route {} to app {} ...", bold(&url(host, domain_name, path)), bold(app));
    let mut destination = json!({"app": {"guid": guid(&a)}});
    if let Some(p) = protocol {
        destination["protocol"] = json!(p);
    }
    c.post(
        &format!("/v3/routes/{}/destinations", guid(&r)),
        json!({"destinations": [destination]}),
    )
    .await?;
    println!("OK");
    Ok(())
}

pub async fn unmap_route(
    c: &mut Client,
    app: &str,
    domain_name: &str,
    host: &str,
    path: &str,
) -> Result<()> {
    let a = crate::apps::find(c, app).await?;
    let r = find_route(c, domain_name, host, path).await?.ok_or_else(|| {
        CliError::NotFound(format!("Route {} not found.", url(host, domain_name, path)))
    })?;
    println!("Removing route {} from app {} ...", bold(&url(host, domain_name, path)), bold(app));
    for d in r["destinations"].as_array().cloned().unwrap_or_default() {
        if d["app"]["guid"].as_str() == Some(guid(&a).as_str()) {
            c.delete(&format!("/v3/routes/{}/destinations/{}", guid(&r), guid(&d))).await?;
        }
    }
    println!("OK");
    Ok(())
}

pub async fn delete_route(
    c: &mut Client,
    domain_name: &str,
    host: &str,
    path: &str,
    force: bool,
) -> Result<()> {
    let u = url(host, domain_name, path);
    if !force && !crate::apps::confirm(&format!("Really delete the route {u}?"))? {
        println!("Delete cancelled");
        return Ok(());
    }
    println!("Deleting route {} ...", bold(&u));
    match find_route(c, domain_name, host, path).await? {
        Some(r) => c.delete(&format!("/v3/routes/{}", guid(&r))).await?,
        None => println!("Unable to delete. Route {u} does not exist."),
    }
    println!("OK");
    Ok(())
}

pub async fn domains(c: &mut Client, json_out: bool) -> Result<()> {
    let org = c.cfg.require_org()?.clone();
    let list = c.list(&format!("/v3/organizations/{}/domains", org.guid)).await?;
    if json_out {
        print_json(&Value::Array(list));
        return Ok(());
    }
    println!("Getting domains in org {} ...\n", org.name);
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|d| {
            let shared = d["relationships"]["organization"]["data"].is_null();
            vec![
                d["name"].as_str().unwrap_or("").to_owned(),
                if shared { "shared".into() } else { "private".into() },
                if d["internal"] == true { "true".into() } else { String::new() },
            ]
        })
        .collect();
    println!("{}", table(&["name", "availability", "internal"], &rows));
    Ok(())
}

pub async fn create_private_domain(c: &mut Client, org: &str, name: &str) -> Result<()> {
    let o = crate::admin::org(c, org).await?;
    println!("Creating private domain {} for org {} ...", bold(name), bold(org));
    c.post(
        "/v3/domains",
        json!({"name": name, "relationships": {"organization": {"data": {"guid": guid(&o)}}}}),
    )
    .await?;
    println!("OK");
    Ok(())
}
