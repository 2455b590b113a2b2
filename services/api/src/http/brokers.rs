//! Managed services' catalog side (docs/api.md, "Service brokers"): `/v3/service_brokers`
//! (registering, updating and removing a broker are jobs that read its catalog),
//! `/v3/service_offerings`, `/v3/service_plans` and `/v3/service_plans/:guid/visibility`.
//! Global brokers are the admin's; space-scoped brokers belong to their space's developers
//! and their plans are seen in that space only.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{json, Value};
use wire::v3::service_broker::ServiceBrokerRelationships;
use wire::v3::service_offering::{OfferingCatalog, OfferingFeatures, ServiceOfferingRelationships};
use wire::v3::service_plan::{PlanCatalog, PlanFeatures, ServicePlanRelationships, VisibleOrg};
use wire::v3::{self, Link, Metadata, Page, ToOne};

use crate::access::{Caller, Need};
use crate::domain::brokers::{self, Catalog};
use crate::domain::events::{self, Actor, Target};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::list::Query;
use crate::http::util::{links, ts};
use crate::store::brokers::{Broker, Offering, Plan};
use crate::store::{self, new_guid, now_ms};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/service_brokers", get(list_brokers).post(create_broker))
        .route(
            "/v3/service_brokers/{guid}",
            get(show_broker).patch(update_broker).delete(delete_broker),
        )
        .route("/v3/service_offerings", get(list_offerings))
        .route(
            "/v3/service_offerings/{guid}",
            get(show_offering).patch(update_offering).delete(delete_offering),
        )
        .route("/v3/service_plans", get(list_plans))
        .route("/v3/service_plans/{guid}", get(show_plan).patch(update_plan).delete(delete_plan))
        .route(
            "/v3/service_plans/{guid}/visibility",
            get(show_visibility).patch(replace_visibility).post(add_visibility),
        )
        .route("/v3/service_plans/{guid}/visibility/{org}", delete(remove_visibility))
}

impl Broker {
    fn present(&self, s: &AppState) -> v3::ServiceBroker {
        let base = format!("{}/service_brokers/{}", s.v3(), self.guid);
        let mut l = links([
            ("self", Link::new(base)),
            (
                "service_offerings",
                Link::new(format!(
                    "{}/service_offerings?service_broker_guids={}",
                    s.v3(),
                    self.guid
                )),
            ),
        ]);
        let space = (!self.space_guid.is_empty()).then(|| {
            l.insert("space".into(), Link::new(format!("{}/spaces/{}", s.v3(), self.space_guid)));
            ToOne::of(&self.space_guid)
        });
        v3::ServiceBroker {
            guid: self.guid.clone(),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            name: self.name.clone(),
            url: self.url.clone(),
            relationships: ServiceBrokerRelationships { space },
            metadata: Metadata::default(),
            links: l,
        }
    }
}

impl Offering {
    /// `available`: whether any of its plans is still in the broker's catalog.
    fn present(&self, s: &AppState, available: bool) -> v3::ServiceOffering {
        let base = format!("{}/service_offerings/{}", s.v3(), self.guid);
        v3::ServiceOffering {
            guid: self.guid.clone(),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            name: self.name.clone(),
            description: self.description.clone(),
            available,
            tags: self.tags.clone(),
            requires: self.requires.clone(),
            shareable: self.shareable,
            documentation_url: self
                .extra
                .get("documentationUrl")
                .and_then(Value::as_str)
                .map(str::to_owned),
            broker_catalog: OfferingCatalog {
                id: self.catalog_id.clone(),
                metadata: self.extra.clone(),
                features: OfferingFeatures {
                    plan_updateable: self.plan_updateable,
                    bindable: self.bindable,
                    instances_retrievable: self.instances_retrievable,
                    bindings_retrievable: self.bindings_retrievable,
                    allow_context_updates: false,
                },
            },
            relationships: ServiceOfferingRelationships {
                service_broker: ToOne::of(&self.broker_guid),
            },
            metadata: Metadata::default(),
            links: links([
                ("self", Link::new(base)),
                (
                    "service_plans",
                    Link::new(format!(
                        "{}/service_plans?service_offering_guids={}",
                        s.v3(),
                        self.guid
                    )),
                ),
                (
                    "service_broker",
                    Link::new(format!("{}/service_brokers/{}", s.v3(), self.broker_guid)),
                ),
            ]),
        }
    }
}

