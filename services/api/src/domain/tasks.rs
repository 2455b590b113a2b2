//! Tasks (docs/api.md "Tasks"): a one-off command run once with an app's droplet and
//! environment. Created PENDING with the app's next `sequence_id`, desired at the scheduler
//! (RUNNING once it took it), SUCCEEDED or FAILED when the scheduler calls back with how it
//! ended; cancel is CANCELING until then. Running tasks count against memory quotas.

use serde_json::json;
use wire::task::{TaskCompletion, TaskDefinition, CF_TASKS_DOMAIN};
use wire::v3::{DropletState, TaskState};

use crate::domain::env_groups;
use crate::domain::events::{self, Actor};
use crate::error::{ApiError, ApiResult};
use crate::store::apps::App;
use crate::store::spaces::Space;
use crate::store::tasks::Task;
use crate::store::{self, new_guid, now_ms};
use crate::AppState;

/// A task as asked for.
#[derive(Debug, Clone, Default)]
pub struct NewTask {
    pub command: Option<String>,
    pub name: Option<String>,
    pub memory_mb: Option<i64>,
    pub disk_mb: Option<i64>,
    pub log_rate: Option<i64>,
    pub droplet_guid: Option<String>,
    /// `template.process.guid`: command, memory and disk from that process.
    pub template_process: Option<String>,
}

fn unprocessable(m: impl Into<String>) -> ApiError {
    ApiError::Unprocessable(m.into())
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::ServiceUnavailable(format!("The scheduler is unavailable: {e}"))
}

/// Create and desire a task of `app` (the caller checked access).
pub async fn create(
    s: &AppState,
    app: &App,
    space: &Space,
    req: NewTask,
    actor: &Actor,
) -> ApiResult<Task> {
    let template = match &req.template_process {
        Some(g) => Some(
            store::processes::find(&s.db.pool, g)
                .await?
                .filter(|p| p.app_guid == app.guid)
                .ok_or_else(|| {
                    unprocessable("The process of the template does not exist or is not this app's")
                })?,
        ),
        None => None,
    };
    let droplet_guid = req.droplet_guid.clone().unwrap_or_else(|| app.droplet_guid.clone());
    let droplet = store::droplets::find(&s.db.pool, &droplet_guid)
        .await?
        .filter(|d| d.app_guid == app.guid && d.state == DropletState::Staged)
        .ok_or_else(|| unprocessable("Task must have a droplet. Assign current droplet to app."))?;
    let command = match (&req.command, &template) {
        (Some(c), _) => c.clone(),
        (None, Some(p)) => p
            .command
            .clone()
            .or_else(|| droplet.process_types.get(&p.kind).cloned())
            .unwrap_or_default(),
        (None, None) => String::new(),
    };
    if command.trim().is_empty() {
        return Err(unprocessable("The request is semantically invalid: command presence"));
    }
    let memory_mb = req
        .memory_mb
        .or(template.as_ref().map(|p| p.memory_mb))
        .unwrap_or(s.config.default_memory_mb);
    let disk_mb =
        req.disk_mb.or(template.as_ref().map(|p| p.disk_mb)).unwrap_or(s.config.default_disk_mb);
    if !(1..=s.config.max_memory_mb).contains(&memory_mb) {
        return Err(unprocessable(format!(
            "Memory in mb must be between 1 and {}",
            s.config.max_memory_mb
        )));
    }
    if !(1..=s.config.max_disk_mb).contains(&disk_mb) {
        return Err(unprocessable(format!(
            "Disk in mb must be between 1 and {}",
            s.config.max_disk_mb
        )));
    }
    let log_rate = req.log_rate.unwrap_or(-1);
    if log_rate < -1 {
        return Err(unprocessable("Log rate limit must be -1 (unlimited) or more"));
    }
    if let Some(n) = &req.name {
        if n.trim().is_empty() || n.len() > 255 {
            return Err(unprocessable("Name must be 1 to 255 characters"));
        }
    }
    crate::domain::quotas::check_memory(s, &space.org_guid, &space.guid, "", 1, memory_mb).await?;
    crate::domain::quotas::check_app_tasks(s, &space.org_guid, &space.guid, &app.guid).await?;

    let now = now_ms();
    let mut tx = store::begin(&s.db).await?;
    let sequence_id = store::tasks::next_sequence(&mut *tx, &app.guid).await?;
    let guid = new_guid();
    let task = Task {
        guid: guid.clone(),
        app_guid: app.guid.clone(),
        sequence_id,
        name: req.name.clone().unwrap_or_else(|| guid[..8].to_owned()),
        command,
        state: TaskState::Pending,
        memory_mb,
        disk_mb,
        log_rate,
        droplet_guid: droplet.guid.clone(),
        failure_reason: String::new(),
        created_at: now,
        updated_at: now,
    };
    store::tasks::insert(&mut *tx, &task).await?;
    tx.commit().await?;
    crate::domain::usage_events::task(s, app, &task, "TASK_STARTED").await;
    let t = space.target(&app.guid, "app", &app.name);
    events::record(
        s,
        "audit.app.task.create",
        actor,
        &t,
        json!({"request": {"name": task.name, "memory_in_mb": memory_mb, "disk_in_mb": disk_mb}, "task_guid": task.guid}),
    )
    .await;

    let def = definition(s, app, space, &task, &droplet).await?;
    let path = format!("/v1/tasks/{}", task.guid);
    let token =
        s.uaa.internal_token().map_err(|e| ApiError::Internal(format!("internal token: {e}")))?;
    let sent = s
        .scheduler
        .send(&path, |u| kit::http::propagate(s.http.put(u).bearer_auth(&token).json(&def)))
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {
            store::tasks::transition(
                &s.db.pool,
                &task.guid,
                TaskState::Pending,
                TaskState::Running,
                "",
                now_ms(),
            )
            .await?;
        }
        Ok(r) => {
            let why = format!("The scheduler refused the task: {}", r.status());
            store::tasks::transition(
                &s.db.pool,
                &task.guid,
                TaskState::Pending,
                TaskState::Failed,
                &why,
                now_ms(),
            )
            .await?;
            ended(s, &task).await;
            return Err(unavailable(r.status()));
        }
        Err(e) => {
            let why = "The scheduler could not be reached";
            store::tasks::transition(
                &s.db.pool,
                &task.guid,
                TaskState::Pending,
                TaskState::Failed,
                why,
                now_ms(),
            )
            .await?;
            ended(s, &task).await;
            return Err(unavailable(e));
        }
    }
    store::tasks::find(&s.db.pool, &task.guid).await?.ok_or(ApiError::NotFound("Task"))
}

