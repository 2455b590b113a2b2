//! Audit events (`audit.app.create`, `audit.app.start`, `audit.app.process.crash`, ...): written
//! for every lifecycle change and mirrored as `API` log lines into the app's log stream.

use bus::BusExt as _;
use serde_json::Value;

use crate::access::Caller;
use crate::store::{self, new_guid, now_ms};
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

impl store::spaces::Space {
    /// Audit target for events inside this space.
    pub fn target<'a>(&'a self, guid: &'a str, kind: &'a str, name: &'a str) -> Target<'a> {
        Target { guid, kind, name, space: &self.guid, org: &self.org_guid }
    }
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
    let event = store::events::Event {
        guid: new_guid(),
        kind: kind.to_owned(),
        actor_guid: actor.guid.clone(),
        actor_type: actor.kind.clone(),
        actor_name: actor.name.clone(),
        target_guid: target.guid.to_owned(),
        target_type: target.kind.to_owned(),
        target_name: target.name.to_owned(),
        data,
        space_guid: target.space.to_owned(),
        org_guid: target.org.to_owned(),
        created_at: now_ms(),
    };
    let res = store::events::insert(&s.db.pool, &event).await;
    if let Err(e) = res {
        tracing::warn!(error = %e, kind, "could not record an audit event");
    }
    if target.kind == "app" {
        let line = api_line(kind, actor, target, &event.data);
        api_log(s, target.guid, &line).await;
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

/// An `API` line in an app's log stream, published on `logs.API`.
pub async fn api_log(s: &AppState, app_guid: &str, line: &str) {
    let env =
        wire::envelope::Envelope::log(app_guid, "0", "API", line, wire::envelope::LogStream::Out);
    let subject = format!("{}.API", wire::subjects::LOGS_PREFIX);
    if let Err(e) = s.bus.publish_json(&subject, &env).await {
        tracing::debug!(error = %e, "could not publish an API log line");
    }
}