impl Plan {
    pub fn present(&self, s: &AppState) -> v3::ServicePlan {
        let base = format!("{}/service_plans/{}", s.v3(), self.guid);
        let schema = |path: [&str; 2]| {
            self.extra
                .get("schemas")
                .and_then(|v| v.get(path[0]))
                .and_then(|v| v.get(path[1]))
                .cloned()
                .filter(|v| !v.is_null())
                .unwrap_or_else(|| json!({}))
        };
        v3::ServicePlan {
            guid: self.guid.clone(),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            name: self.name.clone(),
            description: self.description.clone(),
            visibility_type: self.visibility.clone(),
            available: self.active,
            free: self.free,
            costs: costs(self.extra.get("metadata")),
            maintenance_info: self
                .extra
                .get("maintenance_info")
                .filter(|m| !m.is_null())
                .cloned()
                .unwrap_or_else(|| json!({})),
            broker_catalog: PlanCatalog {
                id: self.catalog_id.clone(),
                metadata: self.extra.get("metadata").cloned().unwrap_or(Value::Null),
                maximum_polling_duration: self
                    .extra
                    .get("maximum_polling_duration")
                    .and_then(Value::as_i64),
                features: PlanFeatures {
                    plan_updateable: self.plan_updateable,
                    bindable: self.bindable,
                },
            },
            schemas: json!({
                "service_instance": {
                    "create": schema(["service_instance", "create"]),
                    "update": schema(["service_instance", "update"]),
                },
                "service_binding": {"create": schema(["service_binding", "create"])},
            }),
            relationships: ServicePlanRelationships {
                service_offering: ToOne::of(&self.offering_guid),
            },
            metadata: Metadata::default(),
            links: links([
                ("self", Link::new(base.clone())),
                (
                    "service_offering",
                    Link::new(format!("{}/service_offerings/{}", s.v3(), self.offering_guid)),
                ),
                ("visibility", Link::new(format!("{base}/visibility"))),
            ]),
        }
    }
}

/// A plan's costs as CC shows them, one per currency, from the catalog's
/// `metadata.costs` (`[{"amount": {"usd": 9.5}, "unit": "MONTHLY"}]`).
fn costs(metadata: Option<&Value>) -> Vec<Value> {
    let Some(list) = metadata.and_then(|m| m.get("costs")).and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for c in list {
        let unit = c.get("unit").and_then(Value::as_str).unwrap_or_default();
        if let Some(amounts) = c.get("amount").and_then(Value::as_object) {
            for (currency, amount) in amounts {
                if let Some(a) = amount.as_f64() {
                    out.push(
                        json!({"amount": a, "currency": currency.to_uppercase(), "unit": unit}),
                    );
                }
            }
        }
    }
    out
}

fn target<'a>(b: &'a Broker, org: &'a str) -> Target<'a> {
    Target { guid: &b.guid, kind: "service_broker", name: &b.name, space: &b.space_guid, org }
}

/// Whether the caller may see a broker: admins and global readers all, space developers the
/// brokers of their spaces.
async fn broker_visible(c: &Caller, s: &AppState, b: &Broker) -> ApiResult<bool> {
    if c.global_reader() {
        return Ok(true);
    }
    if b.space_guid.is_empty() {
        return Ok(false);
    }
    let Some(space) = store::spaces::find(&s.db.pool, &b.space_guid).await? else {
        return Ok(false);
    };
    Ok(c.require_space(&space.guid, &space.org_guid, "Service broker", Need::Developer)
        .await
        .is_ok())
}

async fn require_broker(s: &AppState, c: &Caller, guid: &str, write: bool) -> ApiResult<Broker> {
    const WHAT: &str = "Service broker";
    let b = store::brokers::find_broker(&s.db.pool, guid).await?.ok_or(ApiError::NotFound(WHAT))?;
    if !broker_visible(c, s, &b).await? {
        return Err(ApiError::NotFound(WHAT));
    }
    if write && b.space_guid.is_empty() && !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    Ok(b)
}