/// What the scheduler runs: the droplet, the command, the app's environment.
async fn definition(
    s: &AppState,
    app: &App,
    space: &Space,
    task: &Task,
    droplet: &crate::store::droplets::Droplet,
) -> ApiResult<TaskDefinition> {
    let org = store::orgs::find(&s.db.pool, &space.org_guid)
        .await?
        .ok_or(ApiError::NotFound("Organization"))?;
    let mut vcap = crate::domain::desired::vcap_application(s, app, None).await?;
    vcap["limits"] = json!({"fds": 16384, "mem": task.memory_mb, "disk": task.disk_mb});
    let mut env = env_groups::with_group(s, env_groups::Group::Running, &app.env).await?;
    env.insert("VCAP_APPLICATION".into(), vcap.to_string());
    env.insert(
        "VCAP_SERVICES".into(),
        crate::domain::services::vcap_services(s, &app.guid).await?.to_string(),
    );
    env.insert("MEMORY_LIMIT".into(), format!("{}m", task.memory_mb));
    let tags = crate::domain::desired::app_tags(app, space, &org);
    // A docker droplet's task runs in the image (its command through `/bin/sh -c`).
    let docker = crate::domain::docker::lrp_image(s, droplet).await?;
    let stack =
        if docker.is_some() { wire::lrp::DOCKER_STACK.to_owned() } else { app.stack.clone() };
    Ok(TaskDefinition {
        task_guid: task.guid.clone(),
        domain: CF_TASKS_DOMAIN.into(),
        log_guid: app.guid.clone(),
        name: task.name.clone(),
        memory_mb: u64::try_from(task.memory_mb).unwrap_or(0),
        disk_mb: u64::try_from(task.disk_mb).unwrap_or(0),
        stack,
        image: wire::lrp::ImageRef {
            droplet_guid: task.droplet_guid.clone(),
            droplet_url: format!(
                "{}/internal/v1/droplets/{}/download",
                s.internal_url(),
                task.droplet_guid
            ),
            droplet_sha256: droplet.sha256.clone(),
            docker,
        },
        command: task.command.clone(),
        env,
        metric_tags: tags,
        completion_callback_url: format!(
            "{}/internal/v4/tasks/{}/completed",
            s.internal_url(),
            task.guid
        ),
    })
}

