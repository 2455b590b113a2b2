//! Domains (docs/api.md): the shared app domain made at start, private domains owned by an
//! org, route reservations.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;
use wire::v3::domain::DomainRelationships;
use wire::v3::{self, Link, Links, Metadata, Page, ToMany, ToOne};

use crate::access::Caller;
use crate::domain::feature_flags::{self as flags, Flag};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::list::List;
use crate::http::util::{created, ts};
use crate::store::domains::Domain;
use crate::store::{self, new_guid, now_ms, Select};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/domains", get(list).post(create))
        .route("/v3/domains/{guid}", get(show).patch(update).delete(delete))
        .route("/v3/domains/{guid}/route_reservations", get(reservations))
        .route(
            "/v3/domains/{guid}/relationships/shared_organizations",
            get(shared_organizations).post(share),
        )
        .route(
            "/v3/domains/{guid}/relationships/shared_organizations/{org}",
            axum::routing::delete(unshare),
        )
        .route("/v3/organizations/{guid}/domains", get(org_domains))
}

impl Domain {
    /// As CC shows it, with `shared`: the orgs it is shared with that the caller may read.
    pub fn present_shared(&self, s: &AppState, shared: &[String]) -> v3::Domain {
        let mut d = self.present(s);
        d.relationships.shared_organizations = ToMany::of(shared.iter().map(String::as_str));
        d
    }

    pub fn present(&self, s: &AppState) -> v3::Domain {
        let base = format!("{}/domains/{}", s.v3(), self.guid);
        let mut links = Links::new();
        links.insert("self".into(), Link::new(base.clone()));
        links.insert("route_reservations".into(), Link::new(format!("{base}/route_reservations")));
        links.insert(
            "shared_organizations".into(),
            Link::new(format!("{base}/relationships/shared_organizations")),
        );
        if !self.org_guid.is_empty() {
            links.insert(
                "organization".into(),
                Link::new(format!("{}/organizations/{}", s.v3(), self.org_guid)),
            );
        }
        v3::Domain {
            guid: self.guid.clone(),
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            name: self.name.clone(),
            internal: self.internal,
            router_group: None,
            supported_protocols: vec!["http".into()],
            relationships: DomainRelationships {
                organization: ToOne::of(&self.org_guid),
                shared_organizations: ToMany::default(),
            },
            metadata: Metadata::default(),
            links,
        }
    }
}

/// Shared domains, and private domains owned by or shared with an org the caller sees.
async fn visible(c: &Caller, sel: &mut Select) -> ApiResult<()> {
    if let Some(mut orgs) = c.visible_orgs().await? {
        orgs.push(String::new());
        sel.any_or_sub("org_guid", "guid", store::domains::SHARED_WITH, &orgs);
    }
    Ok(())
}

/// The orgs `d` is shared with among `seen` (the caller's visible orgs; `None`: all).
async fn shared_among(
    s: &AppState,
    seen: &Option<Vec<String>>,
    d: &Domain,
) -> ApiResult<Vec<String>> {
    let all = store::domains::shared_orgs(&s.db.pool, &d.guid).await?;
    Ok(match seen {
        None => all,
        Some(seen) => all.into_iter().filter(|o| seen.contains(o)).collect(),
    })
}

/// The orgs `d` is shared with that the caller may read.
async fn shared_with(s: &AppState, c: &Caller, d: &Domain) -> ApiResult<Vec<String>> {
    shared_among(s, &c.visible_orgs().await?, d).await
}

