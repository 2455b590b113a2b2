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
                }),
                visibility: if broker.space_guid.is_empty() { "admin" } else { "space" }.into(),
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
    store::brokers::prune(&mut tx, &broker.guid, &keep_o, &keep_p).await?;
    tx.commit().await?;
    Ok(())
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
}
