//! One-off tasks (Diego's Tasks): desired by the api, placed by the same auction as instances
//! (as a one-instance job of the task's memory, disk and stack), run once by a cell, never
//! restarted. A task is PENDING until a cell took it, RUNNING there, COMPLETED when the cell
//! reported its end — or when it was cancelled while pending, or its cell was lost. A
//! COMPLETED task stays until its completion callback to the api succeeded; each pass of
//! [`Engine::converge_tasks`] places what is pending and retries those callbacks.

use std::sync::Arc;

use sqlx::any::AnyRow;
use sqlx::Row as _;
use wire::task::{Task, TaskCancel, TaskCompletion, TaskDefinition, TaskState};

use crate::auction::{self, Job};
use crate::engine::{Engine, EngineError};
use crate::repo::RepoError;

fn from_row(r: &AnyRow) -> Result<Task, RepoError> {
    let state: String = r.try_get("state")?;
    let body: String = r.try_get("definition")?;
    Ok(Task {
        definition: serde_json::from_str(&body)
            .map_err(|e| RepoError::Corrupt(format!("task definition: {e}")))?,
        state: TaskState::parse(&state)
            .ok_or_else(|| RepoError::Corrupt(format!("task state {state:?}")))?,
        cell_id: r.try_get("cell_id")?,
        failed: r.try_get::<i64, _>("failed")? != 0,
        failure_reason: r.try_get("failure_reason")?,
        placement_error: r.try_get("placement_error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Engine {
    pub async fn get_task(&self, guid: &str) -> Result<Option<Task>, EngineError> {
        let row = sqlx::query("SELECT * FROM tasks WHERE task_guid = $1")
            .bind(guid)
            .fetch_optional(&self.repo.db().pool)
            .await
            .map_err(RepoError::from)?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    pub async fn list_tasks(&self, domain: Option<&str>) -> Result<Vec<Task>, EngineError> {
        let rows = sqlx::query(
            "SELECT * FROM tasks WHERE ($1 = '' OR domain = $1) ORDER BY created_at, task_guid",
        )
        .bind(domain.unwrap_or_default())
        .fetch_all(&self.repo.db().pool)
        .await
        .map_err(RepoError::from)?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Write `t` if it is still in `from`; whether it was.
    async fn save_task(&self, t: &Task, from: TaskState) -> Result<bool, EngineError> {
        let res = sqlx::query(
            "UPDATE tasks SET state = $1, cell_id = $2, failed = $3, failure_reason = $4, \
             placement_error = $5, updated_at = $6 WHERE task_guid = $7 AND state = $8",
        )
        .bind(t.state.as_str())
        .bind(&t.cell_id)
        .bind(i64::from(t.failed))
        .bind(&t.failure_reason)
        .bind(&t.placement_error)
        .bind(t.updated_at)
        .bind(&t.definition.task_guid)
        .bind(from.as_str())
        .execute(&self.repo.db().pool)
        .await
        .map_err(RepoError::from)?;
        Ok(res.rows_affected() == 1)
    }

    /// Desire a task: stored PENDING, then placed at once. The same definition again is a
    /// no-op; another under the same guid a conflict.
    pub async fn desire_task(&self, def: TaskDefinition) -> Result<bool, EngineError> {
        if let Some(t) = self.get_task(&def.task_guid).await? {
            return if t.definition == def {
                Ok(false)
            } else {
                Err(EngineError::Conflict(format!("task {} exists", def.task_guid)))
            };
        }
        let now = self.now();
        let body = serde_json::to_string(&def).map_err(|e| RepoError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO tasks (task_guid, domain, state, cell_id, failed, failure_reason, \
             placement_error, definition, created_at, updated_at) \
             VALUES ($1, $2, 'PENDING', '', 0, '', '', $3, $4, $4)",
        )
        .bind(&def.task_guid)
        .bind(&def.domain)
        .bind(body)
        .bind(now)
        .execute(&self.repo.db().pool)
        .await
        .map_err(RepoError::from)?;
        self.place_tasks().await?;
        Ok(true)
    }

    /// Auction every PENDING task; a winner cell is asked to run it (RUNNING once it said yes).
    pub async fn place_tasks(&self) -> Result<(), EngineError> {
        let pending: Vec<Task> = self
            .list_tasks(None)
            .await?
            .into_iter()
            .filter(|t| t.state == TaskState::Pending)
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let jobs: Vec<Job> = pending
            .iter()
            .map(|t| Job { desired: Arc::new(t.definition.as_lrp()), index: 0 })
            .collect();
        let mut bidders = self.bidders().await?;
        let results = auction::place(&jobs, &mut bidders);
        for (t, result) in pending.into_iter().zip(results) {
            let mut next = t.clone();
            next.updated_at = self.now();
            match result {
                Ok(cell) => {
                    let url = bidders[cell].presence.rep_url.clone();
                    match self.cells.run_task(&url, t.definition.clone()).await {
                        Ok(()) => {
                            next.state = TaskState::Running;
                            next.cell_id = bidders[cell].presence.cell_id.clone();
                            next.placement_error.clear();
                        }
                        Err(e) => {
                            tracing::warn!(task = %t.definition.task_guid, error = %e, "cell did not take the task; retrying");
                            continue;
                        }
                    }
                }
                Err(error) if error != t.placement_error => next.placement_error = error,
                Err(_) => continue,
            }
            self.save_task(&next, TaskState::Pending).await?;
        }
        Ok(())
    }

    /// A cell's report of a task's end; the api is told.
    pub async fn task_completed(&self, done: &TaskCompletion) -> Result<(), EngineError> {
        let Some(t) = self.get_task(&done.task_guid).await? else {
            return Err(EngineError::NotFound);
        };
        if t.state == TaskState::Completed {
            return Ok(());
        }
        let mut next = t.clone();
        next.state = TaskState::Completed;
        next.failed = done.failed;
        next.failure_reason = done.failure_reason.clone();
        next.updated_at = self.now();
        if self.save_task(&next, t.state).await? {
            self.callback(&next).await?;
        }
        Ok(())
    }

    /// Cancel: a pending task completes as failed at once; a running one is stopped by its
    /// cell, which reports it.
    pub async fn cancel_task(&self, guid: &str) -> Result<(), EngineError> {
        let Some(t) = self.get_task(guid).await? else { return Err(EngineError::NotFound) };
        match t.state {
            TaskState::Completed => Ok(()),
            TaskState::Pending => {
                let done = TaskCompletion {
                    task_guid: guid.to_owned(),
                    failed: true,
                    failure_reason: "task was cancelled".into(),
                    cell_id: String::new(),
                };
                self.task_completed(&done).await
            }
            TaskState::Running => {
                let cell = self
                    .repo
                    .list_cells()
                    .await?
                    .into_iter()
                    .find(|(p, _)| p.cell_id == t.cell_id)
                    .map(|(p, _)| p.rep_url);
                match cell {
                    Some(url) => {
                        let req = TaskCancel { task_guid: guid.to_owned() };
                        if let Err(e) = self.cells.cancel_task(&url, req).await {
                            tracing::warn!(task = guid, error = %e, "cell did not take the cancel");
                        }
                        Ok(())
                    }
                    None => {
                        let done = TaskCompletion {
                            task_guid: guid.to_owned(),
                            failed: true,
                            failure_reason: "task was cancelled".into(),
                            cell_id: t.cell_id.clone(),
                        };
                        self.task_completed(&done).await
                    }
                }
            }
        }
    }

    /// Tell the api; once it took the news the task is forgotten.
    async fn callback(&self, t: &Task) -> Result<(), EngineError> {
        let done = TaskCompletion {
            task_guid: t.definition.task_guid.clone(),
            failed: t.failed,
            failure_reason: t.failure_reason.clone(),
            cell_id: t.cell_id.clone(),
        };
        match self.cells.task_callback(&t.definition.completion_callback_url, done).await {
            Ok(()) => {
                sqlx::query("DELETE FROM tasks WHERE task_guid = $1 AND state = 'COMPLETED'")
                    .bind(&t.definition.task_guid)
                    .execute(&self.repo.db().pool)
                    .await
                    .map_err(RepoError::from)?;
            }
            Err(e) => {
                tracing::warn!(task = %t.definition.task_guid, error = %e, "task callback failed; retrying");
            }
        }
        Ok(())
    }

    /// One pass: pending tasks placed, tasks on lost cells failed, callbacks retried.
    pub async fn converge_tasks(&self) -> Result<(), EngineError> {
        let now = self.now();
        let live: std::collections::HashSet<String> = self
            .repo
            .list_cells()
            .await?
            .into_iter()
            .filter(|(_, seen)| now - seen <= self.cell_ttl_ns)
            .map(|(p, _)| p.cell_id)
            .collect();
        for t in self.list_tasks(None).await? {
            match t.state {
                TaskState::Running if !live.contains(&t.cell_id) => {
                    let done = TaskCompletion {
                        task_guid: t.definition.task_guid.clone(),
                        failed: true,
                        failure_reason: "cell disappeared before completion".into(),
                        cell_id: t.cell_id.clone(),
                    };
                    self.task_completed(&done).await?;
                }
                TaskState::Completed => self.callback(&t).await?,
                _ => {}
            }
        }
        self.place_tasks().await
    }
}
