//! Service instances: `services`, `service`, `create-user-provided-service` (`cups`),
//! `update-user-provided-service` (`uups`), `rename-service`, `delete-service`,
//! `bind-service`, `unbind-service` (managed instances are made in `brokers.rs`).

use serde_json::{Map, Value};
use wire::v3::service_binding::{CredentialBindingCreate, CredentialBindingRelationships};
use wire::v3::service_instance::{ServiceInstanceRelationships, UserProvidedChange};
use wire::v3::{CredentialBinding, LastOperation, Page, Rename, ServiceInstance, ToOne};

use crate::client::{query, Client, Ignored, Result};
use crate::error::CliError;
use crate::output::{bold, confirm, pairs, print_json, table};

/// `-p` as CF takes it: a JSON object, a file holding one, or a comma-separated list of
/// field names (prompting is not offered: give the values as JSON).
fn credentials(p: &str) -> Result<Map<String, Value>> {
    let text = match std::fs::read_to_string(p) {
        Ok(t) => t,
        Err(_) => p.to_owned(),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(v)) => Ok(v),
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

fn body(a: &UpsArgs) -> Result<UserProvidedChange> {
    Ok(UserProvidedChange {
        credentials: a.credentials.as_deref().map(credentials).transpose()?,
        syslog_drain_url: a.syslog_drain_url.clone(),
        route_service_url: a.route_service_url.clone(),
        tags: a.tags.as_deref().map(tags),
        ..Default::default()
    })
}

pub async fn create(c: &mut Client, a: UpsArgs) -> Result<()> {
    let space = c.cfg.require_space()?.clone();
    let b = UserProvidedChange {
        kind: Some("user-provided".into()),
        name: Some(a.name.clone()),
        relationships: Some(ServiceInstanceRelationships {
            space: ToOne::of(&space.guid),
            service_plan: None,
        }),
        ..body(&a)?
    };
    println!("Creating user provided service {} in space {} ...", bold(&a.name), bold(&space.name));
    let _: Ignored = c.post("/v3/service_instances", &b).await?;
    println!("OK");
    Ok(())
}

pub async fn update(c: &mut Client, a: UpsArgs) -> Result<()> {
    let si = c.require_service_instance(&a.name).await?;
    let b = body(&a)?;
    if b.is_empty() {
        return Err(CliError::Usage("nothing to update: give -p, -l, -r or -t".into()));
    }
    println!("Updating user provided service {} ...", bold(&a.name));
    let _: Ignored = c.patch(&format!("/v3/service_instances/{}", si.guid), &b).await?;
    println!("OK");
    if a.credentials.is_some() {
        println!(
            "TIP: Use 'paas restage' for bound apps to see the new credentials in VCAP_SERVICES."
        );
    }
    Ok(())
}

pub async fn delete(c: &mut Client, name: &str, force: bool) -> Result<()> {
    if !force && !confirm(&format!("Really delete the service {name}?"))? {
        println!("Delete cancelled");
        return Ok(());
    }
    println!("Deleting service {} ...", bold(name));
    match c.service_instance(name).await? {
        Some(si) => c.delete(&format!("/v3/service_instances/{}", si.guid)).await?,
        None => println!("Service {name} does not exist."),
    }
    println!("OK");
    Ok(())
}

pub async fn services(c: &mut Client, json_out: bool) -> Result<()> {
    let space = c.cfg.require_space()?.clone();
    let path = format!(
        "/v3/service_instances{}",
        query(&[("space_guids", &space.guid), ("order_by", "name")])
    );
    if json_out {
        let list: Vec<Value> = c.list(&path).await?;
        print_json(&Value::Array(list));
        return Ok(());
    }
    let list: Vec<ServiceInstance> = c.list(&path).await?;
    println!("Getting service instances in space {} ...\n", space.name);
    // One request for every binding of the space, with the bound apps included.
    let (bindings, apps) = if list.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let guids: Vec<&str> = list.iter().map(|si| si.guid.as_str()).collect();
        let page: Page<CredentialBinding> = c
            .get(&format!(
                "/v3/service_credential_bindings{}",
                query(&[
                    ("service_instance_guids", &guids.join(",")),
                    ("include", "app"),
                    ("per_page", "5000"),
                ])
            ))
            .await?;
        let apps = page.included.and_then(|i| i.apps).unwrap_or_default();
        (page.resources, apps)
    };
    let app_name = |g: &str| {
        apps.iter().find(|a| a.guid == g).map(|a| a.name.as_str()).unwrap_or(g).to_owned()
    };
    // The offering and plan of each managed instance, by plan guid.
    let mut plans: Vec<(String, String, String)> = Vec::new();
    for si in list.iter().filter(|si| si.kind == "managed") {
        let Some(g) = si.relationships.service_plan.as_ref().and_then(ToOne::guid) else {
            continue;
        };
        if plans.iter().any(|(p, ..)| p == g) {
            continue;
        }
        let plan: Value = c.get(&format!("/v3/service_plans/{g}")).await.unwrap_or(Value::Null);
        let o = plan["relationships"]["service_offering"]["data"]["guid"].as_str().unwrap_or("");
        let offering: Value =
            c.get(&format!("/v3/service_offerings/{o}")).await.unwrap_or(Value::Null);
        plans.push((
            g.to_owned(),
            offering["name"].as_str().unwrap_or("").to_owned(),
            plan["name"].as_str().unwrap_or("").to_owned(),
        ));
    }
    let mut rows = Vec::new();
    for si in &list {
        let bound: Vec<String> = bindings
            .iter()
            .filter(|b| b.relationships.service_instance.guid() == Some(si.guid.as_str()))
            .filter_map(|b| b.relationships.app.as_ref().and_then(ToOne::guid))
            .map(app_name)
            .collect();
        let offering = match si.relationships.service_plan.as_ref().and_then(ToOne::guid) {
            Some(g) => plans
                .iter()
                .find(|(p, ..)| p == g)
                .map(|(_, o, p)| format!("{o} ({p})"))
                .unwrap_or_default(),
            None => "user-provided".into(),
        };
        rows.push(vec![
            si.name.clone(),
            offering,
            bound.join(", "),
            si.syslog_drain_url.clone().unwrap_or_default(),
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
    let a = c.app(app).await?;
    let si = c.require_service_instance(service).await?;
    println!("Binding service instance {} to app {} ...", bold(service), bold(app));
    let b = CredentialBindingCreate {
        kind: "app".into(),
        name: binding_name.map(str::to_owned),
        relationships: CredentialBindingRelationships {
            app: Some(ToOne::of(&a.guid)),
            service_instance: ToOne::of(&si.guid),
        },
    };
    match c.send_job(reqwest::Method::POST, "/v3/service_credential_bindings", &b).await {
        // A managed instance's binding is made by its broker: wait for it.
        Ok(Some(job)) => c.wait_job(&job).await?,
        Ok(None) => {}
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
    let a = c.app(app).await?;
    let si = c.require_service_instance(service).await?;
    println!("Unbinding app {} from service {} ...", bold(app), bold(service));
    let list: Vec<CredentialBinding> = c
        .list(&format!(
            "/v3/service_credential_bindings{}",
            query(&[("app_guids", &a.guid), ("service_instance_guids", &si.guid)])
        ))
        .await?;
    match list.first() {
        Some(b) => c.delete(&format!("/v3/service_credential_bindings/{}", b.guid)).await?,
        None => println!("Binding between {service} and {app} did not exist"),
    }
    println!("OK");
    Ok(())
}

/// The last operation of an instance or binding as cf shows it: `create succeeded`.
fn operation(op: Option<&LastOperation>) -> String {
    op.map(|o| format!("{} {}", o.kind.as_str(), o.state.as_str())).unwrap_or_default()
}

/// `cf service NAME [--guid]`: the instance, its last operation and the apps bound to it.
pub async fn service(c: &mut Client, name: &str, guid_only: bool) -> Result<()> {
    let si = c.require_service_instance(name).await?;
    if guid_only {
        println!("{}", si.guid);
        return Ok(());
    }
    println!("Showing info of service {} in {}...\n", bold(name), c.cfg.where_as());
    let op = si.last_operation.as_ref();
    let mut rows =
        vec![("name", si.name.clone()), ("guid", si.guid.clone()), ("type", si.kind.clone())];
    if let Some(g) = si.relationships.service_plan.as_ref().and_then(ToOne::guid) {
        // A managed instance: its offering, plan and broker, as cf shows them.
        let plan: Value = c.get(&format!("/v3/service_plans/{g}")).await.unwrap_or(Value::Null);
        let o = plan["relationships"]["service_offering"]["data"]["guid"].as_str().unwrap_or("");
        let offering: Value =
            c.get(&format!("/v3/service_offerings/{o}")).await.unwrap_or(Value::Null);
        let b = offering["relationships"]["service_broker"]["data"]["guid"].as_str().unwrap_or("");
        let broker: Value = c.get(&format!("/v3/service_brokers/{b}")).await.unwrap_or(Value::Null);
        let text = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_owned();
        rows.push(("broker", text(&broker, "name")));
        rows.push(("offering", text(&offering, "name")));
        rows.push(("plan", text(&plan, "name")));
        rows.push(("description", text(&offering, "description")));
        rows.push(("dashboard url", si.dashboard_url.clone().unwrap_or_default()));
    }
    rows.push(("tags", si.tags.join(", ")));
    if si.kind != "managed" {
        rows.push(("route service url", si.route_service_url.clone().unwrap_or_default()));
        rows.push(("syslog drain url", si.syslog_drain_url.clone().unwrap_or_default()));
    }
    println!("{}\n", pairs(&rows));
    println!("Showing status of last operation:");
    println!(
        "{}\n",
        pairs(&[
            ("status", operation(op)),
            ("message", op.and_then(|o| o.description.clone()).unwrap_or_default()),
            ("started", op.map(|o| o.created_at.clone()).unwrap_or_default()),
            ("updated", op.map(|o| o.updated_at.clone()).unwrap_or_default()),
        ])
    );
    let q = query(&[("service_instance_guids", &si.guid), ("include", "app")]);
    let page: Page<CredentialBinding> =
        c.get(&format!("/v3/service_credential_bindings{q}")).await?;
    let apps = page.included.and_then(|i| i.apps).unwrap_or_default();
    if si.kind == "managed" {
        println!("Showing upgrade status:");
        if si.upgrade_available == Some(true) {
            let g = si.relationships.service_plan.as_ref().and_then(ToOne::guid).unwrap_or("");
            let plan: Value = c.get(&format!("/v3/service_plans/{g}")).await.unwrap_or(Value::Null);
            println!("There is an upgrade available for this service.");
            if let Some(d) = plan["maintenance_info"]["description"].as_str() {
                println!("Upgrade description: {d}");
            }
            println!("TIP: You can upgrade using 'paas upgrade-service {}'\n", si.name);
        } else {
            println!("There is no upgrade available for this service.\n");
        }
    }
    println!("Showing bound apps:");
    let rows: Vec<Vec<String>> = page
        .resources
        .iter()
        .filter_map(|b| {
            let g = b.relationships.app.as_ref()?.guid()?;
            let app = apps.iter().find(|a| a.guid == g).map_or(g, |a| a.name.as_str());
            let name = b.name.clone().unwrap_or_default();
            Some(vec![app.to_owned(), name, operation(b.last_operation.as_ref())])
        })
        .collect();
    if rows.is_empty() {
        println!("There are no bound apps for this service instance.");
    } else {
        println!("{}", table(&["name", "binding name", "status"], &rows));
    }
    Ok(())
}

/// `cf rename-service OLD NEW`.
pub async fn rename(c: &mut Client, old: &str, new: &str) -> Result<()> {
    let si = c.require_service_instance(old).await?;
    println!("Renaming service {} to {} in {}...", bold(old), bold(new), c.cfg.where_as());
    let body = Rename { name: new.to_owned() };
    let _: Ignored = c.patch(&format!("/v3/service_instances/{}", si.guid), &body).await?;
    println!("OK");
    Ok(())
}
