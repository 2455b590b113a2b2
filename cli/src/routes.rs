//! `routes` (with the route service bound to each), `route`, `check-route`, `create-route`,
//! `map-route`, `unmap-route`, `delete-route`, `domains`, `create-private-domain`,
//! `create-shared-domain`, `delete-private-domain`, `delete-shared-domain`.

use serde_json::Value;
use wire::v3::domain::{DomainCreate, DomainCreateRelationships};
use wire::v3::route::{Destinations, NewDestination, RouteCreate, RouteRelationships};
use wire::v3::{App, Domain, Guid, Route, RouteReservation, ToOne};

use crate::client::{query, Client, Ignored, Result};
use crate::error::CliError;
use crate::lookup::route_url as url;
use crate::output::{bold, confirm, pairs, print_json, table};

pub async fn routes(c: &mut Client, json_out: bool) -> Result<()> {
    let space = c.cfg.require_space()?.clone();
    let path = format!("/v3/routes{}", query(&[("space_guids", &space.guid)]));
    if json_out {
        let list: Vec<Value> = c.list(&path).await?;
        print_json(&Value::Array(list));
        return Ok(());
    }
    let list: Vec<Route> = c.list(&path).await?;
    println!("Getting routes in space {} ...\n", space.name);
    let services = crate::route_services::bound_instances(c, &list).await?;
    let mut rows = Vec::new();
    for r in &list {
        let mut apps = Vec::new();
        for d in &r.destinations {
            if let Ok(a) = c.get::<App>(&format!("/v3/apps/{}", d.app.guid)).await {
                apps.push(a.name);
            }
        }
        rows.push(vec![
            space.name.clone(),
            r.url.clone(),
            apps.join(", "),
            services.get(&r.guid).cloned().unwrap_or_default(),
        ]);
    }
    if rows.is_empty() {
        println!("No routes found.");
    } else {
        println!("{}", table(&["space", "route", "apps", "service instance"], &rows));
    }
    Ok(())
}

/// `--option KEY=VALUE` flags as route options.
pub fn parse_options(given: &[String]) -> Result<serde_json::Map<String, Value>> {
    given
        .iter()
        .map(|o| match o.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_owned(), Value::String(v.trim().to_owned())))
            }
            _ => Err(CliError::Usage(format!(
                "Option '{o}' is not KEY=VALUE; for example --option loadbalancing=least-connection"
            ))),
        })
        .collect()
}

pub async fn create_route(
    c: &mut Client,
    domain_name: &str,
    host: &str,
    path: &str,
    options: serde_json::Map<String, Value>,
) -> Result<Route> {
    let space = c.cfg.require_space()?.clone();
    let d = c.domain(domain_name).await?;
    println!("Creating route {} ...", bold(&url(host, domain_name, path)));
    let body = RouteCreate {
        host: host.to_owned(),
        path: path.to_owned(),
        options,
        relationships: RouteRelationships {
            space: ToOne::of(&space.guid),
            domain: ToOne::of(&d.guid),
        },
    };
    match c.post("/v3/routes", &body).await {
        Ok(r) => {
            println!("OK");
            Ok(r)
        }
        Err(CliError::Api { detail, .. }) if detail.contains("already exists") => {
            println!("Route {} already exists.\nOK", url(host, domain_name, path));
            c.route(domain_name, host, path).await?.ok_or(CliError::Failed(detail))
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
    let a = c.app(app).await?;
    let r = match c.route(domain_name, host, path).await? {
        Some(r) => r,
        None => create_route(c, domain_name, host, path, serde_json::Map::new()).await?,
    };
    println!("Mapping route {} to app {} ...", bold(&url(host, domain_name, path)), bold(app));
    let destination = NewDestination {
        app: Guid::new(a.guid),
        protocol: protocol.map(str::to_owned),
        ..Default::default()
    };
    let body = Destinations { destinations: vec![destination] };
    let _: Ignored = c.post(&format!("/v3/routes/{}/destinations", r.guid), &body).await?;
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
    let a = c.app(app).await?;
    let r = c.route(domain_name, host, path).await?.ok_or_else(|| {
        CliError::NotFound(format!("Route {} not found.", url(host, domain_name, path)))
    })?;
    println!("Removing route {} from app {} ...", bold(&url(host, domain_name, path)), bold(app));
    for d in r.destinations.iter().filter(|d| d.app.guid == a.guid) {
        c.delete(&format!("/v3/routes/{}/destinations/{}", r.guid, d.guid)).await?;
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
    if !force && !confirm(&format!("Really delete the route {u}?"))? {
        println!("Delete cancelled");
        return Ok(());
    }
    println!("Deleting route {} ...", bold(&u));
    match c.route(domain_name, host, path).await? {
        Some(r) => c.delete(&format!("/v3/routes/{}", r.guid)).await?,
        None => println!("Unable to delete. Route {u} does not exist."),
    }
    println!("OK");
    Ok(())
}

/// `cf delete-orphaned-routes [-f]`: the targeted space's routes mapped to no app.
pub async fn delete_orphaned(c: &mut Client, force: bool) -> Result<()> {
    let space = c.cfg.require_space()?.clone();
    if !force && !confirm("Really delete orphaned routes?")? {
        println!("Routes have not been deleted.");
        return Ok(());
    }
    println!("Deleting orphaned routes as {}...", c.cfg.user().unwrap_or_default());
    c.delete(&format!("/v3/spaces/{}/routes?unmapped=true", space.guid)).await?;
    println!("OK");
    Ok(())
}

pub async fn domains(c: &mut Client, json_out: bool) -> Result<()> {
    let org = c.cfg.require_org()?.clone();
    let path = format!("/v3/organizations/{}/domains", org.guid);
    if json_out {
        let list: Vec<Value> = c.list(&path).await?;
        print_json(&Value::Array(list));
        return Ok(());
    }
    let list: Vec<Domain> = c.list(&path).await?;
    println!("Getting domains in org {} ...\n", org.name);
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                if d.is_shared() { "shared".into() } else { "private".into() },
                if d.internal { "true".into() } else { String::new() },
            ]
        })
        .collect();
    println!("{}", table(&["name", "availability", "internal"], &rows));
    Ok(())
}

