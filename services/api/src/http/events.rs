//! Audit events (`audit.app.create`, `audit.app.start`, `audit.app.process.crash`, ...): written
//! for every lifecycle change, listed at `GET /v3/audit_events`, and mirrored as `API` log
//! lines into the app's log stream.

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row as _;

use crate::access::Caller;
use crate::error::ApiResult;
use crate::http::paging::ListQuery;
use crate::http::util::{link, ts};
use crate::store::Select;
use crate::store::{new_guid, now_ms};
use crate::AppState;

/// What an audit event is about.
#[derive(Debug, Clone, Default)]
pub struct Target<'a> {
    pub guid: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    pub space: &'a str,
    pub org: &'a str,
}

/// Who did it.
#[derive(Debug, Clone)]
pub struct Actor {
    pub guid: String,
    pub kind: String,
    pub name: String,
}

impl Actor {
    pub fn of(c: &Caller) -> Self {
        let kind = if c.claims.user_id.is_some() { "user" } else { "client" };
        Self { guid: c.guid().to_owned(), kind: kind.into(), name: c.name().to_owned() }
    }

    pub fn system() -> Self {
        Self { guid: "system".into(), kind: "system".into(), name: "system".into() }
    }
}

/// Record an audit event; app events also go to the app's log stream as `API` lines.
/// Failing to record is logged, never fails the action it describes.
pub async fn record(s: &AppState, kind: &str, actor: &Actor, target: &Target<'_>, data: Value) {
    let res = sqlx::query(
        "INSERT INTO audit_events (guid, type, actor_guid, actor_type, actor_name, target_guid, \
         target_type, target_name, data, space_guid, org_guid, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(new_guid())
    .bind(kind)
    .bind(&actor.guid)
    .bind(&actor.kind)
    .bind(&actor.name)
    .bind(target.guid)
    .bind(target.kind)
    .bind(target.name)
    .bind(data.to_string())
    .bind(target.space)
    .bind(target.org)
    .bind(now_ms())
    .execute(&s.db.pool)
    .await;
    if let Err(e) = res {
        tracing::warn!(error = %e, kind, "could not record an audit event");
    }
    if target.kind == "app" {
        let line = api_line(kind, actor, target, &data);
        crate::http::logs::api_log(s, target.guid, &line).await;
    }
}

/// The line CC writes into an app's log stream for an event, e.g. "Created app with guid X".
fn api_line(kind: &str, actor: &Actor, target: &Target<'_>, data: &Value) -> String {
    let detail = match data.get("request") {
        Some(r) if !r.is_null() => format!(" ({r})"),
        _ => String::new(),
    };
    let g = target.guid;
    let what = match kind.trim_start_matches("audit.app.") {
        "create" => format!("Created app with guid {g}"),
        "update" => format!("Updated app with guid {g}"),
        "start" => format!("Starting app with guid {g}"),
        "stop" => format!("Stopping app with guid {g}"),
        "restart" => format!("Restarting app with guid {g}"),
        "delete-request" => format!("Deleting app with guid {g}"),
        "apply_manifest" => format!("Applied manifest to app with guid {g}"),
        "package.create" => format!("Created package for app with guid {g}"),
        "upload-bits" => format!("Uploaded bits for app with guid {g}"),
        "build.create" => format!("Creating build for app with guid {g}"),
        "droplet.create" => format!("Staged droplet for app with guid {g}"),
        "droplet.mapped" => format!("Assigned droplet to app with guid {g}"),
        "process.scale" => format!("Scaling process of app with guid {g}"),
        "process.update" => format!("Updated process of app with guid {g}"),
        "process.crash" => format!(
            "Process has crashed with type: {}",
            data["process_type"].as_str().unwrap_or("web")
        ),
        "map-route" => format!("Mapped route to app with guid {g}"),
        "unmap-route" => format!("Unmapped route from app with guid {g}"),
        other => format!("{} app with guid {g}", other.replace(['.', '-', '_'], " ")),
    };
    if kind.ends_with("crash") {
        return format!("{what}: {}", data["exit_description"].as_str().unwrap_or(""));
    }
    format!("{what} by {}{detail}", actor.name)
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/v3/audit_events", get(list)).route("/v3/audit_events/{guid}", get(show))
}

fn present(s: &AppState, r: &AnyRow) -> ApiResult<Value> {
    let guid: String = r.try_get("guid")?;
    let space: String = r.try_get("space_guid")?;
    let org: String = r.try_get("org_guid")?;
    let created: i64 = r.try_get("created_at")?;
    let data: String = r.try_get("data")?;
    let guid_or_null = |g: String| if g.is_empty() { Value::Null } else { json!({ "guid": g }) };
    Ok(json!({
        "guid": guid, "created_at": ts(created), "updated_at": ts(created),
        "type": r.try_get::<String, _>("type")?,
        "actor": {"guid": r.try_get::<String, _>("actor_guid")?, "type": r.try_get::<String, _>("actor_type")?, "name": r.try_get::<String, _>("actor_name")?},
        "target": {"guid": r.try_get::<String, _>("target_guid")?, "type": r.try_get::<String, _>("target_type")?, "name": r.try_get::<String, _>("target_name")?},
        "data": serde_json::from_str::<Value>(&data).unwrap_or(Value::Null),
        "space": guid_or_null(space), "organization": guid_or_null(org),
        "links": {"self": link(format!("{}/audit_events/{guid}", s.v3()))},
    }))
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

async fn list(s: State<AppState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(
        q.as_deref(),
        &["types", "target_guids", "space_guids", "organization_guids"],
        &[],
    )?;
    let mut sel = Select::from("audit_events");
    sel.filter(q.filter("types"), "type")
        .filter(q.filter("target_guids"), "target_guid")
        .filter(q.filter("space_guids"), "space_guid")
        .filter(q.filter("organization_guids"), "org_guid");
    scope(&c, &mut sel).await?;
    let (total, rows) = sel.page(&s.db, &q.window()).await?;
    let items = rows.iter().map(|r| present(&s, r)).collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(q.envelope(&format!("{}/audit_events", s.v3()), total, items)))
}

async fn show(
    s: State<AppState>,
    c: Caller,
    axum::extract::Path(guid): axum::extract::Path<String>,
) -> ApiResult<Json<Value>> {
    let mut sel = Select::from("audit_events");
    sel.eq("guid", &guid);
    scope(&c, &mut sel).await?;
    let rows = sel.all(&s.db).await?;
    let row = rows.first().ok_or(crate::error::ApiError::NotFound("Event"))?;
    Ok(Json(present(&s, row)?))
}
