//! Org and space quotas: `org-quotas` (`quotas`), `org-quota`, `create-org-quota`
//! (`create-quota`), `update-org-quota`, `set-org-quota` (`set-quota`), `space-quotas`,
//! `space-quota`, `create-space-quota`, `set-space-quota`, `unset-space-quota`,
//! `delete-space-quota`. Limits the platform bounds: total memory, instance memory, app
//! instances and routes; `-1` makes one unlimited.

use serde_json::Value;
use wire::v3::quota::{
    AppLimits, AppLimitsCreate, AppLimitsUpdate, OrganizationQuota, OrganizationQuotaCreate,
    OrganizationQuotaUpdate, RouteLimits, RouteLimitsCreate, RouteLimitsUpdate, SpaceQuota,
    SpaceQuotaCreate, SpaceQuotaCreateRelationships,
};
use wire::v3::{Guid, ToMany, ToOne};

use crate::client::{query, Client, Ignored, Result};
use crate::error::CliError;
use crate::output::{bold, bytes, confirm, pairs, print_json, table};

/// The limits a quota command may set, as typed (`-1`: unlimited).
#[derive(Debug, Default, clap::Args)]
pub struct LimitArgs {
    /// Total memory of all processes (e.g. 1024M, 10G); -1 is unlimited
    #[arg(short = 'm', allow_hyphen_values = true)]
    pub total_memory: Option<String>,
    /// Most memory one process instance may have (e.g. 256M, 1G); -1 is unlimited
    #[arg(short = 'i', allow_hyphen_values = true)]
    pub instance_memory: Option<String>,
    /// Total number of routes; -1 is unlimited
    #[arg(short = 'r', allow_hyphen_values = true)]
    pub routes: Option<String>,
    /// Total number of app instances; -1 is unlimited
    #[arg(short = 'a', allow_hyphen_values = true)]
    pub app_instances: Option<String>,
}

/// A given limit: `None` not given, `Some(None)` unlimited.
type Limit = Option<Option<i64>>;

fn memory(flag: &str, v: Option<&str>) -> Result<Limit> {
    let Some(v) = v else { return Ok(None) };
    if v == "-1" {
        return Ok(Some(None));
    }
    manifest::parse_size_mb(v)
        .map(|n| Some(Some(i64::try_from(n).unwrap_or(i64::MAX))))
        .map_err(|e| {
            CliError::Usage(format!("Incorrect usage: {flag} takes a size such as 512M or 1G, or -1 for unlimited ('{v}': {e})"))
        })
}

fn count(flag: &str, v: Option<&str>) -> Result<Limit> {
    match v.map(|v| (v, v.parse::<i64>())) {
        None => Ok(None),
        Some((_, Ok(-1))) => Ok(Some(None)),
        Some((_, Ok(n))) if n >= 0 => Ok(Some(Some(n))),
        Some((v, _)) => Err(CliError::Usage(format!(
            "Incorrect usage: {flag} takes a whole number, or -1 for unlimited (got '{v}')"
        ))),
    }
}

impl LimitArgs {
    fn update(&self) -> Result<(AppLimitsUpdate, RouteLimitsUpdate)> {
        let apps = AppLimitsUpdate {
            total_memory_in_mb: memory("-m", self.total_memory.as_deref())?,
            per_process_memory_in_mb: memory("-i", self.instance_memory.as_deref())?,
            total_instances: count("-a", self.app_instances.as_deref())?,
        };
        let routes = RouteLimitsUpdate { total_routes: count("-r", self.routes.as_deref())? };
        Ok((apps, routes))
    }

    /// For a new quota: what is not given is unlimited.
    fn create(&self) -> Result<(AppLimitsCreate, RouteLimitsCreate)> {
        let (a, r) = self.update()?;
        let apps = AppLimitsCreate {
            total_memory_in_mb: a.total_memory_in_mb.flatten(),
            per_process_memory_in_mb: a.per_process_memory_in_mb.flatten(),
            total_instances: a.total_instances.flatten(),
        };
        Ok((apps, RouteLimitsCreate { total_routes: r.total_routes.flatten() }))
    }
}

