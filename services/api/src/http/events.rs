//! `GET /v3/audit_events` and `/v3/audit_events/:guid`: the audit trail, each caller seeing
//! the events of the spaces and orgs they may read.

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use wire::v3::event::{AuditEvent, Party};
use wire::v3::{Guid, Link, Page};

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::http::list::List;
use crate::http::util::{links, ts};
use crate::store::events::Event;
use crate::store::{self, Select};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v3/audit_events", get(list)).route("/v3/audit_events/{guid}", get(show))
}

fn present(s: &AppState, e: &Event) -> AuditEvent {
    let guid_or_null = |g: &str| (!g.is_empty()).then(|| Guid::new(g));
    let party = |guid: &str, kind: &str, name: &str| Party {
        guid: guid.to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
    };
    AuditEvent {
        guid: e.guid.clone(),
        created_at: ts(e.created_at),
        updated_at: ts(e.created_at),
        kind: e.kind.clone(),
        actor: party(&e.actor_guid, &e.actor_type, &e.actor_name),
        target: party(&e.target_guid, &e.target_type, &e.target_name),
        data: e.data.clone(),
        space: guid_or_null(&e.space_guid),
        organization: guid_or_null(&e.org_guid),
        links: links([("self", Link::new(format!("{}/audit_events/{}", s.v3(), e.guid)))]),
    }
}

/// Events the caller may see: global readers all; others those of their spaces and orgs.
async fn scope(c: &Caller, sel: &mut Select) -> ApiResult<()> {
    if c.global_reader() {
        return Ok(());
    }
    let spaces = c.visible_spaces().await?.unwrap_or_default();
    let managed: Vec<String> = c
        .roles()
        .await?
        .iter()
        .filter(|r| {
            r.space.is_empty()
                && matches!(r.kind.as_str(), "organization_manager" | "organization_auditor")
        })
        .map(|r| r.org.clone())
        .collect();
    sel.any_or("audit_events.space_guid", &spaces, "audit_events.org_guid", &managed);
    Ok(())
}

async fn list(
    s: State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<AuditEvent>>> {
    const FILTERS: [&str; 4] = ["types", "target_guids", "space_guids", "organization_guids"];
    let mut list = List::parse(&s, q.as_deref(), "audit_events", "audit_events", &FILTERS, &[])?
        .filter("types", "type")
        .filter("target_guids", "target_guid")
        .filter("space_guids", "space_guid")
        .filter("organization_guids", "org_guid");
    scope(&c, list.select()).await?;
    let events = list.fetch(async |sel, w| store::events::page(&s.db, sel, w).await).await?;
    Ok(Json(events.present(|e| present(&s, e))))
}

async fn show(
    s: State<AppState>,
    c: Caller,
    axum::extract::Path(guid): axum::extract::Path<String>,
) -> ApiResult<Json<AuditEvent>> {
    let mut sel = Select::from("audit_events");
    sel.eq("guid", &guid);
    scope(&c, &mut sel).await?;
    let event = store::events::all(&s.db, &sel).await?.into_iter().next();
    Ok(Json(present(&s, &event.ok_or(ApiError::NotFound("Event"))?)))
}
