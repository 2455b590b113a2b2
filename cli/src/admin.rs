//! Administration: orgs, spaces, users and their roles, quotas, buildpacks, stacks.

use std::path::Path;

use serde_json::{json, Value};

use crate::apps::guid;
use crate::client::{query, Client, Result};
use crate::error::CliError;
use crate::output::{bold, print_json, table};

pub async fn org(c: &mut Client, name: &str) -> Result<Value> {
    c.list(&format!("/v3/organizations{}", query(&[("names", name)])))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| CliError::NotFound(format!("Organization '{name}' not found.")))
}

async fn space(c: &mut Client, org_guid: &str, name: &str) -> Result<Value> {
    c.list(&format!("/v3/spaces{}", query(&[("names", name), ("organization_guids", org_guid)])))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| CliError::NotFound(format!("Space '{name}' not found.")))
}

fn names(list: &[Value], key: &str) -> Vec<Vec<String>> {
    list.iter().map(|v| vec![v[key].as_str().unwrap_or("").to_owned()]).collect()
}

pub async fn orgs(c: &mut Client, json_out: bool) -> Result<()> {
    c.cfg.require_login()?;
    let list = c.list("/v3/organizations?order_by=name").await?;
    if json_out {
        print_json(&Value::Array(list));
    } else {
        println!("Getting orgs as {}...\n", c.cfg.user().unwrap_or_default());
        println!("{}", table(&["name"], &names(&list, "name")));
    }
    Ok(())
}

