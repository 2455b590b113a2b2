//! Service brokers and their catalogs: registering a broker reads its catalog
//! (`GET /v2/catalog`) and keeps its services and plans as offerings and plans; who sees a
//! plan (its visibility: `admin`, `public`, `organization` with a list of orgs, or `space`
//! for the plans of a space-scoped broker).

use serde_json::Value;

use crate::access::Caller;
use crate::domain::osb;
use crate::error::{ApiError, ApiResult};
use crate::store::brokers::{Broker, Offering, Plan};
use crate::store::{self, new_guid, now_ms};
use crate::AppState;

/// A catalog's services with their plans, checked as OSBAPI requires.
pub fn parse_catalog(
    v: &Value,
    broker: &Broker,
    now: i64,
) -> Result<Vec<(Offering, Vec<Plan>)>, String> {
    let services =
        v.get("services").and_then(Value::as_array).ok_or("the catalog has no 'services' list")?;
    let s_str = |o: &Value, k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
    let s_bool = |o: &Value, k: &str, d: bool| o.get(k).and_then(Value::as_bool).unwrap_or(d);
    let strings = |o: &Value, k: &str| -> Vec<String> {
        o.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    let mut ids = Vec::new();
    for (n, sv) in services.iter().enumerate() {
        let id = s_str(sv, "id").filter(|s| !s.is_empty());
        let name = s_str(sv, "name").filter(|s| !s.is_empty());
        let (Some(id), Some(name)) = (id, name) else {
            return Err(format!("service {n} needs an 'id' and a 'name'"));
        };
        if ids.contains(&id) {
            return Err(format!("service id '{id}' is used twice"));
        }
        ids.push(id.clone());
        let bindable = s_bool(sv, "bindable", false);
        let plan_updateable = s_bool(sv, "plan_updateable", false);
        let extra = sv.get("metadata").cloned().unwrap_or_else(|| serde_json::json!({}));
        let offering = Offering {
            guid: new_guid(),
            broker_guid: broker.guid.clone(),
            catalog_id: id.clone(),
            name: name.clone(),
            description: s_str(sv, "description").unwrap_or_default(),
            bindable,
            plan_updateable,
            instances_retrievable: s_bool(sv, "instances_retrievable", false),
            bindings_retrievable: s_bool(sv, "bindings_retrievable", false),
            shareable: extra.get("shareable").and_then(Value::as_bool).unwrap_or(false),
            tags: strings(sv, "tags"),
            requires: strings(sv, "requires"),
            extra,
            created_at: now,
            updated_at: now,
        };
        let plans = sv
            .get("plans")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| format!("service '{name}' has no plans"))?;
        let mut out_plans: Vec<Plan> = Vec::new();
        for (m, pv) in plans.iter().enumerate() {
            let pid = s_str(pv, "id").filter(|s| !s.is_empty());
            let pname = s_str(pv, "name").filter(|s| !s.is_empty());
            let (Some(pid), Some(pname)) = (pid, pname) else {
                return Err(format!("plan {m} of service '{name}' needs an 'id' and a 'name'"));
            };
            if out_plans.iter().any(|p| p.catalog_id == pid || p.name == pname) {
                return Err(format!("plan '{pname}' of service '{name}' is there twice"));
            }
            let maintenance = match pv.get("maintenance_info") {
                None | Some(Value::Null) => Value::Null,
                Some(m) => match m.get("version").and_then(Value::as_str) {
                    Some(v) if semver(v).is_some() => m.clone(),
                    _ => {
                        return Err(format!(
                            "plan '{pname}' of service '{name}': maintenance_info.version must be \
                             a semantic version such as 1.2.3 (got {})",
                            m.get("version").unwrap_or(&Value::Null)
                        ))
                    }
                },
            };
            out_plans.push(Plan {
                guid: new_guid(),
                offering_guid: String::new(),
                catalog_id: pid,
                name: pname,
                description: s_str(pv, "description").unwrap_or_default(),
                free: s_bool(pv, "free", true),
                bindable: s_bool(pv, "bindable", bindable),
                plan_updateable: s_bool(pv, "plan_updateable", plan_updateable),
                extra: serde_json::json!({
                    "metadata": pv.get("metadata").cloned().unwrap_or(Value::Null),
                    "schemas": pv.get("schemas").cloned().unwrap_or(Value::Null),
                    "maximum_polling_duration": pv.get("maximum_polling_duration").cloned().unwrap_or(Value::Null),
                    "maintenance_info": maintenance,
                }),
                visibility: if broker.space_guid.is_empty() { "admin" } else { "space" }.into(),
                active: true,
                created_at: now,
                updated_at: now,
            });
        }
        out.push((offering, out_plans));
    }
    Ok(out)
}