pub async fn create_private_domain(c: &mut Client, org: &str, name: &str) -> Result<()> {
    let o = c.org(org).await?;
    println!("Creating private domain {} for org {} ...", bold(name), bold(org));
    let body = DomainCreate {
        name: name.to_owned(),
        internal: None,
        relationships: DomainCreateRelationships { organization: ToOne::of(&o.guid) },
    };
    let _: Ignored = c.post("/v3/domains", &body).await?;
    println!("OK");
    Ok(())
}

/// `cf route DOMAIN [--hostname H] [--path P]`: the route and where it sends requests.
pub async fn route(c: &mut Client, domain_name: &str, host: &str, path: &str) -> Result<()> {
    c.cfg.require_space()?;
    let shown = url(host, domain_name, path);
    let r = c.route(domain_name, host, path).await?.ok_or_else(|| {
        CliError::NotFound(format!("Route {shown} not found. See 'paas routes'."))
    })?;
    println!("Showing route {} in {} ...\n", bold(&shown), c.cfg.where_as());
    println!(
        "{}\n",
        pairs(&[
            ("domain", domain_name.to_owned()),
            ("host", r.host.clone()),
            ("port", r.port.map(|p| p.to_string()).unwrap_or_default()),
            ("path", r.path.clone()),
            ("protocol", r.protocol.clone()),
            (
                "options",
                r.options
                    .loadbalancing
                    .as_ref()
                    .map(|lb| format!("loadbalancing={lb}"))
                    .unwrap_or_default(),
            ),
        ])
    );
    println!("Destinations:");
    let mut rows = Vec::new();
    for d in &r.destinations {
        let app = c.get::<App>(&format!("/v3/apps/{}", d.app.guid)).await.map(|a| a.name);
        rows.push(vec![
            app.unwrap_or_else(|_| d.app.guid.clone()),
            d.app.process.as_ref().map(|p| p.kind.clone()).unwrap_or_else(|| "web".into()),
            d.port.map(|p| p.to_string()).unwrap_or_default(),
            d.protocol.clone().unwrap_or_default(),
        ]);
    }
    for line in table(&["app", "process", "port", "protocol"], &rows).lines() {
        println!("\t{line}");
    }
    Ok(())
}

/// `cf update-route DOMAIN [--hostname H] [--path P] [--option KEY=VALUE]...
/// [--remove-option KEY]...`: sets and removes route options (`loadbalancing`).
pub async fn update_route(
    c: &mut Client,
    domain_name: &str,
    host: &str,
    path: &str,
    set: &[String],
    remove: &[String],
) -> Result<()> {
    c.cfg.require_space()?;
    let mut options = parse_options(set)?;
    if options.is_empty() && remove.is_empty() {
        return Err(CliError::Usage(
            "Give --option KEY=VALUE or --remove-option KEY (e.g. --option loadbalancing=least-connection)."
                .into(),
        ));
    }
    let shown = url(host, domain_name, path);
    let r = c.route(domain_name, host, path).await?.ok_or_else(|| {
        CliError::NotFound(format!("Route {shown} not found. See 'paas routes'."))
    })?;
    println!("Updating route {} in {}...", bold(&shown), c.cfg.where_as());
    for (k, v) in &options {
        println!("Setting route option {k} for {shown} to {}.", v.as_str().unwrap_or_default());
    }
    for k in remove {
        println!("Removing route option {k} for {shown}.");
        options.insert(k.clone(), Value::Null);
    }
    let _: Route = c
        .patch(&format!("/v3/routes/{}", r.guid), &serde_json::json!({"options": options}))
        .await?;
    println!("OK");
    Ok(())
}

