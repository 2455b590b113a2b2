//! Administration: orgs, spaces, users and their roles, buildpacks, stacks, feature flags.

use std::path::Path;

use serde::Deserialize;
use serde_json::{json, Value};
use wire::v3::feature_flag::{FeatureFlag, FeatureFlagUpdate};
use wire::v3::isolation_segment::IsolationSegment;
use wire::v3::org::OrganizationCreate;
use wire::v3::role::{RoleCreate, UserCreate};
use wire::v3::space::{SpaceCreate, SpaceCreateRelationships};
use wire::v3::stack::{Buildpack, BuildpackChange, Stack};
use wire::v3::{Organization, Page, Rename, Role, Space, ToOne, User};

use crate::client::{query, Client, Ignored, Result};
use crate::config::Named;
use crate::error::CliError;
use crate::output::{bold, confirm, pairs, print_json, table};

/// A user in UAA's SCIM API (`/Users`).
#[derive(Debug, Default, Deserialize)]
struct ScimUser {
    #[serde(default)]
    id: String,
}

#[derive(Debug, Default, Deserialize)]
struct ScimUsers {
    #[serde(default)]
    resources: Vec<ScimUser>,
}

/// Any resource, read for its name only.
#[derive(Debug, Deserialize)]
struct NameOnly {
    name: String,
}

/// `--json` output: the list as the API sent it.
async fn print_list(c: &mut Client, path: &str) -> Result<()> {
    let list: Vec<Value> = c.list(path).await?;
    print_json(&Value::Array(list));
    Ok(())
}

fn named_org(o: &Organization) -> Named {
    Named { guid: o.guid.clone(), name: o.name.clone() }
}

fn named_space(s: &Space) -> Named {
    Named { guid: s.guid.clone(), name: s.name.clone() }
}

/// The org, or with `space_name` that space of it: `("organization" | "space", target)`.
async fn scope(
    c: &mut Client,
    org_name: &str,
    space_name: Option<&str>,
) -> Result<(&'static str, Named)> {
    let o = c.org(org_name).await?;
    Ok(match space_name {
        Some(s) => ("space", named_space(&c.space(&o.guid, s).await?)),
        None => ("organization", named_org(&o)),
    })
}

pub async fn orgs(c: &mut Client, json_out: bool) -> Result<()> {
    c.cfg.require_login()?;
    let path = "/v3/organizations?order_by=name";
    if json_out {
        return print_list(c, path).await;
    }
    let list: Vec<Organization> = c.list(path).await?;
    println!("Getting orgs as {}...\n", c.cfg.user().unwrap_or_default());
    let rows: Vec<Vec<String>> = list.into_iter().map(|o| vec![o.name]).collect();
    println!("{}", table(&["name"], &rows));
    Ok(())
}