/// Read the broker's catalog and keep it: new services and plans are added (plans of a
/// global broker visible to admins only until access is enabled), changed ones updated, gone
/// ones removed unless instances use them. A catalog that cannot be read or is not valid
/// fails with the broker's words.
pub async fn sync_catalog(s: &AppState, broker: &Broker, user: &str) -> ApiResult<()> {
    let raw = osb::catalog(s, broker, user).await.map_err(|f| match f {
        osb::Failure::Rejected { .. }
        | osb::Failure::Failed { .. }
        | osb::Failure::Unreachable(_) => ApiError::CatalogInvalid(f.describe(&broker.name)),
        osb::Failure::BadResponse(why) => ApiError::CatalogInvalid(why),
    })?;
    let parsed = parse_catalog(&raw, broker, now_ms()).map_err(ApiError::CatalogInvalid)?;
    let mut tx = store::begin(&s.db).await?;
    let (mut keep_o, mut keep_p) = (Vec::new(), Vec::new());
    for (o, plans) in parsed {
        let og = store::brokers::upsert_offering(&mut tx, &o).await?;
        for mut p in plans {
            p.offering_guid.clone_from(&og);
            keep_p.push(store::brokers::upsert_plan(&mut tx, &p).await?);
        }
        keep_o.push(og);
    }
    store::brokers::prune(&mut tx, &broker.guid, &keep_o, &keep_p, now_ms()).await?;
    tx.commit().await?;
    Ok(())
}

/// A semantic version (`MAJOR.MINOR.PATCH`, with an optional `-pre` and `+build`) as its
/// three numbers and the pre-release (`None`: not one).
pub fn semver(v: &str) -> Option<(u64, u64, u64, String)> {
    let core_pre = v.split_once('+').map_or(v, |(c, build)| if build.is_empty() { "" } else { c });
    let (core, pre) = core_pre.split_once('-').unwrap_or((core_pre, ""));
    if core_pre.ends_with('-') {
        return None;
    }
    let n: Vec<u64> = core
        .split('.')
        .map(|p| {
            (!p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p == "0" || !p.starts_with('0')))
            .then(|| p.parse().ok())
            .flatten()
        })
        .collect::<Option<_>>()?;
    let ok_pre = pre
        .split('.')
        .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    match n[..] {
        [a, b, c] if pre.is_empty() || ok_pre => Some((a, b, c, pre.to_owned())),
        _ => None,
    }
}

/// The brokers, offerings, plans and plan orgs, read once for a visibility decision.
pub struct Catalog {
    pub brokers: Vec<Broker>,
    pub offerings: Vec<Offering>,
    pub plans: Vec<Plan>,
    pub plan_orgs: Vec<(String, String)>,
}

impl Catalog {
    pub async fn load(s: &AppState) -> ApiResult<Self> {
        Ok(Self {
            brokers: store::brokers::all_brokers(&s.db.pool).await?,
            offerings: store::brokers::all_offerings(&s.db.pool).await?,
            plans: store::brokers::all_plans(&s.db.pool).await?,
            plan_orgs: store::brokers::all_plan_orgs(&s.db.pool).await?,
        })
    }

    pub fn offering(&self, guid: &str) -> Option<&Offering> {
        self.offerings.iter().find(|o| o.guid == guid)
    }

    pub fn broker(&self, guid: &str) -> Option<&Broker> {
        self.brokers.iter().find(|b| b.guid == guid)
    }

    /// Whether any plan of the offering is in its broker's catalog.
    pub fn offering_available(&self, guid: &str) -> bool {
        self.plans.iter().any(|p| p.offering_guid == guid && p.active)
    }

    /// The broker of a plan.
    pub fn broker_of(&self, p: &Plan) -> Option<&Broker> {
        self.offering(&p.offering_guid).and_then(|o| self.broker(&o.broker_guid))
    }

    /// The orgs a plan of `organization` visibility is enabled for.
    pub fn orgs_of(&self, plan: &str) -> Vec<String> {
        self.plan_orgs.iter().filter(|(p, _)| p == plan).map(|(_, o)| o.clone()).collect()
    }

    /// Whether a plan may be used in `space` of `org` (by anyone with a role there).
    pub fn plan_in_space(&self, p: &Plan, org: &str, space: &str) -> bool {
        match p.visibility.as_str() {
            "public" => true,
            "organization" => self.plan_orgs.iter().any(|(pl, o)| pl == &p.guid && o == org),
            "space" => self.broker_of(p).is_some_and(|b| b.space_guid == space),
            _ => false,
        }
    }

    /// Whether a plan is visible to the caller (`spaces`: the spaces it has roles in with their
    /// orgs; `None`: it sees everything).
    pub fn plan_visible(&self, p: &Plan, spaces: &Option<Vec<(String, String)>>) -> bool {
        match spaces {
            None => true,
            Some(list) => {
                p.visibility == "public"
                    || list.iter().any(|(sp, o)| self.plan_in_space(p, o, sp))
                    || (p.visibility == "organization"
                        && list.iter().any(|(_, o)| self.orgs_of(&p.guid).contains(o)))
            }
        }
    }
}

