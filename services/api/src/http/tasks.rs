//! Tasks (docs/api.md "Tasks"): `POST|GET /v3/apps/:guid/tasks`, `GET /v3/tasks`,
//! `GET|PATCH /v3/tasks/:guid`, `POST /v3/tasks/:guid/actions/cancel` and the
//! `PUT /v3/tasks/:guid/cancel` the cf CLI still sends; the scheduler's completion callback is
//! internal ([`completed`]).

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use wire::v3::task::{NewTask, TaskRelationships, TaskResult};
use wire::v3::{self, Link, Metadata, Page, ToOne};

use crate::access::{Caller, Need};
use crate::domain::events::Actor;
use crate::domain::feature_flags::{self, Flag};
use crate::domain::tasks;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::CfJson;
use crate::http::list::List;
use crate::http::util::{links, ts};
use crate::store;
use crate::store::tasks::Task;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v3/apps/{guid}/tasks", get(app_tasks).post(create))
        .route("/v3/tasks", get(list))
        .route("/v3/tasks/{guid}", get(show).patch(update))
        .route("/v3/tasks/{guid}/actions/cancel", post(cancel))
        .route("/v3/tasks/{guid}/cancel", put(cancel))
}

impl Task {
    pub fn present(&self, s: &AppState, command_visible: bool) -> v3::Task {
        v3::Task {
            guid: self.guid.clone(),
            sequence_id: self.sequence_id,
            name: self.name.clone(),
            command: command_visible.then(|| self.command.clone()),
            state: self.state,
            memory_in_mb: self.memory_mb,
            disk_in_mb: self.disk_mb,
            log_rate_limit_in_bytes_per_second: self.log_rate,
            result: TaskResult {
                failure_reason: (!self.failure_reason.is_empty())
                    .then(|| self.failure_reason.clone()),
            },
            droplet_guid: self.droplet_guid.clone(),
            relationships: TaskRelationships { app: ToOne::of(&self.app_guid) },
            created_at: ts(self.created_at),
            updated_at: ts(self.updated_at),
            metadata: Metadata::default(),
            links: links([
                ("self", Link::new(format!("{}/tasks/{}", s.v3(), self.guid))),
                ("app", Link::new(format!("{}/apps/{}", s.v3(), self.app_guid))),
                ("droplet", Link::new(format!("{}/droplets/{}", s.v3(), self.droplet_guid))),
            ]),
        }
    }
}

async fn create(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(req): CfJson<NewTask>,
) -> ApiResult<Response> {
    let (app, space) =
        crate::http::apps::require_with_space(&s, &c, &guid, Need::Developer).await?;
    feature_flags::require(&s, &c, Flag::TaskCreation).await?;
    let new = tasks::NewTask {
        command: req.command,
        name: req.name,
        memory_mb: req.memory_in_mb,
        disk_mb: req.disk_in_mb,
        log_rate: req.log_rate_limit_in_bytes_per_second,
        droplet_guid: req.droplet_guid,
        template_process: req.template.map(|t| t.process.guid),
    };
    let t = tasks::create(&s, &app, &space, new, &Actor::of(&c)).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(t.present(&s, true))).into_response())
}

/// The task, its app and space, if the caller may see the app (404 "Task" otherwise) and has
/// `need`.
async fn require(
    s: &AppState,
    c: &Caller,
    guid: &str,
    need: Need,
) -> ApiResult<(Task, store::apps::App, store::spaces::Space)> {
    let t = store::tasks::find(&s.db.pool, guid).await?.ok_or(ApiError::NotFound("Task"))?;
    let (app, space) = crate::http::apps::require_with_space(s, c, &t.app_guid, need)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => ApiError::NotFound("Task"),
            e => e,
        })?;
    Ok((t, app, space))
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Json<v3::Task>> {
    let (t, _, space) = require(&s, &c, &guid, Need::Read).await?;
    let visible = c.secrets_readable(&space.guid).await?;
    Ok(Json(t.present(&s, visible)))
}

/// Only `metadata` changes (the metadata layer stores it).
async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    CfJson(_): CfJson<serde_json::Value>,
) -> ApiResult<Json<v3::Task>> {
    let (t, _, _) = require(&s, &c, &guid, Need::Developer).await?;
    Ok(Json(t.present(&s, true)))
}

async fn cancel(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
) -> ApiResult<Response> {
    let (t, app, space) = require(&s, &c, &guid, Need::Developer).await?;
    let t = tasks::cancel(&s, &t, &space, &app, &Actor::of(&c)).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(t.present(&s, true))).into_response())
}

const FILTERS: [&str; 7] =
    ["guids", "names", "states", "sequence_ids", "app_guids", "space_guids", "label_selector"];

async fn list(
    State(s): State<AppState>,
    c: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Task>>> {
    let table = crate::http::list::Table::with("tasks", store::tasks::select());
    list_with(&s, &c, List::parse(&s, q.as_deref(), "tasks", table, &FILTERS, &["updated_at"])?)
        .await
}

async fn app_tasks(
    State(s): State<AppState>,
    c: Caller,
    Path(guid): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Page<v3::Task>>> {
    let app = crate::http::apps::require(&s, &c, &guid, Need::Read).await?;
    let table = crate::http::list::Table::with("tasks", store::tasks::select());
    let path = format!("apps/{guid}/tasks");
    let list = List::parse(&s, q.as_deref(), &path, table, &FILTERS, &["updated_at"])?
        .set("app_guids", vec![app.guid]);
    list_with(&s, &c, list).await
}

async fn list_with(s: &AppState, c: &Caller, list: List) -> ApiResult<Json<Page<v3::Task>>> {
    let list = list
        .join("JOIN apps a ON a.guid = tasks.app_guid")
        .filter("guids", "tasks.guid")
        .filter("names", "tasks.name")
        .filter("states", "tasks.state")
        .filter("sequence_ids", "CAST(tasks.sequence_id AS TEXT)")
        .filter("app_guids", "tasks.app_guid")
        .filter("space_guids", "a.space_guid")
        .visible("a.space_guid", &c.visible_spaces().await?);
    let rows = list.fetch(async |sel, w| sel.page_of(&s.db, w, Task::from_row).await).await?;
    // Commands may hold secrets: shown to those who may read the app's environment.
    let mut readable = std::collections::HashMap::new();
    for t in rows.rows() {
        if !readable.contains_key(&t.app_guid) {
            let app = store::apps::find(&s.db.pool, &t.app_guid).await?;
            let ok = match app {
                Some(a) => c.secrets_readable(&a.space_guid).await?,
                None => false,
            };
            readable.insert(t.app_guid.clone(), ok);
        }
    }
    Ok(Json(rows.present(|t| t.present(s, readable.get(&t.app_guid).copied().unwrap_or(false)))))
}

/// The scheduler's callback (`POST /internal/v4/tasks/:guid/completed`).
pub async fn completed(
    s: &AppState,
    guid: &str,
    done: &wire::task::TaskCompletion,
) -> ApiResult<()> {
    tasks::completed(s, guid, done).await
}