async fn present(s: &AppState, c: &Caller, d: &Domain) -> ApiResult<v3::Domain> {
    Ok(d.present_shared(s, &shared_with(s, c, d).await?))
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Domain>>> {
    const FILTERS: [&str; 4] = ["guids", "names", "organization_guids", "label_selector"];
    let mut list = List::parse(&s, q.as_deref(), "domains", "domains", &FILTERS, &["name"])?
        .filter("guids", "guid")
        .filter("names", "name")
        .filter("organization_guids", "org_guid");
    visible(&c, list.select()).await?;
    page(&s, &c, list).await
}

async fn page(s: &AppState, c: &Caller, list: List) -> ApiResult<Json<Page<v3::Domain>>> {
    let domains = list.fetch(async |sel, w| store::domains::page(&s.db, sel, w).await).await?;
    // The caller's orgs once for the page, not once per domain.
    let seen = c.visible_orgs().await?;
    Ok(Json(
        domains
            .present_async(async |d| Ok(d.present_shared(s, &shared_among(s, &seen, &d).await?)))
            .await?,
    ))
}

async fn org_domains(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Domain>>> {
    let org = crate::http::orgs::readable(&s, &c, &guid).await?;
    const FILTERS: [&str; 3] = ["guids", "names", "label_selector"];
    let path = format!("organizations/{guid}/domains");
    let mut list = List::parse(&s, q.as_deref(), &path, "domains", &FILTERS, &["name"])?
        .filter("guids", "guid")
        .filter("names", "name");
    list.select().any_or_sub(
        "org_guid",
        "guid",
        store::domains::SHARED_WITH,
        &[String::new(), org.guid.clone()],
    );
    page(&s, &c, list).await
}

/// A domain the caller sees: shared, or private to (or shared with) an org it reads.
async fn readable(s: &AppState, c: &Caller, guid: &str) -> ApiResult<Domain> {
    let Some(d) = store::domains::find(&s.db.pool, guid).await? else {
        return Err(ApiError::NotFound("Domain"));
    };
    if d.org_guid.is_empty() || c.org_readable(&d.org_guid).await? {
        return Ok(d);
    }
    for org in store::domains::shared_orgs(&s.db.pool, &d.guid).await? {
        if c.org_readable(&org).await? {
            return Ok(d);
        }
    }
    Err(ApiError::NotFound("Domain"))
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::Domain>> {
    let d = readable(&s, &c, &guid).await?;
    Ok(Json(present(&s, &c, &d).await?))
}

/// `GET .../relationships/shared_organizations`: the orgs it is shared with that the caller
/// reads.
async fn shared_organizations(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<ToMany>> {
    let d = readable(&s, &c, &guid).await?;
    let orgs = shared_with(&s, &c, &d).await?;
    Ok(Json(ToMany::of(orgs.iter().map(String::as_str))))
}

/// `POST .../relationships/shared_organizations {data: [{guid}]}` (`cf share-private-domain`):
/// a private domain shared with more orgs, by a manager of the owning org who also manages
/// each of them; every org it is shared with.
async fn share(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Json<ToMany>> {
    let bad = || ApiError::Unprocessable("Data must be an array of {\"guid\": ...}".into());
    let data = req.get("data").and_then(Value::as_array).ok_or_else(bad)?;
    let orgs = data
        .iter()
        .map(|item| match item.get("guid").and_then(Value::as_str) {
            Some(g) if !g.is_empty() => Ok(g.to_owned()),
            _ => Err(bad()),
        })
        .collect::<ApiResult<Vec<String>>>()?;
    let d = readable(&s, &c, &guid).await?;
    if d.org_guid.is_empty() {
        return Err(ApiError::Unprocessable(format!(
            "Domain '{}' is a shared domain: every organization can use it already.",
            d.name
        )));
    }
    if !c.org_manager(&d.org_guid).await? {
        return Err(ApiError::NotAuthorized);
    }
    for org in &orgs {
        let missing = || {
            ApiError::Unprocessable(format!(
                "Organization with guid '{org}' does not exist or you do not have access to it."
            ))
        };
        let o = crate::http::orgs::readable(&s, &c, org).await.map_err(|_| missing())?;
        if o.guid == d.org_guid {
            return Err(ApiError::Unprocessable(format!(
                "Domain '{}' is owned by organization '{}' and cannot be shared with it.",
                d.name, o.name
            )));
        }
        if !c.org_manager(&o.guid).await? {
            return Err(ApiError::NotAuthorized);
        }
    }
    let now = now_ms();
    for org in &orgs {
        store::domains::share(&s.db.pool, &d.guid, org, now).await?;
    }
    let all = shared_with(&s, &c, &d).await?;
    Ok(Json(ToMany::of(all.iter().map(String::as_str))))
}

/// `DELETE .../relationships/shared_organizations/:org` (`cf unshare-private-domain`): by a
/// manager of the owning org or of that org; refused while that org has routes on it.
async fn unshare(
    State(s): State<AppState>,
    c: Caller,
    Path((guid, org)): Path<(String, String)>,
) -> ApiResult<axum::http::StatusCode> {
    let d = readable(&s, &c, &guid).await?;
    let o = crate::http::orgs::readable(&s, &c, &org).await.map_err(|_| {
        ApiError::Unprocessable(format!(
            "Organization with guid '{org}' does not exist or you do not have access to it."
        ))
    })?;
    if !store::domains::is_shared_with(&s.db.pool, &d.guid, &o.guid).await? {
        return Err(ApiError::Unprocessable(format!(
            "Unable to unshare domain from organization with name '{}'. Ensure the domain is shared to this organization.",
            o.name
        )));
    }
    let manager = c.org_manager(&d.org_guid).await? || c.org_manager(&o.guid).await?;
    if !manager {
        return Err(ApiError::NotAuthorized);
    }
    if store::routes::any_of_domain_in_org(&s.db.pool, &d.guid, &o.guid).await? {
        return Err(ApiError::Unprocessable(format!(
            "This domain has associated routes in organization '{}'. Delete the routes before unsharing.",
            o.name
        )));
    }
    store::domains::unshare(&s.db.pool, &d.guid, &o.guid).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// A DNS name: labels of letters, digits and hyphens, at least two labels.
fn valid_domain(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

async fn create(
    State(s): State<AppState>,
    c: Caller,
    CfJson(req): CfJson<Value>,
) -> ApiResult<Response> {
    let name = req.get("name").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    if !valid_domain(&name) {
        return Err(ApiError::Unprocessable(format!("Name '{name}' is not a valid domain name")));
    }
    let internal = req.get("internal").and_then(Value::as_bool).unwrap_or(false);
    let org = req
        .pointer("/relationships/organization/data/guid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if org.is_empty() {
        if !c.admin() {
            return Err(ApiError::NotAuthorized);
        }
    } else {
        let o = crate::http::orgs::readable(&s, &c, &org).await.map_err(|_| {
            ApiError::Unprocessable(
                "Organization with guid '".to_owned()
                    + &org
                    + "' does not exist or you do not have access to it.",
            )
        })?;
        if !c.org_manager(&o.guid).await? {
            return Err(ApiError::NotAuthorized);
        }
        flags::require(&s, &c, Flag::PrivateDomainCreation).await?;
    }
    let now = now_ms();
    let d = Domain {
        guid: new_guid(),
        name,
        internal,
        org_guid: org,
        created_at: now,
        updated_at: now,
    };
    store::domains::insert(&s.db.pool, &d, || {
        ApiError::Unprocessable(format!("The domain name \"{}\" is already in use", d.name))
    })
    .await?;
    Ok(created(d.present(&s)))
}

/// Labels and annotations only: admins for shared domains, org managers for their org's.
async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<serde_json::Value>,
) -> ApiResult<Json<v3::Domain>> {
    crate::http::metadata::only_metadata(&req)?;
    let d = readable(&s, &c, &guid).await?;
    let allowed =
        if d.org_guid.is_empty() { c.admin() } else { c.org_manager(&d.org_guid).await? };
    if !allowed {
        return Err(ApiError::NotAuthorized);
    }
    Ok(Json(present(&s, &c, &d).await?))
}

async fn delete(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    let d = readable(&s, &c, &guid).await?;
    let allowed =
        if d.org_guid.is_empty() { c.admin() } else { c.org_manager(&d.org_guid).await? };
    if !allowed {
        return Err(ApiError::NotAuthorized);
    }
    if store::routes::any_of_domain(&s.db.pool, &d.guid).await? {
        return Err(ApiError::Unprocessable("Domain has routes; delete them first.".into()));
    }
    let res = store::domains::delete(&s.db, &d.guid).await;
    let job = crate::domain::jobs::run(&s, "domain.delete", "", "", async { res }).await?;
    Ok(crate::http::jobs::accepted(&s, &job))
}

async fn reservations(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<v3::RouteReservation>> {
    let d = readable(&s, &c, &guid).await?;
    let mut host = String::new();
    let mut path = String::new();
    let mut port = 0i64;
    for (k, v) in form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "host" => host = v.to_ascii_lowercase(),
            "path" => path = v.into_owned(),
            "port" => {
                port =
                    v.parse().map_err(|_| ApiError::BadQuery("port must be an integer".into()))?
            }
            other => {
                return Err(ApiError::BadQuery(format!("Unknown query parameter(s): '{other}'")))
            }
        }
    }
    let hit = store::routes::find_by_address(&s.db.pool, &d.guid, &host, &path, port).await?;
    Ok(Json(v3::RouteReservation { matching_route: hit.is_some() }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn domain_names_are_checked() {
        assert!(super::valid_domain("apps.example.com"));
        assert!(!super::valid_domain("localhost"));
        assert!(!super::valid_domain("bad_name.com"));
        assert!(!super::valid_domain("-a.com"));
    }
}