async fn list_brokers(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::ServiceBroker>>> {
    let q =
        Query::parse(&s, q.as_deref(), "service_brokers", &["names", "space_guids"], &["name"])?;
    let mut out = Vec::new();
    for b in store::brokers::all_brokers(&s.db.pool).await? {
        if q.filter("names").is_some_and(|n| !n.contains(&b.name))
            || q.filter("space_guids").is_some_and(|n| !n.contains(&b.space_guid))
            || !broker_visible(&c, &s, &b).await?
        {
            continue;
        }
        out.push(b.present(&s));
    }
    Ok(Json(q.page_of(out)))
}

async fn show_broker(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::ServiceBroker>> {
    Ok(Json(require_broker(&s, &c, &guid, false).await?.present(&s)))
}

/// `name`, `url` and `authentication` of a create or update (`None`: not given).
#[allow(clippy::type_complexity)]
fn broker_fields(
    req: &Value,
) -> ApiResult<(Option<String>, Option<String>, Option<(String, String)>)> {
    let bad = |m: &str| ApiError::Unprocessable(m.to_owned());
    let name = match req.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) if !n.trim().is_empty() => Some(n.clone()),
        Some(_) => return Err(bad("Name must be a non-empty string")),
    };
    let url = match req.get("url") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) => {
            let ok = url::Url::parse(u)
                .is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.host().is_some());
            if !ok {
                return Err(bad("Url must be a valid url"));
            }
            Some(u.clone())
        }
        Some(_) => return Err(bad("Url must be a string")),
    };
    let auth = match req.get("authentication") {
        None | Some(Value::Null) => None,
        Some(a) => {
            if a.get("type").and_then(Value::as_str) != Some("basic") {
                return Err(bad("Authentication type must be equal to basic"));
            }
            let cred = |k: &str| {
                a.get("credentials")
                    .and_then(|c| c.get(k))
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
            };
            match (cred("username"), cred("password")) {
                (Some(u), Some(p)) => Some((u, p)),
                _ => {
                    return Err(bad(
                        "Authentication credentials must have a username and a password",
                    ))
                }
            }
        }
    };
    Ok((name, url, auth))
}