pub async fn create_org(c: &mut Client, name: &str) -> Result<()> {
    c.cfg.require_login()?;
    println!("Creating org {} as {}...", bold(name), c.cfg.user().unwrap_or_default());
    let body = OrganizationCreate { name: name.to_owned(), suspended: None };
    let o: Organization = match c.post("/v3/organizations", &body).await {
        Ok(o) => o,
        Err(CliError::Api { detail, .. }) if detail.contains("already exists") => {
            println!("{detail}\nOK");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if let Some(user) = c.cfg.user() {
        let role = RoleCreate::for_username("organization_manager", &user, "organization", &o.guid);
        let _ = c.post::<Ignored>("/v3/roles", &role).await;
    }
    println!("OK\n\nTIP: Use 'paas target -o \"{name}\"' to target new org");
    Ok(())
}

pub async fn delete_org(c: &mut Client, name: &str, force: bool) -> Result<()> {
    if !force && !confirm(&format!("Really delete the org {name}, including its spaces, apps, service instances, routes, private domains and space-scoped service brokers?"))? {
        println!("Delete cancelled");
        return Ok(());
    }
    let o = c.org(name).await?;
    println!("Deleting org {} ...", bold(name));
    c.delete(&format!("/v3/organizations/{}", o.guid)).await?;
    if c.cfg.org.as_ref().is_some_and(|t| t.guid == o.guid) {
        c.cfg.org = None;
        c.cfg.space = None;
        c.cfg.save()?;
    }
    println!("OK");
    Ok(())
}

/// Names of a list's resources, comma-separated (`name` of each JSON object).
async fn names_of(c: &mut Client, path: &str) -> Result<String> {
    let list: Vec<NameOnly> = c.list(path).await?;
    Ok(list.into_iter().map(|n| n.name).collect::<Vec<_>>().join(", "))
}

/// The name of quota `guid` of `kind` (`organization_quotas`, `space_quotas`); empty for none.
async fn quota_name(c: &mut Client, kind: &str, guid: Option<&str>) -> Result<String> {
    let Some(g) = guid.filter(|g| !g.is_empty()) else { return Ok(String::new()) };
    let q: NameOnly = c.get(&format!("/v3/{kind}/{g}")).await?;
    Ok(q.name)
}

/// `cf org ORG [--guid]`.
pub async fn org(c: &mut Client, name: &str, guid_only: bool) -> Result<()> {
    c.cfg.require_login()?;
    let o = c.org(name).await?;
    if guid_only {
        println!("{}", o.guid);
        return Ok(());
    }
    println!("Getting info for org {} as {}...\n", bold(name), c.cfg.user().unwrap_or_default());
    let g = &o.guid;
    let domains = names_of(c, &format!("/v3/organizations/{g}/domains")).await?;
    let quota = quota_name(c, "organization_quotas", o.relationships.quota.guid()).await?;
    let q = query(&[("organization_guids", g), ("order_by", "name")]);
    let spaces = names_of(c, &format!("/v3/spaces{q}")).await?;
    println!(
        "{}",
        pairs(&[
            ("name", o.name.clone()),
            ("domains", domains),
            ("quota", quota),
            ("spaces", spaces),
            ("isolation segments", String::new()),
        ])
    );
    Ok(())
}

/// `cf space SPACE [--guid]`, in the targeted org.
pub async fn space(c: &mut Client, name: &str, guid_only: bool) -> Result<()> {
    let o = c.cfg.require_org()?.clone();
    let s = c.space(&o.guid, name).await?;
    if guid_only {
        println!("{}", s.guid);
        return Ok(());
    }
    println!(
        "Getting info for space {} in org {} as {}...\n",
        bold(name),
        o.name,
        c.cfg.user().unwrap_or_default()
    );
    let q = query(&[("space_guids", &s.guid), ("order_by", "name")]);
    let apps = names_of(c, &format!("/v3/apps{q}")).await?;
    let services = names_of(c, &format!("/v3/service_instances{q}")).await?;
    let quota = quota_name(c, "space_quotas", s.relationships.quota.guid()).await?;
    println!(
        "{}",
        pairs(&[
            ("name", s.name.clone()),
            ("org", o.name.clone()),
            ("apps", apps),
            ("services", services),
            ("isolation segment", String::new()),
            ("space quota", quota),
        ])
    );
    Ok(())
}

/// `cf rename-org OLD NEW`; the target follows the new name.
pub async fn rename_org(c: &mut Client, old: &str, new: &str) -> Result<()> {
    c.cfg.require_login()?;
    let o = c.org(old).await?;
    println!(
        "Renaming org {} to {} as {}...",
        bold(old),
        bold(new),
        c.cfg.user().unwrap_or_default()
    );
    let body = Rename { name: new.to_owned() };
    let _: Ignored = c.patch(&format!("/v3/organizations/{}", o.guid), &body).await?;
    if let Some(t) = c.cfg.org.as_mut().filter(|t| t.guid == o.guid) {
        t.name = new.to_owned();
        c.cfg.save()?;
    }
    println!("OK");
    Ok(())
}

/// `cf rename-space OLD NEW`, in the targeted org; the target follows the new name.
pub async fn rename_space(c: &mut Client, old: &str, new: &str) -> Result<()> {
    let o = c.cfg.require_org()?.clone();
    let s = c.space(&o.guid, old).await?;
    println!(
        "Renaming space {} to {} in org {} as {}...",
        bold(old),
        bold(new),
        o.name,
        c.cfg.user().unwrap_or_default()
    );
    let body = Rename { name: new.to_owned() };
    let _: Ignored = c.patch(&format!("/v3/spaces/{}", s.guid), &body).await?;
    if let Some(t) = c.cfg.space.as_mut().filter(|t| t.guid == s.guid) {
        t.name = new.to_owned();
        c.cfg.save()?;
    }
    println!("OK");
    Ok(())
}

pub async fn spaces(c: &mut Client, json_out: bool) -> Result<()> {
    let o = c.cfg.require_org()?.clone();
    let path =
        format!("/v3/spaces{}", query(&[("organization_guids", &o.guid), ("order_by", "name")]));
    if json_out {
        return print_list(c, &path).await;
    }
    let list: Vec<Space> = c.list(&path).await?;
    println!("Getting spaces in org {} ...\n", o.name);
    let rows: Vec<Vec<String>> = list.into_iter().map(|s| vec![s.name]).collect();
    println!("{}", table(&["name"], &rows));
    Ok(())
}

pub async fn create_space(c: &mut Client, name: &str, org_name: Option<&str>) -> Result<()> {
    let o = match org_name {
        Some(n) => named_org(&c.org(n).await?),
        None => c.cfg.require_org()?.clone(),
    };
    println!("Creating space {} in org {} ...", bold(name), o.name);
    let body = SpaceCreate {
        name: name.to_owned(),
        relationships: SpaceCreateRelationships { organization: ToOne::of(&o.guid) },
    };
    let s: Space = match c.post("/v3/spaces", &body).await {
        Ok(s) => s,
        Err(CliError::Api { detail, .. }) if detail.contains("must be unique") => {
            println!("Space {name} already exists\nOK");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if let Some(user) = c.cfg.user() {
        for kind in ["space_manager", "space_developer"] {
            let role = RoleCreate::for_username(kind, &user, "space", &s.guid);
            let _ = c.post::<Ignored>("/v3/roles", &role).await;
        }
    }
    println!("OK\n\nTIP: Use 'paas target -o \"{}\" -s \"{name}\"' to target new space", o.name);
    Ok(())
}

pub async fn delete_space(c: &mut Client, name: &str, force: bool) -> Result<()> {
    let o = c.cfg.require_org()?.clone();
    if !force && !confirm(&format!("Really delete the space {name}?"))? {
        println!("Delete cancelled");
        return Ok(());
    }
    let s = c.space(&o.guid, name).await?;
    println!("Deleting space {} in org {} ...", bold(name), o.name);
    c.delete(&format!("/v3/spaces/{}", s.guid)).await?;
    if c.cfg.space.as_ref().is_some_and(|t| t.guid == s.guid) {
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
    let u: ScimUser = res.json().await?;
    let _: Ignored = c.post("/v3/users", &UserCreate { guid: u.id }).await?;
    println!("OK\n\nTIP: Assign roles with 'paas set-org-role' and 'paas set-space-role'.");
    Ok(())
}

pub async fn delete_user(c: &mut Client, name: &str, force: bool) -> Result<()> {
    if !force && !confirm(&format!("Really delete the user {name}?"))? {
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
    let found: ScimUsers = res.json().await?;
    let Some(id) = found.resources.first().map(|u| u.id.as_str()) else {
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
    let o = c.org(org_name).await?;
    let (scope, target) = match space_name {
        Some(s) => ("space", named_space(&c.space(&o.guid, s).await?)),
        None => ("organization", named_org(&o)),
    };
    let kind = role_kind(scope, role)?;
    println!("Assigning role {} to user {} in {scope} {} ...", bold(role), bold(user), target.name);
    if scope == "space" {
        let body = RoleCreate::for_username("organization_user", user, "organization", &o.guid);
        match c.post::<Ignored>("/v3/roles", &body).await {
            Ok(_) => {}
            Err(CliError::Api { detail, .. }) if detail.contains("already has") => {}
            Err(CliError::Api { detail, .. }) if detail.contains("Invalid user") => {
                return Err(CliError::NotFound(format!("User '{user}' does not exist.")))
            }
            Err(e) => return Err(e),
        }
    }
    let body = RoleCreate::for_username(&kind, user, scope, &target.guid);
    match c.post::<Ignored>("/v3/roles", &body).await {
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
    let (scope, target) = scope(c, org_name, space_name).await?;
    let kind = role_kind(scope, role)?;
    println!(
        "Removing role {} from user {} in {scope} {} ...",
        bold(role),
        bold(user),
        target.name
    );
    let filter = if scope == "space" { "space_guids" } else { "organization_guids" };
    let roles: Vec<Role> = c
        .list(&format!(
            "/v3/roles{}",
            query(&[("types", &kind), (filter, &target.guid), ("include", "user")])
        ))
        .await?;
    let users: Page<User> = c.get(&format!("/v3/users{}", query(&[("usernames", user)]))).await?;
    let uid = users.resources.first().map(|u| u.guid.clone()).unwrap_or_default();
    for r in roles {
        if r.relationships.user.guid() == Some(uid.as_str()) {
            c.delete(&format!("/v3/roles/{}", r.guid)).await?;
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
    let (scope, target) = scope(c, org_name, space_name).await?;
    let filter = if scope == "space" { "space_guids" } else { "organization_guids" };
    let path = format!("/v3/roles{}", query(&[(filter, &target.guid), ("include", "user")]));
    if json_out {
        return print_list(c, &path).await;
    }
    let roles: Vec<Role> = c.list(&path).await?;
    let mut names = std::collections::HashMap::new();
    for u in c.list::<User>("/v3/users").await.unwrap_or_default() {
        names.insert(u.guid, u.username.unwrap_or_default());
    }
    let mut rows: Vec<Vec<String>> = roles
        .iter()
        .map(|r| {
            let u = r.relationships.user.guid().unwrap_or("");
            vec![r.kind.clone(), names.get(u).cloned().unwrap_or_else(|| u.to_owned())]
        })
        .collect();
    rows.sort();
    println!("Getting users in {} ...\n", target.name);
    println!("{}", table(&["role", "user"], &rows));
    Ok(())
}

pub async fn buildpacks(c: &mut Client, json_out: bool) -> Result<()> {
    c.cfg.require_login()?;
    let path = "/v3/buildpacks?order_by=position";
    if json_out {
        return print_list(c, path).await;
    }
    let list: Vec<Buildpack> = c.list(path).await?;
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|b| {
            vec![
                b.position.to_string(),
                b.name.clone(),
                b.stack.clone().unwrap_or_default(),
                b.enabled.to_string(),
                b.locked.to_string(),
                b.state.to_lowercase(),
                b.filename.clone().unwrap_or_default(),
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
    let body = BuildpackChange {
        name: Some(name.to_owned()),
        position: Some(position),
        ..Default::default()
    };
    let bp: Buildpack = c.post("/v3/buildpacks", &body).await?;
    println!("Uploading buildpack {} ...", bold(name));
    upload_buildpack(c, &bp.guid, path).await?;
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
    let bp = c.buildpack(name).await?;
    println!("Updating buildpack {} ...", bold(name));
    let body = BuildpackChange { name: None, position, enabled: enable, locked: lock };
    let _: Ignored = c.patch(&format!("/v3/buildpacks/{}", bp.guid), &body).await?;
    if let Some(p) = path {
        upload_buildpack(c, &bp.guid, p).await?;
    }
    println!("OK");
    Ok(())
}

/// `cf rename-buildpack OLD NEW`.
pub async fn rename_buildpack(c: &mut Client, old: &str, new: &str) -> Result<()> {
    c.cfg.require_login()?;
    let bp = c.buildpack(old).await?;
    let who = c.cfg.user().unwrap_or_default();
    println!("Renaming buildpack {} to {} as {who}...", bold(old), bold(new));
    let body = BuildpackChange { name: Some(new.to_owned()), ..Default::default() };
    let _: Ignored = c.patch(&format!("/v3/buildpacks/{}", bp.guid), &body).await?;
    println!("OK");
    Ok(())
}

/// `cf isolation-segments`: those the caller may see (here, the shared one).
pub async fn isolation_segments(c: &mut Client) -> Result<()> {
    c.cfg.require_login()?;
    println!("Getting isolation segments as {}...\n", c.cfg.user().unwrap_or_default());
    let list: Vec<IsolationSegment> = c.list("/v3/isolation_segments?order_by=name").await?;
    let rows: Vec<Vec<String>> = list.into_iter().map(|s| vec![s.name]).collect();
    println!("{}", table(&["name"], &rows));
    Ok(())
}

/// `cf delete-buildpack NAME [-f]`: one that does not exist is already deleted.
pub async fn delete_buildpack(c: &mut Client, name: &str, force: bool) -> Result<()> {
    c.cfg.require_login()?;
    if !force && !confirm(&format!("Really delete the buildpack {name}?"))? {
        println!("Delete cancelled");
        return Ok(());
    }
    println!("Deleting buildpack {} as {}...", bold(name), c.cfg.user().unwrap_or_default());
    match c.buildpack(name).await {
        Ok(bp) => c.delete(&format!("/v3/buildpacks/{}", bp.guid)).await?,
        Err(CliError::NotFound(_)) => println!("Buildpack '{name}' does not exist."),
        Err(e) => return Err(e),
    }
    println!("OK");
    Ok(())
}

pub async fn stacks(c: &mut Client, json_out: bool) -> Result<()> {
    c.cfg.require_login()?;
    if json_out {
        return print_list(c, "/v3/stacks").await;
    }
    let list: Vec<Stack> = c.list("/v3/stacks").await?;
    let rows: Vec<Vec<String>> =
        list.into_iter().map(|s| vec![s.name, s.description.unwrap_or_default()]).collect();
    println!("{}", table(&["name", "description"], &rows));
    Ok(())
}

/// `cf stack STACK [--guid]`.
pub async fn stack(c: &mut Client, name: &str, guid_only: bool) -> Result<()> {
    c.cfg.require_login()?;
    let path = format!("/v3/stacks{}", query(&[("names", name)]));
    let s: Stack = c.list(&path).await?.into_iter().next().ok_or_else(|| {
        CliError::NotFound(format!("Stack '{name}' not found. See 'paas stacks'."))
    })?;
    if guid_only {
        println!("{}", s.guid);
        return Ok(());
    }
    println!("Getting info for stack {} as {}...\n", bold(name), c.cfg.user().unwrap_or_default());
    println!("{}", pairs(&[("name", s.name), ("description", s.description.unwrap_or_default())]));
    Ok(())
}

fn flag_state(f: &FeatureFlag) -> String {
    if f.enabled { "enabled" } else { "disabled" }.to_owned()
}

/// `cf feature-flags`: every flag by name with its state.
pub async fn feature_flags(c: &mut Client, json_out: bool) -> Result<()> {
    c.cfg.require_login()?;
    if json_out {
        return print_list(c, "/v3/feature_flags").await;
    }
    println!("Getting feature flags as {}...\n", c.cfg.user().unwrap_or_default());
    let mut list: Vec<FeatureFlag> = c.list("/v3/feature_flags").await?;
    list.sort_by(|a, b| a.name.cmp(&b.name));
    let rows: Vec<Vec<String>> = list.iter().map(|f| vec![f.name.clone(), flag_state(f)]).collect();
    println!("{}", table(&["name", "state"], &rows));
    Ok(())
}

async fn feature_flag_named<T: serde::de::DeserializeOwned>(
    c: &mut Client,
    name: &str,
) -> Result<T> {
    match c.get(&format!("/v3/feature_flags/{name}")).await {
        Err(CliError::Api { status: 404, .. }) => Err(CliError::NotFound(format!(
            "Feature flag '{name}' not found. Use 'paas feature-flags' to see the flags."
        ))),
        other => other,
    }
}

/// `cf feature-flag NAME`.
pub async fn feature_flag(c: &mut Client, name: &str, json_out: bool) -> Result<()> {
    c.cfg.require_login()?;
    if json_out {
        print_json(&feature_flag_named::<Value>(c, name).await?);
        return Ok(());
    }
    let f: FeatureFlag = feature_flag_named(c, name).await?;
    println!(
        "Getting info for feature flag {} as {}...\n",
        bold(name),
        c.cfg.user().unwrap_or_default()
    );
    let mut rows = vec![vec![f.name.clone(), flag_state(&f)]];
    if let Some(m) = &f.custom_error_message {
        rows[0].push(m.clone());
        println!("{}", table(&["name", "state", "custom error message"], &rows));
    } else {
        println!("{}", table(&["name", "state"], &rows));
    }
    Ok(())
}

/// `cf enable-feature-flag` / `cf disable-feature-flag`.
pub async fn set_feature_flag(c: &mut Client, name: &str, enabled: bool) -> Result<()> {
    c.cfg.require_login()?;
    let verb = if enabled { "Enabling" } else { "Disabling" };
    println!("{verb} feature flag {} as {}...", bold(name), c.cfg.user().unwrap_or_default());
    let _: Ignored = feature_flag_named(c, name).await?;
    let body = FeatureFlagUpdate { enabled: Some(enabled), custom_error_message: None };
    let _: Ignored = c.patch(&format!("/v3/feature_flags/{name}"), &body).await?;
    println!("OK");
    Ok(())
}