fn mem(v: Option<i64>) -> String {
    v.map_or_else(|| "unlimited".into(), |mb| bytes(u64::try_from(mb).unwrap_or(0) << 20))
}

fn num(v: Option<i64>) -> String {
    v.map_or_else(|| "unlimited".into(), |n| n.to_string())
}

fn row(name: &str, a: &AppLimits, r: &RouteLimits) -> Vec<String> {
    let limits = [a.total_memory_in_mb, a.per_process_memory_in_mb];
    let mut row = vec![name.to_owned()];
    row.extend(limits.map(mem));
    row.extend([num(r.total_routes), num(a.total_instances)]);
    row
}

const COLUMNS: [&str; 5] = ["name", "total memory", "instance memory", "routes", "app instances"];

fn details(a: &AppLimits, r: &RouteLimits) -> String {
    pairs(&[
        ("total memory", mem(a.total_memory_in_mb)),
        ("instance memory", mem(a.per_process_memory_in_mb)),
        ("routes", num(r.total_routes)),
        ("app instances", num(a.total_instances)),
    ])
}

impl Client {
    pub async fn org_quota(&mut self, name: &str) -> Result<OrganizationQuota> {
        let path = format!("/v3/organization_quotas{}", query(&[("names", name)]));
        let list: Vec<OrganizationQuota> = self.list(&path).await?;
        list.into_iter().next().ok_or_else(|| {
            CliError::NotFound(format!(
                "Organization quota '{name}' not found. See 'paas org-quotas'."
            ))
        })
    }

    /// The space quota of this name in the org `org_guid`.
    pub async fn space_quota(&mut self, org_guid: &str, name: &str) -> Result<SpaceQuota> {
        let q = query(&[("names", name), ("organization_guids", org_guid)]);
        let list: Vec<SpaceQuota> = self.list(&format!("/v3/space_quotas{q}")).await?;
        list.into_iter().next().ok_or_else(|| {
            CliError::NotFound(format!("Space quota '{name}' not found. See 'paas space-quotas'."))
        })
    }
}

/// `cf org-quotas`.
pub async fn org_quotas(c: &mut Client, json_out: bool) -> Result<()> {
    c.cfg.require_login()?;
    let path = "/v3/organization_quotas?order_by=name";
    if json_out {
        let list: Vec<Value> = c.list(path).await?;
        print_json(&Value::Array(list));
        return Ok(());
    }
    println!("Getting org quotas as {}...\n", c.cfg.user().unwrap_or_default());
    let list: Vec<OrganizationQuota> = c.list(path).await?;
    let rows: Vec<Vec<String>> = list.iter().map(|q| row(&q.name, &q.apps, &q.routes)).collect();
    println!("{}", table(&COLUMNS, &rows));
    Ok(())
}

/// `cf org-quota NAME`.
pub async fn org_quota(c: &mut Client, name: &str) -> Result<()> {
    c.cfg.require_login()?;
    let q = c.org_quota(name).await?;
    println!("Getting org quota {} as {}...\n", bold(name), c.cfg.user().unwrap_or_default());
    println!("{}", details(&q.apps, &q.routes));
    Ok(())
}

/// `cf create-org-quota NAME [-m] [-i] [-r] [-a]` (admins).
pub async fn create_org_quota(c: &mut Client, name: &str, l: &LimitArgs) -> Result<()> {
    c.cfg.require_login()?;
    let (apps, routes) = l.create()?;
    println!("Creating org quota {} as {}...", bold(name), c.cfg.user().unwrap_or_default());
    let body = OrganizationQuotaCreate { name: name.to_owned(), apps, routes };
    let _: Ignored = c.post("/v3/organization_quotas", &body).await?;
    println!("OK");
    Ok(())
}