/// Cancel: CANCELING, and the scheduler stops it; its callback ends it FAILED.
pub async fn cancel(
    s: &AppState,
    task: &Task,
    space: &Space,
    app: &App,
    actor: &Actor,
) -> ApiResult<Task> {
    if task.state.is_final() {
        return Err(unprocessable(format!(
            "Task state is {} and therefore cannot be canceled",
            task.state
        )));
    }
    if task.state != TaskState::Canceling {
        store::tasks::transition(
            &s.db.pool,
            &task.guid,
            task.state,
            TaskState::Canceling,
            "",
            now_ms(),
        )
        .await?;
    }
    if !stop_at_scheduler(s, &task.guid).await? {
        // The scheduler no longer knows it: nothing runs.
        let ended_now = store::tasks::transition(
            &s.db.pool,
            &task.guid,
            TaskState::Canceling,
            TaskState::Failed,
            "task was cancelled",
            now_ms(),
        )
        .await?;
        if ended_now {
            ended(s, task).await;
        }
    }
    let t = space.target(&app.guid, "app", &app.name);
    events::record(
        s,
        "audit.app.task.cancel",
        actor,
        &t,
        json!({"task_guid": task.guid, "request": {}}),
    )
    .await;
    store::tasks::find(&s.db.pool, &task.guid).await?.ok_or(ApiError::NotFound("Task"))
}

/// Ask the scheduler to stop a task; whether it held the task.
async fn stop_at_scheduler(s: &AppState, guid: &str) -> ApiResult<bool> {
    let path = format!("/v1/tasks/{guid}/cancel");
    let token =
        s.uaa.internal_token().map_err(|e| ApiError::Internal(format!("internal token: {e}")))?;
    let build = |u| kit::http::propagate(s.http.post(u).bearer_auth(&token));
    match s.scheduler.send(&path, build).await {
        Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => Ok(false),
        Ok(r) if r.status().is_success() => Ok(true),
        Ok(r) => Err(unavailable(r.status())),
        Err(e) => Err(unavailable(e)),
    }
}

/// Stop the tasks of deleted apps (their rows are gone); what the scheduler cannot take now,
/// the resync's [`cancel_orphans`] stops later.
pub async fn stop_deleted(s: &AppState, guids: &[String]) {
    for guid in guids {
        if let Err(e) = stop_at_scheduler(s, guid).await {
            tracing::warn!(task_guid = %guid, error = %e, "a deleted app's task not stopped yet; the resync will");
        }
    }
}

/// One resync pass: the scheduler's unfinished tasks the api has no row of (their app was
/// deleted) are cancelled; how many.
pub async fn cancel_orphans(s: &AppState) -> ApiResult<usize> {
    let path = format!("/v1/tasks?domain={CF_TASKS_DOMAIN}");
    let token =
        s.uaa.internal_token().map_err(|e| ApiError::Internal(format!("internal token: {e}")))?;
    let res = s
        .scheduler
        .send(&path, |u| kit::http::propagate(s.http.get(u).bearer_auth(&token)))
        .await
        .map_err(unavailable)?;
    if !res.status().is_success() {
        return Err(unavailable(format!("listing tasks answered {}", res.status())));
    }
    let held: Vec<wire::task::Task> = res.json().await.map_err(unavailable)?;
    let mut n = 0;
    for t in held.iter().filter(|t| t.state != wire::task::TaskState::Completed) {
        let guid = &t.definition.task_guid;
        if store::tasks::find(&s.db.pool, guid).await?.is_none() {
            stop_at_scheduler(s, guid).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// The scheduler's callback: the task ended.
pub async fn completed(s: &AppState, guid: &str, done: &TaskCompletion) -> ApiResult<()> {
    let Some(task) = store::tasks::find(&s.db.pool, guid).await? else {
        return Err(ApiError::NotFound("Task"));
    };
    if task.state.is_final() {
        return Ok(());
    }
    let (to, reason) = if done.failed {
        (TaskState::Failed, done.failure_reason.as_str())
    } else {
        (TaskState::Succeeded, "")
    };
    if store::tasks::transition(&s.db.pool, guid, task.state, to, reason, now_ms()).await? {
        ended(s, &task).await;
    }
    Ok(())
}

/// The usage event of a task that ended.
async fn ended(s: &AppState, task: &Task) {
    if let Ok(Some(app)) = store::apps::find(&s.db.pool, &task.app_guid).await {
        crate::domain::usage_events::task(s, &app, task, "TASK_STOPPED").await;
    }
}