/// `cf update-destination APP DOMAIN [--hostname H] [--path P] --app-protocol http1|http2`.
pub async fn update_destination(
    c: &mut Client,
    app: &str,
    domain_name: &str,
    host: &str,
    path: &str,
    protocol: &str,
) -> Result<()> {
    let a = c.app(app).await?;
    let shown = url(host, domain_name, path);
    let r = c.route(domain_name, host, path).await?.ok_or_else(|| {
        CliError::NotFound(format!("Route {shown} not found. See 'paas routes'."))
    })?;
    let d = r.destinations.iter().find(|d| d.app.guid == a.guid).ok_or_else(|| {
        CliError::NotFound(format!(
            "Route {shown} is not mapped to app {app}. See 'paas route {domain_name} -n {host}'."
        ))
    })?;
    let from = d.protocol.clone().unwrap_or_else(|| "http1".into());
    println!(
        "Updating destination protocol from {from} to {protocol} for route {} in {}...",
        bold(&shown),
        c.cfg.where_as()
    );
    if from != protocol {
        let body = serde_json::json!({"protocol": protocol});
        let _: Value =
            c.patch(&format!("/v3/routes/{}/destinations/{}", r.guid, d.guid), &body).await?;
    }
    println!("OK");
    Ok(())
}

/// `cf check-route DOMAIN [--hostname H] [--path P]`.
pub async fn check_route(c: &mut Client, domain_name: &str, host: &str, path: &str) -> Result<()> {
    c.cfg.require_login()?;
    let d = c.domain(domain_name).await?;
    println!("Checking for route...");
    let q = query(&[("host", host), ("path", path)]);
    let r: RouteReservation =
        c.get(&format!("/v3/domains/{}/route_reservations{q}", d.guid)).await?;
    let verb = if r.matching_route { "does exist" } else { "does not exist" };
    println!("Route '{}' {verb}.\nOK", url(host, domain_name, path));
    Ok(())
}

/// `cf create-shared-domain DOMAIN [--internal]` (admins).
pub async fn create_shared_domain(c: &mut Client, name: &str, internal: bool) -> Result<()> {
    c.cfg.require_login()?;
    println!("Creating shared domain {} as {}...", bold(name), c.cfg.user().unwrap_or_default());
    let body = DomainCreate {
        name: name.to_owned(),
        internal: internal.then_some(true),
        relationships: DomainCreateRelationships { organization: ToOne::of("") },
    };
    let _: Ignored = c.post("/v3/domains", &body).await?;
    println!("OK");
    Ok(())
}

/// `cf delete-private-domain` (`shared` false) and `cf delete-shared-domain` (true): a domain
/// that does not exist is already deleted; one of the other kind is refused.
/// `cf share-private-domain ORG DOMAIN`: the org's spaces may then route on the domain.
pub async fn share_domain(c: &mut Client, org: &str, name: &str) -> Result<()> {
    c.cfg.require_login()?;
    let d = c.domain(name).await?;
    let o = c.org(org).await?;
    let who = c.cfg.user().unwrap_or_default();
    println!("Sharing domain {} with org {} as {who}...", bold(name), bold(org));
    let body = serde_json::json!({"data": [{"guid": o.guid}]});
    let _: Value = c
        .post(&format!("/v3/domains/{}/relationships/shared_organizations", d.guid), &body)
        .await?;
    println!("OK");
    Ok(())
}

/// `cf unshare-private-domain ORG DOMAIN [-f]`.
pub async fn unshare_domain(c: &mut Client, org: &str, name: &str, force: bool) -> Result<()> {
    c.cfg.require_login()?;
    let d = c.domain(name).await?;
    let o = c.org(org).await?;
    if !force {
        println!("Warning: org {org} will no longer be able to access private domain {name}");
        if !confirm(&format!("Really unshare private domain {name}?"))? {
            println!("Domain {name} has not been unshared from organization {org}");
            return Ok(());
        }
    }
    let who = c.cfg.user().unwrap_or_default();
    println!("Unsharing domain {} from org {} as {who}...", bold(name), bold(org));
    c.delete(&format!("/v3/domains/{}/relationships/shared_organizations/{}", d.guid, o.guid))
        .await?;
    println!("OK");
    Ok(())
}

pub async fn delete_domain(c: &mut Client, name: &str, shared: bool, force: bool) -> Result<()> {
    c.cfg.require_login()?;
    let kind = if shared { "shared" } else { "private" };
    let d = match c.domain(name).await {
        Ok(d) => d,
        Err(CliError::NotFound(_)) => {
            println!("Domain '{name}' does not exist.\nOK");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if d.is_shared() != shared {
        let other = if shared { "private" } else { "shared" };
        return Err(CliError::Failed(format!(
            "Domain '{name}' is a {other} domain, not a {kind} domain. Use 'paas delete-{other}-domain {name}'."
        )));
    }
    if !force && !confirm(&format!("Really delete the {kind} domain {name}?"))? {
        println!("'{name}' has not been deleted.");
        return Ok(());
    }
    let who = c.cfg.user().unwrap_or_default();
    println!("Deleting {kind} domain {} as {who}...", bold(name));
    c.delete(&format!("/v3/domains/{}", d.guid)).await?;
    println!("OK");
    Ok(())
}