/// `cf update-org-quota NAME [-n NEW] [-m] [-i] [-r] [-a]` (admins): what is not given stays.
pub async fn update_org_quota(
    c: &mut Client,
    name: &str,
    new_name: Option<&str>,
    l: &LimitArgs,
) -> Result<()> {
    c.cfg.require_login()?;
    let body = update_body(new_name, l)?;
    let q = c.org_quota(name).await?;
    println!("Updating org quota {} as {}...", bold(name), c.cfg.user().unwrap_or_default());
    let _: Ignored = c.patch(&format!("/v3/organization_quotas/{}", q.guid), &body).await?;
    println!("OK");
    Ok(())
}

/// The PATCH body of an org or space quota: the name and limits given, at least one.
fn update_body(new_name: Option<&str>, l: &LimitArgs) -> Result<OrganizationQuotaUpdate> {
    let (apps, routes) = l.update()?;
    let body = OrganizationQuotaUpdate { name: new_name.map(str::to_owned), apps, routes };
    if body.is_empty() {
        return Err(CliError::Usage(
            "Incorrect usage: nothing to update; give -n, -m, -i, -r or -a".into(),
        ));
    }
    Ok(body)
}

/// `cf delete-org-quota QUOTA [-f]` (admins): refused while an org has it.
pub async fn delete_org_quota(c: &mut Client, name: &str, force: bool) -> Result<()> {
    c.cfg.require_login()?;
    if !force && !confirm(&format!("Really delete the org quota {name}?"))? {
        println!("Delete cancelled");
        return Ok(());
    }
    println!("Deleting org quota {} as {}...", bold(name), c.cfg.user().unwrap_or_default());
    match c.org_quota(name).await {
        Ok(q) => c.delete(&format!("/v3/organization_quotas/{}", q.guid)).await?,
        Err(CliError::NotFound(_)) => println!("Org quota '{name}' does not exist."),
        Err(e) => return Err(e),
    }
    println!("OK");
    Ok(())
}

/// `cf update-space-quota QUOTA [-n NEW] [limits]`, in the targeted org.
pub async fn update_space_quota(
    c: &mut Client,
    name: &str,
    new_name: Option<&str>,
    l: &LimitArgs,
) -> Result<()> {
    let o = c.cfg.require_org()?.clone();
    let body = update_body(new_name, l)?;
    let q = c.space_quota(&o.guid, name).await?;
    let who = c.cfg.user().unwrap_or_default();
    println!("Updating space quota {} for org {} as {who}...", bold(name), o.name);
    let _: Ignored = c.patch(&format!("/v3/space_quotas/{}", q.guid), &body).await?;
    println!("OK");
    Ok(())
}

/// `cf set-org-quota ORG QUOTA` (admins).
pub async fn set_org_quota(c: &mut Client, org_name: &str, quota: &str) -> Result<()> {
    let o = c.org(org_name).await?;
    let q = c.org_quota(quota).await?;
    let who = c.cfg.user().unwrap_or_default();
    println!("Setting quota {} to org {} as {who}...", bold(quota), bold(org_name));
    let body = ToMany { data: vec![Guid::new(o.guid)], ..ToMany::default() };
    let path = format!("/v3/organization_quotas/{}/relationships/organizations", q.guid);
    let _: Ignored = c.post(&path, &body).await?;
    println!("OK");
    Ok(())
}

/// `cf space-quotas`: those of the targeted org.
pub async fn space_quotas(c: &mut Client) -> Result<()> {
    let o = c.cfg.require_org()?.clone();
    let who = c.cfg.user().unwrap_or_default();
    println!("Getting space quotas for org {} as {who}...\n", bold(&o.name));
    let q = query(&[("organization_guids", &o.guid), ("order_by", "name")]);
    let list: Vec<SpaceQuota> = c.list(&format!("/v3/space_quotas{q}")).await?;
    let rows: Vec<Vec<String>> = list.iter().map(|q| row(&q.name, &q.apps, &q.routes)).collect();
    println!("{}", table(&COLUMNS, &rows));
    Ok(())
}