pub async fn create_org(c: &mut Client, name: &str) -> Result<()> {
    c.cfg.require_login()?;
    println!("Creating org {} as {}...", bold(name), c.cfg.user().unwrap_or_default());
    let o = match c.post("/v3/organizations", json!({"name": name})).await {
        Ok(o) => o,
        Err(CliError::Api { detail, .. }) if detail.contains("already exists") => {
            println!("{detail}\nOK");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if let Some(user) = c.cfg.user() {
        let _ = c.post("/v3/roles", json!({"type": "organization_manager", "relationships": {"user": {"data": {"username": user, "origin": "uaa"}}, "organization": {"data": {"guid": guid(&o)}}}})).await;
    }
    println!("OK\n\nTIP: Use 'paas target -o \"{name}\"' to target new org");
    Ok(())
}

pub async fn delete_org(c: &mut Client, name: &str, force: bool) -> Result<()> {
    if !force && !crate::apps::confirm(&format!("Really delete the org {name}, including its spaces, apps, service instances, routes, private domains and space-scoped service brokers?"))? {
        println!("Delete cancelled");
        return Ok(());
    }
    let o = org(c, name).await?;
    println!("Deleting org {} ...", bold(name));
    c.delete(&format!("/v3/organizations/{}", guid(&o))).await?;
    if c.cfg.org.as_ref().is_some_and(|t| t.guid == guid(&o)) {
        c.cfg.org = None;
        c.cfg.space = None;
        c.cfg.save()?;
    }
    println!("OK");
    Ok(())
}

pub async fn spaces(c: &mut Client, json_out: bool) -> Result<()> {
    let o = c.cfg.require_org()?.clone();
    let list = c
        .list(&format!(
            "/v3/spaces{}",
            query(&[("organization_guids", &o.guid), ("order_by", "name")])
        ))
        .await?;
    if json_out {
        print_json(&Value::Array(list));
    } else {
        println!("Getting spaces in org {} ...\n", o.name);
        println!("{}", table(&["name"], &names(&list, "name")));
    }
    Ok(())
}

pub async fn create_space(c: &mut Client, name: &str, org_name: Option<&str>) -> Result<()> {
    let o = match org_name {
        Some(n) => org(c, n).await?,
        None => {
            let t = c.cfg.require_org()?.clone();
            json!({"guid": t.guid, "name": t.name})
        }
    };
    println!("Creating space {} in org {} ...", bold(name), o["name"].as_str().unwrap_or(""));
    let s = match c
        .post(
            "/v3/spaces",
            json!({"name": name, "relationships": {"organization": {"data": {"guid": guid(&o)}}}}),
        )
        .await
    {
        Ok(s) => s,
        Err(CliError::Api { detail, .. }) if detail.contains("must be unique") => {
            println!("Space {name} already exists\nOK");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if let Some(user) = c.cfg.user() {
        for kind in ["space_manager", "space_developer"] {
            let body = json!({"type": kind, "relationships": {"user": {"data": {"username": user, "origin": "uaa"}}, "space": {"data": {"guid": guid(&s)}}}});
            let _ = c.post("/v3/roles", body).await;
        }
    }
    println!(
        "OK\n\nTIP: Use 'paas target -o \"{}\" -s \"{name}\"' to target new space",
        o["name"].as_str().unwrap_or("")
    );
    Ok(())
}

pub async fn delete_space(c: &mut Client, name: &str, force: bool) -> Result<()> {
    let o = c.cfg.require_org()?.clone();
    if !force && !crate::apps::confirm(&format!("Really delete the space {name}?"))? {
        println!("Delete cancelled");
        return Ok(());
    }
    let s = space(c, &o.guid, name).await?;
    println!("Deleting space {} in org {} ...", bold(name), o.name);
    c.delete(&format!("/v3/spaces/{}", guid(&s))).await?;
    if c.cfg.space.as_ref().is_some_and(|t| t.guid == guid(&s)) {
        c.cfg.space = None;
        c.cfg.save()?;
    }
    println!("OK");
    Ok(())
}

pub async fn create_user(c: &mut Client, name: &str, password: &str) -> Result<()> {
    let token = c.token().await?;
    println!("Creating user {} ...", bold(name));
    let uaa = if c.cfg.uaa.is_empty() { c.cfg.api.clone() } else { c.cfg.uaa.clone() };
    let res = c
        .http
        .post(format!("{}/Users", uaa.trim_end_matches('/')))
        .bearer_auth(token)
        .json(&json!({"userName": name, "password": password, "emails": [{"value": name}]}))
        .send()
        .await?;
    if res.status() == reqwest::StatusCode::CONFLICT {
        println!("User '{name}' already exists.\nOK");
        return Ok(());
    }
    if !res.status().is_success() {
        return Err(crate::client::api_error(res).await);
    }
    let u: Value = res.json().await?;
    c.post("/v3/users", json!({"guid": u["id"]})).await?;
    println!("OK\n\nTIP: Assign roles with 'paas set-org-role' and 'paas set-space-role'.");
    Ok(())
}

pub async fn delete_user(c: &mut Client, name: &str, force: bool) -> Result<()> {
    if !force && !crate::apps::confirm(&format!("Really delete the user {name}?"))? {
        println!("Delete cancelled");
        return Ok(());
    }
    let token = c.token().await?;
    let uaa = if c.cfg.uaa.is_empty() { c.cfg.api.clone() } else { c.cfg.uaa.clone() };
    let filter = format!("userName eq \"{name}\"");
    let res = c
        .http
        .get(format!("{}/Users{}", uaa.trim_end_matches('/'), query(&[("filter", &filter)])))
        .bearer_auth(&token)
        .send()
        .await?;
    if !res.status().is_success() {
        return Err(crate::client::api_error(res).await);
    }
    let found: Value = res.json().await?;
    let Some(id) = found["resources"][0]["id"].as_str() else {
        println!("User '{name}' does not exist.\nOK");
        return Ok(());
    };
    println!("Deleting user {} ...", bold(name));
    let res = c
        .http
        .delete(format!("{}/Users/{id}", uaa.trim_end_matches('/')))
        .bearer_auth(&token)
        .send()
        .await?;
    if !res.status().is_success() {
        return Err(crate::client::api_error(res).await);
    }
    println!("OK");
    Ok(())
}

fn role_kind(scope: &str, role: &str) -> Result<String> {
    let r = role
        .to_ascii_lowercase()
        .replace("org", "organization")
        .replace("organizationanization", "organization");
    let kind = match (scope, r.as_str()) {
        ("organization", "organizationmanager" | "organization_manager" | "manager") => {
            "organization_manager"
        }
        ("organization", "billingmanager" | "billing_manager" | "organization_billing_manager") => {
            "organization_billing_manager"
        }
        ("organization", "organizationauditor" | "organization_auditor" | "auditor") => {
            "organization_auditor"
        }
        ("organization", "organizationuser" | "organization_user" | "user") => "organization_user",
        ("space", "spacemanager" | "space_manager" | "manager") => "space_manager",
        ("space", "spacedeveloper" | "space_developer" | "developer") => "space_developer",
        ("space", "spaceauditor" | "space_auditor" | "auditor") => "space_auditor",
        ("space", "spacesupporter" | "space_supporter" | "supporter") => "space_supporter",
        _ => {
            return Err(CliError::Usage(format!(
                "Incorrect usage: ROLE must be one of {}",
                if scope == "space" {
                    "SpaceManager, SpaceDeveloper, SpaceAuditor, SpaceSupporter"
                } else {
                    "OrgManager, BillingManager, OrgAuditor, OrgUser"
                }
            )))
        }
    };
    Ok(kind.to_owned())
}

pub async fn set_role(
    c: &mut Client,
    user: &str,
    org_name: &str,
    space_name: Option<&str>,
    role: &str,
) -> Result<()> {
    let o = org(c, org_name).await?;
    let (scope, target) = match space_name {
        Some(s) => ("space", space(c, &guid(&o), s).await?),
        None => ("organization", o.clone()),
    };
    let kind = role_kind(scope, role)?;
    println!(
        "Assigning role {} to user {} in {scope} {} ...",
        bold(role),
        bold(user),
        target["name"].as_str().unwrap_or("")
    );
    if scope == "space" {
        let body = json!({"type": "organization_user", "relationships": {"user": {"data": {"username": user, "origin": "uaa"}}, "organization": {"data": {"guid": guid(&o)}}}});
        match c.post("/v3/roles", body).await {
            Ok(_) => {}
            Err(CliError::Api { detail, .. }) if detail.contains("already has") => {}
            Err(CliError::Api { detail, .. }) if detail.contains("Invalid user") => {
                return Err(CliError::NotFound(format!("User '{user}' does not exist.")))
            }
            Err(e) => return Err(e),
        }
    }
    let body = json!({"type": kind, "relationships": {"user": {"data": {"username": user, "origin": "uaa"}}, scope: {"data": {"guid": guid(&target)}}}});
    match c.post("/v3/roles", body).await {
        Ok(_) => {}
        Err(CliError::Api { detail, .. }) if detail.contains("already has") => println!("{detail}"),
        Err(CliError::Api { detail, .. }) if detail.contains("Invalid user") => {
            return Err(CliError::NotFound(format!("User '{user}' does not exist.")))
        }
        Err(e) => return Err(e),
    }
    println!("OK");
    Ok(())
}

pub async fn unset_role(
    c: &mut Client,
    user: &str,
    org_name: &str,
    space_name: Option<&str>,
    role: &str,
) -> Result<()> {
    let o = org(c, org_name).await?;
    let (scope, target) = match space_name {
        Some(s) => ("space", space(c, &guid(&o), s).await?),
        None => ("organization", o.clone()),
    };
    let kind = role_kind(scope, role)?;
    println!(
        "Removing role {} from user {} in {scope} {} ...",
        bold(role),
        bold(user),
        target["name"].as_str().unwrap_or("")
    );
    let filter = if scope == "space" { "space_guids" } else { "organization_guids" };
    let roles = c
        .list(&format!(
            "/v3/roles{}",
            query(&[("types", &kind), (filter, &guid(&target)), ("include", "user")])
        ))
        .await?;
    let users = c.get(&format!("/v3/users{}", query(&[("usernames", user)]))).await?;
    let uid = users["resources"][0]["guid"].as_str().unwrap_or("").to_owned();
    for r in roles {
        if r["relationships"]["user"]["data"]["guid"].as_str() == Some(uid.as_str()) {
            c.delete(&format!("/v3/roles/{}", guid(&r))).await?;
        }
    }
    println!("OK");
    Ok(())
}

pub async fn users_of(
    c: &mut Client,
    org_name: &str,
    space_name: Option<&str>,
    json_out: bool,
) -> Result<()> {
    let o = org(c, org_name).await?;
    let (filter, target) = match space_name {
        Some(s) => ("space_guids", space(c, &guid(&o), s).await?),
        None => ("organization_guids", o.clone()),
    };
    let roles = c
        .list(&format!("/v3/roles{}", query(&[(filter, &guid(&target)), ("include", "user")])))
        .await?;
    let mut names = std::collections::HashMap::new();
    for u in c.list("/v3/users").await.unwrap_or_default() {
        names.insert(guid(&u), u["username"].as_str().unwrap_or("").to_owned());
    }
    if json_out {
        print_json(&Value::Array(roles));
        return Ok(());
    }
    let mut rows: Vec<Vec<String>> = roles
        .iter()
        .map(|r| {
            let u = r["relationships"]["user"]["data"]["guid"].as_str().unwrap_or("");
            vec![
                r["type"].as_str().unwrap_or("").to_owned(),
                names.get(u).cloned().unwrap_or_else(|| u.to_owned()),
            ]
        })
        .collect();
    rows.sort();
    println!("Getting users in {} ...\n", target["name"].as_str().unwrap_or(""));
    println!("{}", table(&["role", "user"], &rows));
    Ok(())
}

pub async fn quotas(c: &mut Client, json_out: bool) -> Result<()> {
    c.cfg.require_login()?;
    let list = c.list("/v3/organization_quotas").await?;
    if json_out {
        print_json(&Value::Array(list));
        return Ok(());
    }
    let show = |v: &Value| if v.is_null() { "unlimited".to_owned() } else { v.to_string() };
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|q| {
            vec![
                q["name"].as_str().unwrap_or("").to_owned(),
                show(&q["apps"]["total_memory_in_mb"]),
                show(&q["apps"]["per_process_memory_in_mb"]),
                show(&q["routes"]["total_routes"]),
                show(&q["apps"]["total_instances"]),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &["name", "total memory (MB)", "instance memory (MB)", "routes", "app instances"],
            &rows
        )
    );
    Ok(())
}

pub async fn create_quota(
    c: &mut Client,
    name: &str,
    memory: Option<&str>,
    instance_memory: Option<&str>,
    routes: Option<i64>,
    instances: Option<i64>,
) -> Result<()> {
    let mb = |s: Option<&str>| -> Result<Value> {
        match s {
            None => Ok(Value::Null),
            Some(v) => manifest::parse_size_mb(v)
                .map(|n| json!(n))
                .map_err(|e| CliError::Usage(format!("invalid size '{v}': {e}"))),
        }
    };
    println!("Creating org quota {} ...", bold(name));
    c.post("/v3/organization_quotas", json!({"name": name, "apps": {"total_memory_in_mb": mb(memory)?, "per_process_memory_in_mb": mb(instance_memory)?, "total_instances": instances}, "routes": {"total_routes": routes}})).await?;
    println!("OK");
    Ok(())
}

pub async fn set_quota(c: &mut Client, org_name: &str, quota: &str) -> Result<()> {
    let o = org(c, org_name).await?;
    let q = c
        .list(&format!("/v3/organization_quotas{}", query(&[("names", quota)])))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| CliError::NotFound(format!("Quota '{quota}' not found.")))?;
    println!("Setting quota {} to org {} ...", bold(quota), bold(org_name));
    c.post(
        &format!("/v3/organization_quotas/{}/relationships/organizations", guid(&q)),
        json!({"data": [{"guid": guid(&o)}]}),
    )
    .await?;
    println!("OK");
    Ok(())
}

pub async fn buildpacks(c: &mut Client, json_out: bool) -> Result<()> {
    c.cfg.require_login()?;
    let list = c.list("/v3/buildpacks?order_by=position").await?;
    if json_out {
        print_json(&Value::Array(list));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|b| {
            vec![
                b["position"].to_string(),
                b["name"].as_str().unwrap_or("").to_owned(),
                b["stack"].as_str().unwrap_or("").to_owned(),
                b["enabled"].to_string(),
                b["locked"].to_string(),
                b["state"].as_str().unwrap_or("").to_lowercase(),
                b["filename"].as_str().unwrap_or("").to_owned(),
            ]
        })
        .collect();
    println!("Getting buildpacks as {}...\n", c.cfg.user().unwrap_or_default());
    println!(
        "{}",
        table(&["position", "name", "stack", "enabled", "locked", "state", "filename"], &rows)
    );
    Ok(())
}

async fn upload_buildpack(c: &mut Client, bp: &str, path: &Path) -> Result<()> {
    let token = c.token().await?;
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "buildpack.zip".into());
    let form = reqwest::multipart::Form::new()
        .part("bits", reqwest::multipart::Part::bytes(bytes).file_name(name));
    let res = c
        .http
        .post(c.url(&format!("/v3/buildpacks/{bp}/upload")))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await?;
    if !res.status().is_success() {
        return Err(crate::client::api_error(res).await);
    }
    Ok(())
}

pub async fn create_buildpack(
    c: &mut Client,
    name: &str,
    path: &Path,
    position: i64,
) -> Result<()> {
    if !path.is_file() {
        return Err(CliError::Usage(format!("{} is not a buildpack zip file", path.display())));
    }
    println!("Creating buildpack {} ...", bold(name));
    let bp = c.post("/v3/buildpacks", json!({"name": name, "position": position})).await?;
    println!("Uploading buildpack {} ...", bold(name));
    upload_buildpack(c, &guid(&bp), path).await?;
    println!("OK");
    Ok(())
}

pub async fn update_buildpack(
    c: &mut Client,
    name: &str,
    path: Option<&Path>,
    position: Option<i64>,
    enable: Option<bool>,
    lock: Option<bool>,
) -> Result<()> {
    let bp = c
        .list(&format!("/v3/buildpacks{}", query(&[("names", name)])))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| CliError::NotFound(format!("Buildpack '{name}' not found.")))?;
    println!("Updating buildpack {} ...", bold(name));
    let mut body = json!({});
    if let Some(p) = position {
        body["position"] = json!(p);
    }
    if let Some(e) = enable {
        body["enabled"] = json!(e);
    }
    if let Some(l) = lock {
        body["locked"] = json!(l);
    }
    c.patch(&format!("/v3/buildpacks/{}", guid(&bp)), body).await?;
    if let Some(p) = path {
        upload_buildpack(c, &guid(&bp), p).await?;
    }
    println!("OK");
    Ok(())
}

pub async fn stacks(c: &mut Client, json_out: bool) -> Result<()> {
    c.cfg.require_login()?;
    let list = c.list("/v3/stacks").await?;
    if json_out {
        print_json(&Value::Array(list));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                s["name"].as_str().unwrap_or("").to_owned(),
                s["description"].as_str().unwrap_or("").to_owned(),
            ]
        })
        .collect();
    println!("{}", table(&["name", "description"], &rows));
    Ok(())
}
