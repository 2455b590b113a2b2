//! Managed services: `marketplace`, `create-service`, `update-service`, `upgrade-service`,
//! service keys, `purge-service-instance`, and the admin side: `purge-service-offering`, `service-brokers`,
//! `create-service-broker`, `update-service-broker`, `rename-service-broker`,
//! `delete-service-broker`,
//! `service-access`, `enable-service-access`, `disable-service-access`; `share-service` and
//! `unshare-service`.

use reqwest::Method;
use serde_json::{json, Map, Value};
use wire::v3::{CredentialBinding, ServiceBroker, ServiceOffering, ServicePlan};

use crate::client::{query, Client, Result};
use crate::error::CliError;
use crate::output::{bold, confirm, print_json, table};

/// `-c` as cf takes it: a JSON object, or a file holding one.
fn parameters(c: &str) -> Result<Map<String, Value>> {
    let text = std::fs::read_to_string(c).unwrap_or_else(|_| c.to_owned());
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(v)) => Ok(v),
        _ => Err(CliError::Usage(format!(
            "Invalid configuration provided for -c flag. Please provide a valid JSON object or path to a file containing a valid JSON object (got '{c}')"
        ))),
    }
}

fn tags(t: &str) -> Vec<String> {
    t.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn user(c: &Client) -> String {
    c.cfg.user().unwrap_or_default()
}

async fn broker_named(c: &mut Client, name: &str) -> Result<ServiceBroker> {
    let list: Vec<ServiceBroker> =
        c.list(&format!("/v3/service_brokers{}", query(&[("names", name)]))).await?;
    list.into_iter()
        .next()
        .ok_or_else(|| CliError::NotFound(format!("Service broker '{name}' not found.")))
}

/// The plan `plan` of offering `offering` usable in the targeted space.
async fn plan_in_space(
    c: &mut Client,
    offering: &str,
    plan: &str,
    broker: Option<&str>,
) -> Result<ServicePlan> {
    let space = c.cfg.require_space()?.guid.clone();
    let mut q = vec![
        ("names", plan),
        ("service_offering_names", offering),
        ("space_guids", space.as_str()),
    ];
    if let Some(b) = broker {
        q.push(("service_broker_names", b));
    }
    let plans: Vec<ServicePlan> = c.list(&format!("/v3/service_plans{}", query(&q))).await?;
    if plans.is_empty() {
        let offerings: Vec<ServiceOffering> = c
            .list(&format!(
                "/v3/service_offerings{}",
                query(&[("names", offering), ("space_guids", &space)])
            ))
            .await?;
        return Err(CliError::NotFound(if offerings.is_empty() {
            format!("Service offering '{offering}' not found.")
        } else {
            format!("The plan '{plan}' could not be found for service offering '{offering}'.")
        }));
    }
    if plans.len() > 1 {
        return Err(CliError::Usage(format!(
            "Service offering '{offering}' is provided by multiple service brokers. Specify a broker by using the '-b' flag."
        )));
    }
    Ok(plans.into_iter().next().expect("one plan"))
}

/// `marketplace [-e SERVICE] [-b BROKER]`.
pub async fn marketplace(
    c: &mut Client,
    service: Option<&str>,
    broker: Option<&str>,
) -> Result<()> {
    c.cfg.require_login()?;
    let space = c.cfg.space.as_ref().map(|s| s.guid.clone());
    let mut q: Vec<(&str, &str)> = Vec::new();
    if let Some(s) = &space {
        q.push(("space_guids", s));
    }
    if let Some(b) = broker {
        q.push(("service_broker_names", b));
    }
    let brokers: Vec<ServiceBroker> = c.list("/v3/service_brokers").await.unwrap_or_default();
    let broker_name = |g: Option<&str>| {
        brokers
            .iter()
            .find(|b| Some(b.guid.as_str()) == g)
            .map(|b| b.name.clone())
            .unwrap_or_default()
    };
    let whom = if space.is_some() { c.cfg.where_as() } else { format!("as {}", user(c)) };
    if let Some(svc) = service {
        println!(
            "Getting service plan information for service offering {} in {}...\n",
            bold(svc),
            whom
        );
        q.push(("service_offering_names", svc));
        let plans: Vec<ServicePlan> = c.list(&format!("/v3/service_plans{}", query(&q))).await?;
        if plans.is_empty() {
            return Err(CliError::NotFound(format!("Service offering '{svc}' not found.")));
        }
        let offerings: Vec<ServiceOffering> =
            c.list(&format!("/v3/service_offerings{}", query(&[("names", svc)]))).await?;
        for o in &offerings {
            let rows: Vec<Vec<String>> = plans
                .iter()
                .filter(|p| p.relationships.service_offering.guid() == Some(o.guid.as_str()))
                .map(|p| {
                    vec![
                        p.name.clone(),
                        p.description.clone(),
                        if p.free { "free" } else { "paid" }.into(),
                        costs(&p.costs),
                        if p.available { "yes" } else { "no" }.into(),
                    ]
                })
                .collect();
            if rows.is_empty() {
                continue;
            }
            println!("broker: {}", broker_name(o.relationships.service_broker.guid()));
            println!(
                "{}\n",
                table(&["plan", "description", "free or paid", "costs", "available"], &rows)
            );
        }
        return Ok(());
    }
    println!("Getting all service offerings from marketplace in {}...\n", whom);
    let offerings: Vec<ServiceOffering> =
        c.list(&format!("/v3/service_offerings{}", query(&q))).await?;
    if offerings.is_empty() {
        println!("No service offerings found.");
        return Ok(());
    }
    let plans: Vec<ServicePlan> = c.list(&format!("/v3/service_plans{}", query(&q))).await?;
    let rows: Vec<Vec<String>> = offerings
        .iter()
        .map(|o| {
            let names: Vec<&str> = plans
                .iter()
                .filter(|p| p.relationships.service_offering.guid() == Some(o.guid.as_str()))
                .map(|p| p.name.as_str())
                .collect();
            vec![
                o.name.clone(),
                names.join(", "),
                o.description.clone(),
                broker_name(o.relationships.service_broker.guid()),
            ]
        })
        .collect();
    println!("{}", table(&["offering", "plans", "description", "broker"], &rows));
    println!("\nTIP: Use 'paas marketplace -e SERVICE_OFFERING' to view descriptions of individual plans of a given service offering.");
    Ok(())
}

/// A plan's costs as cf prints them: `USD 9.50/MONTHLY, EUR 9.00/MONTHLY`.
fn costs(list: &[Value]) -> String {
    list.iter()
        .filter_map(|c| {
            let amount = c.get("amount")?.as_f64()?;
            let currency = c.get("currency")?.as_str()?;
            let unit = c.get("unit").and_then(Value::as_str).unwrap_or_default();
            Some(format!("{currency} {amount:.2}/{unit}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub struct CreateArgs {
    pub service: String,
    pub plan: String,
    pub name: String,
    pub parameters: Option<String>,
    pub tags: Option<String>,
    pub broker: Option<String>,
    pub wait: bool,
}

/// Wait for the job when asked (`done` is printed then); else say it is in progress.
async fn finish(
    c: &mut Client,
    job: Option<String>,
    wait: bool,
    in_progress: &str,
    done: &str,
) -> Result<()> {
    match job {
        Some(j) if wait => {
            println!("Waiting for the operation to complete...\n");
            c.wait_job(&j).await?;
            println!("{done}");
        }
        Some(_) => println!("{in_progress}"),
        None => println!("{done}"),
    }
    println!("OK");
    Ok(())
}

/// `create-service SERVICE PLAN NAME [-c JSON] [-t TAGS] [-b BROKER] [--wait]`.
pub async fn create_service(c: &mut Client, a: CreateArgs) -> Result<()> {
    let space = c.cfg.require_space()?.guid.clone();
    let params = a.parameters.as_deref().map(parameters).transpose()?;
    println!("Creating service instance {} in {}...\n", bold(&a.name), c.cfg.where_as());
    let plan = plan_in_space(c, &a.service, &a.plan, a.broker.as_deref()).await?;
    let mut body = json!({"type": "managed", "name": a.name,
        "relationships": {"space": {"data": {"guid": space}}, "service_plan": {"data": {"guid": plan.guid}}}});
    if let Some(p) = params {
        body["parameters"] = Value::Object(p);
    }
    if let Some(t) = &a.tags {
        body["tags"] = json!(tags(t));
    }
    let job = match c.send_job(Method::POST, "/v3/service_instances", &body).await {
        Err(CliError::Api { detail, .. }) if detail.contains("name is taken") => {
            println!("Service instance {} already exists", a.name);
            println!("OK");
            return Ok(());
        }
        r => r?,
    };
    let in_progress = format!(
        "Create in progress. Use 'paas services' or 'paas service {}' to check operation status.",
        a.name
    );
    finish(c, job, a.wait, &in_progress, &format!("Service instance {} created.", a.name)).await
}

pub struct UpdateArgs {
    pub name: String,
    pub plan: Option<String>,
    pub parameters: Option<String>,
    pub tags: Option<String>,
    pub wait: bool,
}

/// `update-service NAME [-p PLAN] [-c JSON] [-t TAGS] [--wait]`.
pub async fn update_service(c: &mut Client, a: UpdateArgs) -> Result<()> {
    let si = c.require_service_instance(&a.name).await?;
    if si.kind != "managed" {
        return Err(CliError::Usage(format!(
            "The service instance '{}' is user-provided: use 'paas update-user-provided-service'.",
            a.name
        )));
    }
    let mut body = json!({});
    if let Some(p) = &a.parameters {
        body["parameters"] = Value::Object(parameters(p)?);
    }
    if let Some(t) = &a.tags {
        body["tags"] = json!(tags(t));
    }
    println!("Updating service instance {} in {}...\n", bold(&a.name), c.cfg.where_as());
    if let Some(p) = &a.plan {
        let plan_guid = si
            .relationships
            .service_plan
            .as_ref()
            .and_then(|r| r.guid())
            .unwrap_or_default()
            .to_owned();
        let current: ServicePlan = c.get(&format!("/v3/service_plans/{plan_guid}")).await?;
        let offering: ServiceOffering = c
            .get(&format!(
                "/v3/service_offerings/{}",
                current.relationships.service_offering.guid().unwrap_or_default()
            ))
            .await?;
        let plan = plan_in_space(c, &offering.name, p, None).await?;
        body["relationships"] = json!({"service_plan": {"data": {"guid": plan.guid}}});
    }
    if body == json!({}) {
        println!("No changes were made.");
        println!("OK");
        return Ok(());
    }
    let job =
        c.send_job(Method::PATCH, &format!("/v3/service_instances/{}", si.guid), &body).await?;
    let in_progress = format!(
        "Update in progress. Use 'paas services' or 'paas service {}' to check operation status.",
        a.name
    );
    finish(
        c,
        job,
        a.wait,
        &in_progress,
        &format!("Update of service instance {} completed.", a.name),
    )
    .await
}

/// `upgrade-service NAME [-f] [--wait]`: the instance moves to its plan's current
/// `maintenance_info` version through the broker.
pub async fn upgrade_service(c: &mut Client, name: &str, force: bool, wait: bool) -> Result<()> {
    let question = format!("Warning: This operation may be long running and will block further operations on the service instance until it's completed\nDo you really want to upgrade the service instance {name}?");
    if !force && !confirm(&question)? {
        println!("Upgrade cancelled");
        return Ok(());
    }
    println!("Upgrading service instance {} in {}...\n", bold(name), c.cfg.where_as());
    let si = c.require_service_instance(name).await?;
    if si.kind != "managed" {
        return Err(CliError::Usage(format!(
            "The service instance '{name}' is user-provided: only managed instances have versions to upgrade to."
        )));
    }
    if si.upgrade_available != Some(true) {
        return Err(CliError::Failed(
            "No upgrade is available.\nTIP: To find out if upgrade is available run `paas service SERVICE_INSTANCE`.".into(),
        ));
    }
    let plan_guid =
        si.relationships.service_plan.as_ref().and_then(|r| r.guid()).unwrap_or_default();
    let plan: ServicePlan = c.get(&format!("/v3/service_plans/{plan_guid}")).await?;
    let body = json!({"maintenance_info": {"version": plan.maintenance_info["version"]}});
    let job =
        c.send_job(Method::PATCH, &format!("/v3/service_instances/{}", si.guid), &body).await?;
    let in_progress = format!(
        "Upgrade in progress. Use 'paas services' or 'paas service {name}' to check operation status."
    );
    finish(c, job, wait, &in_progress, &format!("Upgrade of service instance {name} completed."))
        .await
}

/// `purge-service-offering SERVICE [-b BROKER] [-f]`: the platform forgets the offering,
/// its plans, instances and bindings; the broker is not asked.
pub async fn purge_offering(
    c: &mut Client,
    service: &str,
    broker: Option<&str>,
    force: bool,
) -> Result<()> {
    c.cfg.require_login()?;
    let mut q = vec![("names", service)];
    if let Some(b) = broker {
        q.push(("service_broker_names", b));
    }
    let offerings: Vec<ServiceOffering> =
        c.list(&format!("/v3/service_offerings{}", query(&q))).await?;
    let offering = match offerings.as_slice() {
        [] => {
            return Err(CliError::NotFound(match broker {
                Some(b) => format!("Service offering '{service}' for service broker '{b}' not found."),
                None => format!("Service offering '{service}' not found."),
            }))
        }
        [one] => one.clone(),
        _ => {
            return Err(CliError::Usage(format!(
                "Service '{service}' is provided by multiple service brokers. Specify a broker by using the '-b' flag."
            )))
        }
    };
    let question = format!("WARNING: This operation assumes that the service broker responsible for this service offering is no longer available, and all service instances have been deleted, leaving orphan records in the platform's database. All knowledge of the service offering will be removed, including service instances and service bindings. No attempt will be made to contact the service broker; running this command without destroying the service broker will cause orphan service instances. After running this command you may want to run delete-service-broker to complete the cleanup.\n\nReally purge service offering {service} from the platform?");
    if !force && !confirm(&question)? {
        println!("Purge service offering cancelled");
        return Ok(());
    }
    println!("Purging service offering {} as {}...", bold(service), user(c));
    c.delete(&format!("/v3/service_offerings/{}?purge=true", offering.guid)).await?;
    println!("OK");
    Ok(())
}

/// `purge-service-instance NAME [-f]`: the platform forgets the instance, the broker is not asked.
pub async fn purge(c: &mut Client, name: &str, force: bool) -> Result<()> {
    let question = format!("WARNING: This operation assumes that the service broker responsible for this service instance is no longer available or is not responding with a 200 or 410, and the service instance has been deleted, leaving orphan records in the platform's database. All knowledge of the service instance will be removed, including service bindings and service keys.\n\nReally purge service instance {name} from the platform?");
    if !force && !confirm(&question)? {
        println!("Purge cancelled");
        return Ok(());
    }
    println!("Purging service instance {} in {}...", bold(name), c.cfg.where_as());
    match c.service_instance(name).await? {
        Some(si) => {
            let path = format!(
                "/v3/service_instances/{}{}",
                si.guid,
                if si.kind == "managed" { "?purge=true" } else { "" }
            );
            c.delete(&path).await?;
        }
        None => println!("Service instance {name} not found"),
    }
    println!("OK");
    Ok(())
}

async fn keys_of(c: &mut Client, instance: &str) -> Result<Vec<CredentialBinding>> {
    c.list(&format!(
        "/v3/service_credential_bindings{}",
        query(&[("type", "key"), ("service_instance_guids", instance)])
    ))
    .await
}

/// `create-service-key SERVICE KEY [-c JSON] [--wait]`.
pub async fn create_key(
    c: &mut Client,
    service: &str,
    key: &str,
    params: Option<&str>,
    wait: bool,
) -> Result<()> {
    let si = c.require_service_instance(service).await?;
    println!(
        "Creating service key {} for service instance {} as {}...",
        bold(key),
        bold(service),
        user(c)
    );
    let mut body = json!({"type": "key", "name": key,
        "relationships": {"service_instance": {"data": {"guid": si.guid}}}});
    if let Some(p) = params {
        body["parameters"] = Value::Object(parameters(p)?);
    }
    let job = match c.send_job(Method::POST, "/v3/service_credential_bindings", &body).await {
        Err(CliError::Api { detail, .. }) if detail.contains("must be unique") => {
            println!("Service key {key} already exists");
            println!("OK");
            return Ok(());
        }
        r => r?,
    };
    // Keys are short operations: cf waits for them unless told otherwise.
    let _ = wait;
    if let Some(j) = job {
        c.wait_job(&j).await?;
    }
    println!("OK");
    Ok(())
}

/// `service-keys SERVICE`.
pub async fn keys(c: &mut Client, service: &str) -> Result<()> {
    let si = c.require_service_instance(service).await?;
    println!("Getting keys for service instance {} as {}...\n", bold(service), user(c));
    let keys = keys_of(c, &si.guid).await?;
    if keys.is_empty() {
        println!("No service keys for service instance {service}");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            let op = k.last_operation.as_ref();
            vec![
                k.name.clone().unwrap_or_default(),
                op.map(|o| format!("{} {}", o.kind.as_str(), o.state.as_str())).unwrap_or_default(),
                op.and_then(|o| o.description.clone()).unwrap_or_default(),
            ]
        })
        .collect();
    println!("{}", table(&["name", "last operation", "message"], &rows));
    Ok(())
}

async fn key_named(c: &mut Client, service: &str, key: &str) -> Result<Option<CredentialBinding>> {
    let si = c.require_service_instance(service).await?;
    Ok(keys_of(c, &si.guid).await?.into_iter().find(|k| k.name.as_deref() == Some(key)))
}

/// `service-key SERVICE KEY [--guid]`.
pub async fn key(c: &mut Client, service: &str, key: &str, guid_only: bool) -> Result<()> {
    let k = key_named(c, service, key).await?.ok_or_else(|| {
        CliError::NotFound(format!("No service key {key} found for service instance {service}"))
    })?;
    if guid_only {
        println!("{}", k.guid);
        return Ok(());
    }
    println!(
        "Getting key {} for service instance {} as {}...\n",
        bold(key),
        bold(service),
        user(c)
    );
    let details: Value =
        c.get(&format!("/v3/service_credential_bindings/{}/details", k.guid)).await?;
    print_json(&details);
    Ok(())
}

/// `delete-service-key SERVICE KEY [-f]`.
pub async fn delete_key(c: &mut Client, service: &str, key: &str, force: bool) -> Result<()> {
    if !force && !confirm(&format!("Really delete the service key {key}?"))? {
        println!("Delete cancelled");
        return Ok(());
    }
    println!("Deleting key {} for service instance {} as {}...", bold(key), bold(service), user(c));
    match key_named(c, service, key).await? {
        Some(k) => c.delete(&format!("/v3/service_credential_bindings/{}", k.guid)).await?,
        None => println!("Service key {key} does not exist for service instance {service}."),
    }
    println!("OK");
    Ok(())
}

/// `service-brokers`.
pub async fn brokers(c: &mut Client) -> Result<()> {
    c.cfg.require_login()?;
    println!("Getting service brokers as {}...\n", user(c));
    let list: Vec<ServiceBroker> = c.list("/v3/service_brokers").await?;
    if list.is_empty() {
        println!("No service brokers found");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list.iter().map(|b| vec![b.name.clone(), b.url.clone()]).collect();
    println!("{}", table(&["name", "url"], &rows));
    Ok(())
}

fn broker_body(name: &str, user: &str, pass: &str, url: &str) -> Value {
    json!({"name": name, "url": url,
           "authentication": {"type": "basic", "credentials": {"username": user, "password": pass}}})
}

/// `create-service-broker NAME USER PASS URL [--space-scoped]`.
pub async fn create_broker(
    c: &mut Client,
    name: &str,
    username: &str,
    password: &str,
    url: &str,
    space_scoped: bool,
) -> Result<()> {
    c.cfg.require_login()?;
    let mut body = broker_body(name, username, password, url);
    if space_scoped {
        let space = c.cfg.require_space()?.clone();
        body["relationships"] = json!({"space": {"data": {"guid": space.guid}}});
        println!("Creating service broker {} in {} ...", bold(name), c.cfg.where_as());
    } else {
        println!("Creating service broker {} as {}...", bold(name), user(c));
    }
    if let Some(j) = c.send_job(Method::POST, "/v3/service_brokers", &body).await? {
        c.wait_job(&j).await?;
    }
    println!("OK");
    Ok(())
}

/// `update-service-broker NAME USER PASS URL`.
pub async fn update_broker(
    c: &mut Client,
    name: &str,
    username: &str,
    password: &str,
    url: &str,
) -> Result<()> {
    c.cfg.require_login()?;
    println!("Updating service broker {} as {}...", bold(name), user(c));
    let b = broker_named(c, name).await?;
    let mut body = broker_body(name, username, password, url);
    body.as_object_mut().expect("object").remove("name");
    if let Some(j) =
        c.send_job(Method::PATCH, &format!("/v3/service_brokers/{}", b.guid), &body).await?
    {
        c.wait_job(&j).await?;
    }
    println!("OK");
    Ok(())
}

/// `rename-service-broker OLD NEW`.
pub async fn rename_broker(c: &mut Client, old: &str, new: &str) -> Result<()> {
    c.cfg.require_login()?;
    println!("Renaming service broker {} to {} as {}...", bold(old), bold(new), user(c));
    let b = broker_named(c, old).await?;
    let path = format!("/v3/service_brokers/{}", b.guid);
    if let Some(j) = c.send_job(Method::PATCH, &path, &json!({"name": new})).await? {
        c.wait_job(&j).await?;
    }
    println!("OK");
    Ok(())
}

/// `delete-service-broker NAME [-f]`.
pub async fn delete_broker(c: &mut Client, name: &str, force: bool) -> Result<()> {
    c.cfg.require_login()?;
    if !force && !confirm(&format!("Really delete the service broker {name}?"))? {
        println!("Delete cancelled");
        return Ok(());
    }
    println!("Deleting service broker {} as {}...", bold(name), user(c));
    let list: Vec<ServiceBroker> =
        c.list(&format!("/v3/service_brokers{}", query(&[("names", name)]))).await?;
    match list.first() {
        Some(b) => c.delete(&format!("/v3/service_brokers/{}", b.guid)).await?,
        None => println!("Service broker '{name}' does not exist."),
    }
    println!("OK");
    Ok(())
}

/// `service-access [-b BROKER] [-e SERVICE] [-o ORG]`.
pub async fn access(
    c: &mut Client,
    broker: Option<&str>,
    service: Option<&str>,
    org: Option<&str>,
) -> Result<()> {
    c.cfg.require_login()?;
    println!("Getting service access as {}...\n", user(c));
    let mut brokers: Vec<ServiceBroker> = c.list("/v3/service_brokers").await?;
    if let Some(b) = broker {
        brokers.retain(|x| x.name == b);
    }
    let mut q: Vec<(&str, &str)> = Vec::new();
    if let Some(s) = service {
        q.push(("names", s));
    }
    let offerings: Vec<ServiceOffering> =
        c.list(&format!("/v3/service_offerings{}", query(&q))).await?;
    let plans: Vec<ServicePlan> = c.list("/v3/service_plans").await?;
    for b in &brokers {
        let mut rows = Vec::new();
        for o in offerings
            .iter()
            .filter(|o| o.relationships.service_broker.guid() == Some(b.guid.as_str()))
        {
            for p in plans
                .iter()
                .filter(|p| p.relationships.service_offering.guid() == Some(o.guid.as_str()))
            {
                let (access, orgs) = match p.visibility_type.as_str() {
                    "public" => ("all", String::new()),
                    "organization" => {
                        let v: Value =
                            c.get(&format!("/v3/service_plans/{}/visibility", p.guid)).await?;
                        let names: Vec<String> = v["organizations"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|o| o["name"].as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default();
                        if org.is_some_and(|want| !names.iter().any(|n| n == want)) {
                            continue;
                        }
                        ("limited", names.join(", "))
                    }
                    "space" => ("limited", String::new()),
                    _ => ("none", String::new()),
                };
                rows.push(vec![o.name.clone(), p.name.clone(), access.into(), orgs]);
            }
        }
        println!("broker: {}", b.name);
        if rows.is_empty() {
            println!("   No service offerings found.\n");
        } else {
            println!("{}\n", table(&["offering", "plan", "access", "orgs"], &rows));
        }
    }
    Ok(())
}

/// `enable-service-access` / `disable-service-access SERVICE [-p PLAN] [-o ORG] [-b BROKER]`.
pub async fn set_access(
    c: &mut Client,
    enable: bool,
    service: &str,
    plan: Option<&str>,
    org: Option<&str>,
    broker: Option<&str>,
) -> Result<()> {
    c.cfg.require_login()?;
    let verb = if enable { "Enabling" } else { "Disabling" };
    let what = match plan {
        Some(p) => format!("plan {} of service offering {}", bold(p), bold(service)),
        None => format!("all plans of service offering {}", bold(service)),
    };
    let whom = match org {
        Some(o) => format!("for org {}", bold(o)),
        None => "for all orgs".to_owned(),
    };
    println!("{verb} access to {what} {whom} as {}...", user(c));
    let mut q = vec![("service_offering_names", service)];
    if let Some(p) = plan {
        q.push(("names", p));
    }
    if let Some(b) = broker {
        q.push(("service_broker_names", b));
    }
    let plans: Vec<ServicePlan> = c.list(&format!("/v3/service_plans{}", query(&q))).await?;
    if plans.is_empty() {
        return Err(CliError::NotFound(match plan {
            Some(p) => {
                format!("The plan '{p}' could not be found for service offering '{service}'.")
            }
            None => format!("Service offering '{service}' not found."),
        }));
    }
    let org_guid = match org {
        Some(o) => Some(c.org(o).await?.guid),
        None => None,
    };
    for p in &plans {
        let path = format!("/v3/service_plans/{}/visibility", p.guid);
        match (enable, &org_guid) {
            (true, None) => {
                let _: Value = c.patch(&path, &json!({"type": "public"})).await?;
            }
            (true, Some(g)) => {
                if p.visibility_type != "public" {
                    let _: Value = c
                        .post(
                            &path,
                            &json!({"type": "organization", "organizations": [{"guid": g}]}),
                        )
                        .await?;
                }
            }
            (false, None) => {
                let _: Value = c.patch(&path, &json!({"type": "admin"})).await?;
            }
            (false, Some(g)) => {
                if p.visibility_type == "public" {
                    return Err(CliError::Usage("Cannot disable access for an org from a plan available to all orgs: disable it for all orgs first.".into()));
                }
                if p.visibility_type == "organization" {
                    match c.delete(&format!("{path}/{g}")).await {
                        Ok(()) | Err(CliError::Api { status: 404, .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
    println!("OK");
    Ok(())
}

/// The space `space` of org `org` (the targeted org when `None`).
async fn space_in(
    c: &mut Client,
    space: &str,
    org: Option<&str>,
) -> Result<(String, String, String)> {
    let org_name = match org {
        Some(o) => o.to_owned(),
        None => c.cfg.require_org()?.name.clone(),
    };
    let o = c.org(&org_name).await?;
    let spaces: Vec<Value> = c
        .list(&format!("/v3/spaces{}", query(&[("names", space), ("organization_guids", &o.guid)])))
        .await?;
    let g = spaces
        .first()
        .and_then(|s| s["guid"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| CliError::NotFound(format!("Space '{space}' not found.")))?;
    Ok((g, org_name, space.to_owned()))
}

/// `share-service NAME -s SPACE [-o ORG]`.
pub async fn share(c: &mut Client, name: &str, space: &str, org: Option<&str>) -> Result<()> {
    let si = c.require_service_instance(name).await?;
    let (guid, org_name, space_name) = space_in(c, space, org).await?;
    println!(
        "Sharing service instance {} into org {} / space {} as {}...",
        bold(name),
        bold(&org_name),
        bold(&space_name),
        user(c)
    );
    let path = format!("/v3/service_instances/{}/relationships/shared_spaces", si.guid);
    let _: Value = c.post(&path, &json!({"data": [{"guid": guid}]})).await?;
    println!("OK");
    Ok(())
}

/// `unshare-service NAME -s SPACE [-o ORG] [-f]`.
pub async fn unshare(
    c: &mut Client,
    name: &str,
    space: &str,
    org: Option<&str>,
    force: bool,
) -> Result<()> {
    let si = c.require_service_instance(name).await?;
    let (guid, org_name, space_name) = space_in(c, space, org).await?;
    if !force {
        println!("WARNING: Unsharing this service instance will remove any existing bindings originating from the service instance in the space. This could cause apps to stop working.\n");
        if !confirm("Really unshare the service instance?")? {
            println!("Unshare cancelled");
            return Ok(());
        }
    }
    println!(
        "Unsharing service instance {} from org {} / space {} as {}...",
        bold(name),
        bold(&org_name),
        bold(&space_name),
        user(c)
    );
    c.delete(&format!("/v3/service_instances/{}/relationships/shared_spaces/{guid}", si.guid))
        .await?;
    println!("OK");
    Ok(())
}