async fn create_broker(
    State(s): State<AppState>,
    c: Caller,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Response> {
    let (name, url, auth) = broker_fields(&req)?;
    let name = name.ok_or_else(|| ApiError::Unprocessable("Name must be a string".into()))?;
    let url = url.ok_or_else(|| ApiError::Unprocessable("Url must be a string".into()))?;
    let (username, password) =
        auth.ok_or_else(|| ApiError::Unprocessable("Authentication must be an object".into()))?;
    let space_guid = match req.pointer("/relationships/space") {
        None | Some(Value::Null) => String::new(),
        Some(_) => crate::http::util::rel_guid(&req, "space")?,
    };
    let mut org = String::new();
    if space_guid.is_empty() {
        if !c.admin() {
            return Err(ApiError::NotAuthorized);
        }
    } else {
        let invalid = || {
            ApiError::Unprocessable(
                "Invalid space. Ensure that the space exists and you have access to it.".into(),
            )
        };
        let space = store::spaces::find(&s.db.pool, &space_guid).await?.ok_or_else(invalid)?;
        if !c.space_readable(&space.guid, &space.org_guid).await? {
            return Err(invalid());
        }
        c.require_space(&space.guid, &space.org_guid, "Space", Need::Developer).await?;
        org = space.org_guid;
    }
    let now = now_ms();
    let b = Broker {
        guid: new_guid(),
        name,
        url,
        username,
        password,
        space_guid,
        created_at: now,
        updated_at: now,
    };
    store::brokers::insert_broker(&s.db.pool, &b, || {
        ApiError::Uniqueness(format!("Name must be unique (a broker named '{}' exists)", b.name))
    })
    .await?;
    events::record(
        &s,
        "audit.service_broker.create",
        &Actor::of(&c),
        &target(&b, &org),
        json!({"request": {"name": b.name, "url": b.url}}),
    )
    .await;
    let (s2, b2, user) = (s.clone(), b.clone(), c.guid().to_owned());
    let work = async move {
        let synced = brokers::sync_catalog(&s2, &b2, &user).await;
        if synced.is_err() {
            // A broker whose catalog was never read is of no use: it goes, so the same name
            // can be registered again once the broker is fixed.
            let _ = brokers::delete(&s2, &b2).await;
        }
        synced
    };
    let job = crate::domain::jobs::spawn(
        &s,
        "service_broker.catalog.synchronize",
        "service_brokers",
        &b.guid,
        work,
    )
    .await?;
    Ok(crate::http::jobs::accepted(&s, &job))
}

async fn update_broker(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Response> {
    let mut b = require_broker(&s, &c, &guid, true).await?;
    let (name, url, auth) = broker_fields(&req)?;
    if let Some(n) = name {
        b.name = n;
    }
    if let Some(u) = url {
        b.url = u;
    }
    if let Some((u, p)) = auth {
        b.username = u;
        b.password = p;
    }
    b.updated_at = now_ms();
    let (s2, b2, user) = (s.clone(), b.clone(), c.guid().to_owned());
    let work = async move {
        // The new URL and credentials are kept only when the catalog can be read with them.
        brokers::sync_catalog(&s2, &b2, &user).await?;
        store::brokers::update_broker(&s2.db.pool, &b2, || {
            ApiError::Uniqueness(format!(
                "Name must be unique (a broker named '{}' exists)",
                b2.name
            ))
        })
        .await
    };
    let job =
        crate::domain::jobs::spawn(&s, "service_broker.update", "service_brokers", &b.guid, work)
            .await?;
    events::record(&s, "audit.service_broker.update", &Actor::of(&c), &target(&b, ""), json!({}))
        .await;
    Ok(crate::http::jobs::accepted(&s, &job))
}

async fn delete_broker(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    let b = require_broker(&s, &c, &guid, true).await?;
    let (s2, b2) = (s.clone(), b.clone());
    let job = crate::domain::jobs::run(&s, "service_broker.delete", "", "", async move {
        brokers::delete(&s2, &b2).await
    })
    .await?;
    events::record(&s, "audit.service_broker.delete", &Actor::of(&c), &target(&b, ""), json!({}))
        .await;
    Ok(crate::http::jobs::accepted(&s, &job))
}

/// The filters of offerings and plans that name brokers, offerings, orgs and spaces.
struct Scope {
    spaces: Option<Vec<(String, String)>>,
}

impl Scope {
    /// Whether a plan passes `space_guids` / `organization_guids` (visible there) and the
    /// caller may see it.
    async fn plan_ok(&self, cat: &Catalog, s: &AppState, q: &Query, p: &Plan) -> ApiResult<bool> {
        if !cat.plan_visible(p, &self.spaces) {
            return Ok(false);
        }
        if q.filter("available").is_some_and(|v| !v.contains(&p.active.to_string())) {
            return Ok(false);
        }
        if let Some(spaces) = q.filter("space_guids") {
            let mut any = false;
            for sp in spaces {
                if let Some(space) = store::spaces::find(&s.db.pool, sp).await? {
                    any |= cat.plan_in_space(p, &space.org_guid, &space.guid);
                }
            }
            if !any {
                return Ok(false);
            }
        }
        if let Some(orgs) = q.filter("organization_guids") {
            if !orgs.iter().any(|o| cat.plan_in_space(p, o, "")) {
                return Ok(false);
            }
        }
        let o = cat.offering(&p.offering_guid);
        let b = cat.broker_of(p);
        Ok(q.filter("names").is_none_or(|n| n.contains(&p.name))
            && q.filter("service_offering_guids").is_none_or(|n| n.contains(&p.offering_guid))
            && q.filter("service_offering_names")
                .is_none_or(|n| o.is_some_and(|o| n.contains(&o.name)))
            && q.filter("service_broker_guids")
                .is_none_or(|n| b.is_some_and(|b| n.contains(&b.guid)))
            && q.filter("service_broker_names")
                .is_none_or(|n| b.is_some_and(|b| n.contains(&b.name))))
    }
}

const PLAN_FILTERS: [&str; 12] = [
    "guids",
    "names",
    "available",
    "service_broker_guids",
    "service_broker_names",
    "service_offering_guids",
    "service_offering_names",
    "space_guids",
    "organization_guids",
    "include",
    "fields[service_offering.service_broker]",
    "label_selector",
];

async fn list_plans(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::ServicePlan>>> {
    let q = Query::parse(&s, q.as_deref(), "service_plans", &PLAN_FILTERS, &["name"])?;
    let cat = Catalog::load(&s).await?;
    let scope = Scope { spaces: brokers::caller_spaces(&c, &s).await? };
    let mut out = Vec::new();
    for p in &cat.plans {
        if q.filter("guids").is_some_and(|g| !g.contains(&p.guid)) {
            continue;
        }
        if scope.plan_ok(&cat, &s, &q, p).await? {
            out.push(p.present(&s));
        }
    }
    let mut page = q.page_of(out);
    // `include=service_offering` and `fields[service_offering.service_broker]`, as cf's
    // marketplace asks for them.
    let offering_guids: Vec<String> = page
        .resources
        .iter()
        .filter_map(|p| p.relationships.service_offering.guid().map(str::to_owned))
        .collect();
    let offerings: Vec<&Offering> =
        cat.offerings.iter().filter(|o| offering_guids.contains(&o.guid)).collect();
    let mut included = v3::Included::default();
    if q.filter("include").is_some_and(|i| i.iter().any(|x| x == "service_offering")) {
        included.service_offerings = Some(
            offerings.iter().map(|o| o.present(&s, cat.offering_available(&o.guid))).collect(),
        );
    }
    if q.filter("fields[service_offering.service_broker]").is_some() {
        included.service_brokers = Some(brokers_of(&cat, &offerings));
    }
    if included != v3::Included::default() {
        page.included = Some(included);
    }
    Ok(Json(page))
}

/// The brokers of `offerings`, each once, as `{guid, name}`.
fn brokers_of(cat: &Catalog, offerings: &[&Offering]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for o in offerings {
        if let Some(b) = cat.broker(&o.broker_guid) {
            if !out.iter().any(|x| x["guid"] == b.guid.as_str()) {
                out.push(json!({"guid": b.guid, "name": b.name}));
            }
        }
    }
    out
}

/// A plan the caller may see (404 otherwise).
async fn require_plan(s: &AppState, c: &Caller, guid: &str) -> ApiResult<(Plan, Catalog)> {
    let cat = Catalog::load(s).await?;
    let spaces = brokers::caller_spaces(c, s).await?;
    let p = cat
        .plans
        .iter()
        .find(|p| p.guid == guid && cat.plan_visible(p, &spaces))
        .cloned()
        .ok_or(ApiError::NotFound("Service plan"))?;
    Ok((p, cat))
}

async fn show_plan(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::ServicePlan>> {
    Ok(Json(require_plan(&s, &c, &guid).await?.0.present(&s)))
}

const OFFERING_FILTERS: [&str; 9] = [
    "guids",
    "names",
    "available",
    "service_broker_guids",
    "service_broker_names",
    "space_guids",
    "organization_guids",
    "fields[service_broker]",
    "label_selector",
];

async fn list_offerings(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::ServiceOffering>>> {
    let q = Query::parse(&s, q.as_deref(), "service_offerings", &OFFERING_FILTERS, &["name"])?;
    let cat = Catalog::load(&s).await?;
    let scope = Scope { spaces: brokers::caller_spaces(&c, &s).await? };
    let mut out = Vec::new();
    for o in &cat.offerings {
        if q.filter("guids").is_some_and(|g| !g.contains(&o.guid))
            || q.filter("names").is_some_and(|g| !g.contains(&o.name))
        {
            continue;
        }
        let mut visible = false;
        for p in cat.plans.iter().filter(|p| p.offering_guid == o.guid) {
            // `names` names offerings here, not plans.
            let mut pq_ok = scope.plan_ok(&cat, &s, &q, p).await?;
            if q.filter("names").is_some() {
                pq_ok = cat.plan_visible(p, &scope.spaces)
                    && q.filter("service_broker_names").is_none_or(|n| {
                        cat.broker(&o.broker_guid).is_some_and(|b| n.contains(&b.name))
                    });
            }
            visible |= pq_ok;
        }
        let available = cat.plans.iter().any(|p| p.offering_guid == o.guid && p.active);
        if visible && q.filter("available").is_none_or(|v| v.contains(&available.to_string())) {
            out.push(o.present(&s, available));
        }
    }
    let mut page = q.page_of(out);
    if q.filter("fields[service_broker]").is_some() {
        let shown: Vec<&Offering> = cat
            .offerings
            .iter()
            .filter(|o| page.resources.iter().any(|r| r.guid == o.guid))
            .collect();
        page.included = Some(v3::Included {
            service_brokers: Some(brokers_of(&cat, &shown)),
            ..Default::default()
        });
    }
    Ok(Json(page))
}

/// An offering the caller may see (404 otherwise).
async fn require_offering(s: &AppState, c: &Caller, guid: &str) -> ApiResult<(Offering, Catalog)> {
    let cat = Catalog::load(s).await?;
    let spaces = brokers::caller_spaces(c, s).await?;
    let o = cat
        .offering(guid)
        .filter(|o| {
            cat.plans.iter().any(|p| p.offering_guid == o.guid && cat.plan_visible(p, &spaces))
        })
        .cloned()
        .ok_or(ApiError::NotFound("Service offering"))?;
    Ok((o, cat))
}

async fn show_offering(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::ServiceOffering>> {
    let (o, cat) = require_offering(&s, &c, &guid).await?;
    Ok(Json(o.present(&s, cat.offering_available(&o.guid))))
}

/// Whether the caller may change or remove what a broker offers: admins any, space
/// developers those of their space's broker.
async fn may_manage(s: &AppState, c: &Caller, broker: Option<&Broker>) -> ApiResult<()> {
    if c.admin() {
        return Ok(());
    }
    match broker.filter(|b| !b.space_guid.is_empty()) {
        Some(b) if broker_visible(c, s, b).await? => Ok(()),
        _ => Err(ApiError::NotAuthorized),
    }
}

/// Labels and annotations only.
async fn update_offering(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<v3::ServiceOffering>> {
    crate::http::metadata::only_metadata(&req)?;
    let (o, cat) = require_offering(&s, &c, &guid).await?;
    may_manage(&s, &c, cat.broker(&o.broker_guid)).await?;
    Ok(Json(o.present(&s, cat.offering_available(&o.guid))))
}

/// `DELETE /v3/service_offerings/:guid`: an offering whose plans are gone; with `purge=true`
/// its plans, instances, bindings and keys go too and the broker is not asked (for when the
/// broker is gone).
async fn delete_offering(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<StatusCode> {
    let (o, cat) = require_offering(&s, &c, &guid).await?;
    let broker = cat.broker(&o.broker_guid);
    may_manage(&s, &c, broker).await?;
    let purge = q.as_deref().is_some_and(|q| q.split('&').any(|kv| kv == "purge=true"));
    let org = match broker.filter(|b| !b.space_guid.is_empty()) {
        Some(b) => store::spaces::find(&s.db.pool, &b.space_guid).await?.map(|sp| sp.org_guid),
        None => None,
    };
    let actor = Actor::of(&c);
    if purge {
        for i in store::brokers::instances_of_offering(&s.db.pool, &o.guid).await? {
            if let Some(inst) = store::services::find(&s.db.pool, &i).await? {
                crate::http::managed::forget_instance(&s, &i, &actor).await?;
                if let Some(space) = store::spaces::find(&s.db.pool, &inst.space_guid).await? {
                    let t = space.target(&inst.guid, "service_instance", &inst.name);
                    events::record(&s, "audit.service_instance.purge", &actor, &t, json!({})).await;
                }
            }
        }
    }
    brokers::delete_offering(&s, &o, purge).await?;
    let t = Target {
        guid: &o.guid,
        kind: "service",
        name: &o.name,
        space: broker.map_or("", |b| b.space_guid.as_str()),
        org: org.as_deref().unwrap_or(""),
    };
    let kind = if purge { "audit.service.purge" } else { "audit.service.delete" };
    events::record(&s, kind, &actor, &t, json!({"request": {"purge": purge}})).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Labels and annotations only.
async fn update_plan(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<v3::ServicePlan>> {
    crate::http::metadata::only_metadata(&req)?;
    let (p, cat) = require_plan(&s, &c, &guid).await?;
    may_manage(&s, &c, cat.broker_of(&p)).await?;
    Ok(Json(p.present(&s)))
}

/// `DELETE /v3/service_plans/:guid`: a plan no instance uses (typically one its broker's
/// catalog dropped).
async fn delete_plan(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<StatusCode> {
    let (p, cat) = require_plan(&s, &c, &guid).await?;
    may_manage(&s, &c, cat.broker_of(&p)).await?;
    brokers::delete_plan(&s, &p).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn visibility_of(
    s: &AppState,
    c: &Caller,
    p: &Plan,
    cat: &Catalog,
) -> ApiResult<v3::PlanVisibility> {
    let mut v = v3::PlanVisibility { kind: p.visibility.clone(), ..Default::default() };
    match p.visibility.as_str() {
        "organization" => {
            let visible = c.visible_orgs().await?;
            let mut orgs = Vec::new();
            for o in cat.orgs_of(&p.guid) {
                if visible.as_ref().is_some_and(|v| !v.contains(&o)) {
                    continue;
                }
                let name = store::orgs::find(&s.db.pool, &o).await?.map(|o| o.name);
                orgs.push(VisibleOrg { guid: o, name });
            }
            v.organizations = Some(orgs);
        }
        "space" => {
            if let Some(b) = cat.broker_of(p) {
                let name = store::spaces::find(&s.db.pool, &b.space_guid).await?.map(|s| s.name);
                v.space = Some(VisibleOrg { guid: b.space_guid.clone(), name });
            }
        }
        _ => {}
    }
    Ok(v)
}

async fn show_visibility(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::PlanVisibility>> {
    let (p, cat) = require_plan(&s, &c, &guid).await?;
    Ok(Json(visibility_of(&s, &c, &p, &cat).await?))
}

/// Set (`replace`) or extend a plan's visibility (admins only).
async fn set_visibility(
    s: &AppState,
    c: &Caller,
    guid: &str,
    req: &Value,
    replace: bool,
) -> ApiResult<v3::PlanVisibility> {
    let (p, cat) = require_plan(s, c, guid).await?;
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    if p.visibility == "space" {
        return Err(ApiError::Unprocessable(
            "Cannot update visibility of a plan from a space-scoped broker".into(),
        ));
    }
    let kind = req.get("type").and_then(Value::as_str).unwrap_or("");
    if !["public", "admin", "organization"].contains(&kind) {
        return Err(ApiError::Unprocessable(
            "Type must be one of 'public', 'admin', 'organization'".into(),
        ));
    }
    let mut orgs = Vec::new();
    if kind == "organization" {
        let list = req
            .get("organizations")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                ApiError::Unprocessable(
                    "Organizations must be a non-empty list of objects with a guid".into(),
                )
            })?;
        for o in list {
            let g = o.get("guid").and_then(Value::as_str).unwrap_or("");
            if store::orgs::find(&s.db.pool, g).await?.is_none() {
                return Err(ApiError::Unprocessable(format!(
                    "Could not find Organization with guid '{g}'"
                )));
            }
            orgs.push(g.to_owned());
        }
    } else if !replace {
        return Err(ApiError::Unprocessable(
            "Type must be 'organization' to add organizations".into(),
        ));
    }
    let mut tx = store::begin(&s.db).await?;
    store::brokers::set_visibility(&mut tx, &p.guid, kind, &orgs, replace, now_ms()).await?;
    tx.commit().await?;
    let p = store::brokers::find_plan(&s.db.pool, &p.guid)
        .await?
        .ok_or(ApiError::NotFound("Service plan"))?;
    let cat = Catalog { plan_orgs: store::brokers::all_plan_orgs(&s.db.pool).await?, ..cat };
    let mut v = visibility_of(s, c, &p, &cat).await?;
    if !replace {
        // POST answers with the orgs it added.
        v.organizations =
            v.organizations.map(|all| all.into_iter().filter(|o| orgs.contains(&o.guid)).collect());
    }
    Ok(v)
}

async fn replace_visibility(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<v3::PlanVisibility>> {
    Ok(Json(set_visibility(&s, &c, &guid, &req, true).await?))
}

async fn add_visibility(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<v3::PlanVisibility>> {
    Ok(Json(set_visibility(&s, &c, &guid, &req, false).await?))
}

async fn remove_visibility(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, org)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (p, _) = require_plan(&s, &c, &guid).await?;
    if !c.admin() {
        return Err(ApiError::NotAuthorized);
    }
    if !store::brokers::remove_plan_org(&s.db.pool, &p.guid, &org).await? {
        return Err(ApiError::NotFound("Organization"));
    }
    Ok(StatusCode::NO_CONTENT)
}