/// The `(space, org)` pairs the caller has a role in (org roles count for every space of the
/// org), or `None` for admins and global readers.
pub async fn caller_spaces(c: &Caller, s: &AppState) -> ApiResult<Option<Vec<(String, String)>>> {
    let Some(spaces) = c.visible_spaces().await? else { return Ok(None) };
    let mut out = Vec::new();
    for sp in spaces {
        if let Some(space) = store::spaces::find(&s.db.pool, &sp).await? {
            out.push((space.guid, space.org_guid));
        }
    }
    let orgs = c.visible_orgs().await?.unwrap_or_default();
    for o in orgs {
        if !out.iter().any(|(_, org)| *org == o) {
            out.push((String::new(), o));
        }
    }
    Ok(Some(out))
}

/// Remove a broker with its offerings and plans; refused while instances use its plans.
pub async fn delete(s: &AppState, broker: &Broker) -> ApiResult<()> {
    let n = store::brokers::instances_of_broker(&s.db.pool, &broker.guid).await?;
    if n > 0 {
        return Err(ApiError::Unprocessable(format!(
            "Can not remove brokers that have associated service instances: {}",
            broker.name
        )));
    }
    let mut tx = store::begin(&s.db).await?;
    store::brokers::delete_broker_rows(&mut tx, &broker.guid).await?;
    tx.commit().await?;
    Ok(())
}

/// Remove an offering with its plans. Without `purge`, refused while it has plans (CC's rule:
/// the plans go first, or all of it with `purge`); with it, refused while instances remain
/// (the caller purges them first).
pub async fn delete_offering(s: &AppState, o: &Offering, purge: bool) -> ApiResult<()> {
    let mut tx = store::begin(&s.db).await?;
    let plans = store::brokers::all_plans(&mut *tx).await?;
    if !purge && plans.iter().any(|p| p.offering_guid == o.guid) {
        return Err(ApiError::Unprocessable(
            "Please delete the service_plans associations for your services.".into(),
        ));
    }
    if !store::brokers::instances_of_offering(&mut *tx, &o.guid).await?.is_empty() {
        return Err(ApiError::Unprocessable(
            "Please delete the service_instances associations for your services.".into(),
        ));
    }
    store::brokers::delete_offering_rows(&mut tx, &o.guid).await?;
    tx.commit().await?;
    Ok(())
}

/// Remove a plan no instance uses.
pub async fn delete_plan(s: &AppState, p: &Plan) -> ApiResult<()> {
    let mut tx = store::begin(&s.db).await?;
    if !store::brokers::instances_of_plan(&mut *tx, &p.guid).await?.is_empty() {
        return Err(ApiError::Unprocessable(
            "Please delete the service_instances associations for your service_plans.".into(),
        ));
    }
    store::brokers::delete_plan_rows(&mut tx, &p.guid).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn broker(space: &str) -> Broker {
        Broker {
            guid: "b".into(),
            name: "b".into(),
            url: "http://b".into(),
            username: "u".into(),
            password: "p".into(),
            space_guid: space.into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_catalog_needs_ids_names_and_plans() {
        let good = json!({"services": [{"id": "s", "name": "db", "bindable": true,
            "plans": [{"id": "p", "name": "small"}]}]});
        let parsed = parse_catalog(&good, &broker(""), 1).expect("valid");
        assert_eq!(parsed[0].1[0].visibility, "admin");
        assert!(parsed[0].1[0].bindable);
        assert_eq!(
            parse_catalog(&good, &broker("sp"), 1).expect("valid")[0].1[0].visibility,
            "space"
        );
        for bad in [
            json!({}),
            json!({"services": [{"id": "s", "name": "db", "plans": []}]}),
            json!({"services": [{"name": "db", "plans": [{"id": "p", "name": "x"}]}]}),
            json!({"services": [{"id": "s", "name": "db", "plans": [{"id": "p", "name": "x"}, {"id": "p", "name": "y"}]}]}),
        ] {
            assert!(parse_catalog(&bad, &broker(""), 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_plan_version_is_a_semantic_version() {
        for good in ["1.2.3", "0.0.0", "10.20.30", "1.0.0-rc.1", "1.0.0+build.5", "2.1.0-beta+x"] {
            assert!(semver(good).is_some(), "{good}");
        }
        for bad in ["", "1", "1.2", "1.2.3.4", "01.2.3", "a.b.c", "1.2.3-", "1.2.3+", "1.2.-3"] {
            assert!(semver(bad).is_none(), "{bad}");
        }
        let plan = |m: Value| {
            json!({"services": [{"id": "s", "name": "db",
                "plans": [{"id": "p", "name": "small", "maintenance_info": m}]}]})
        };
        let ok = parse_catalog(
            &plan(json!({"version": "2.0.0", "description": "PG 16"})),
            &broker(""),
            1,
        )
        .expect("valid");
        assert_eq!(ok[0].1[0].extra["maintenance_info"]["version"], "2.0.0");
        let e = parse_catalog(&plan(json!({"version": "two"})), &broker(""), 1).expect_err("bad");
        assert!(e.contains("semantic version"), "{e}");
        assert!(parse_catalog(&plan(json!({"description": "x"})), &broker(""), 1).is_err());
    }
}