/// `cf space-quota NAME`, in the targeted org.
pub async fn space_quota(c: &mut Client, name: &str) -> Result<()> {
    let o = c.cfg.require_org()?.clone();
    let q = c.space_quota(&o.guid, name).await?;
    let who = c.cfg.user().unwrap_or_default();
    println!("Getting space quota {} for org {} as {who}...\n", bold(name), o.name);
    println!("{}", details(&q.apps, &q.routes));
    Ok(())
}

/// `cf create-space-quota NAME [-m] [-i] [-r] [-a]`, in the targeted org (org managers).
pub async fn create_space_quota(c: &mut Client, name: &str, l: &LimitArgs) -> Result<()> {
    let o = c.cfg.require_org()?.clone();
    let (apps, routes) = l.create()?;
    let who = c.cfg.user().unwrap_or_default();
    println!("Creating space quota {} for org {} as {who}...", bold(name), o.name);
    let body = SpaceQuotaCreate {
        name: name.to_owned(),
        apps,
        routes,
        relationships: SpaceQuotaCreateRelationships { organization: ToOne::of(&o.guid) },
    };
    let _: Ignored = c.post("/v3/space_quotas", &body).await?;
    println!("OK");
    Ok(())
}

/// `cf set-space-quota SPACE QUOTA` (`assign` true) and `cf unset-space-quota SPACE QUOTA`.
pub async fn assign_space_quota(
    c: &mut Client,
    space: &str,
    quota: &str,
    assign: bool,
) -> Result<()> {
    let o = c.cfg.require_org()?.clone();
    let s = c.space(&o.guid, space).await?;
    let q = c.space_quota(&o.guid, quota).await?;
    let who = c.cfg.user().unwrap_or_default();
    let base = format!("/v3/space_quotas/{}/relationships/spaces", q.guid);
    if assign {
        println!("Setting space quota {} to space {} as {who}...", bold(quota), bold(space));
        let body = ToMany { data: vec![Guid::new(&s.guid)], ..ToMany::default() };
        let _: Ignored = c.post(&base, &body).await?;
    } else {
        println!("Unassigning space quota {} from space {} as {who}...", bold(quota), bold(space));
        c.delete(&format!("{base}/{}", s.guid)).await?;
    }
    println!("OK");
    Ok(())
}

/// `cf delete-space-quota NAME [-f]`, in the targeted org: one that does not exist is
/// already deleted.
pub async fn delete_space_quota(c: &mut Client, name: &str, force: bool) -> Result<()> {
    let o = c.cfg.require_org()?.clone();
    if !force && !confirm(&format!("Really delete the space quota {name}?"))? {
        println!("Delete cancelled");
        return Ok(());
    }
    let who = c.cfg.user().unwrap_or_default();
    println!("Deleting space quota {} for org {} as {who}...", bold(name), o.name);
    match c.space_quota(&o.guid, name).await {
        Ok(q) => c.delete(&format!("/v3/space_quotas/{}", q.guid)).await?,
        Err(CliError::NotFound(_)) => println!("Space quota '{name}' does not exist."),
        Err(e) => return Err(e),
    }
    println!("OK");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_sizes_counts_and_minus_one() {
        assert_eq!(memory("-m", Some("1G")).ok(), Some(Some(Some(1024))));
        assert_eq!(memory("-m", Some("-1")).ok(), Some(Some(None)));
        assert_eq!(memory("-m", None).ok(), Some(None));
        assert!(matches!(memory("-m", Some("lots")), Err(CliError::Usage(_))));
        assert_eq!(count("-r", Some("10")).ok(), Some(Some(Some(10))));
        assert_eq!(count("-r", Some("-1")).ok(), Some(Some(None)));
        assert!(matches!(count("-r", Some("-2")), Err(CliError::Usage(_))));
        assert!(matches!(count("-r", Some("ten")), Err(CliError::Usage(_))));
    }

    #[test]
    fn memory_reads_as_cf_shows_it() {
        assert_eq!(mem(Some(512)), "512M");
        assert_eq!(mem(Some(10240)), "10G");
        assert_eq!(mem(None), "unlimited");
    }
}
