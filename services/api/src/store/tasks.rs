//! The `tasks` table: an app's one-off tasks, numbered per app.

use sqlx::any::AnyRow;
use sqlx::Row as _;
use wire::v3::TaskState;

use super::{state_col, Exec, Select};
use crate::error::ApiResult;

#[derive(Debug, Clone)]
pub struct Task {
    pub guid: String,
    pub app_guid: String,
    pub sequence_id: i64,
    pub name: String,
    pub command: String,
    pub state: TaskState,
    pub memory_mb: i64,
    pub disk_mb: i64,
    pub log_rate: i64,
    pub droplet_guid: String,
    pub failure_reason: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Task {
    pub fn from_row(r: &AnyRow) -> ApiResult<Self> {
        Ok(Self {
            guid: r.try_get("guid")?,
            app_guid: r.try_get("app_guid")?,
            sequence_id: r.try_get("sequence_id")?,
            name: r.try_get("name")?,
            command: r.try_get("command")?,
            state: state_col(r, "tasks", "state", TaskState::parse)?,
            memory_mb: r.try_get("memory_mb")?,
            disk_mb: r.try_get("disk_mb")?,
            log_rate: r.try_get("log_rate")?,
            droplet_guid: r.try_get("droplet_guid")?,
            failure_reason: r.try_get("failure_reason")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
}

/// The select of a tasks list.
pub fn select() -> Select {
    Select::from("tasks")
}

/// The app's next `sequence_id` (run in the transaction that inserts the task).
pub async fn next_sequence<'e>(ex: impl Exec<'e>, app: &str) -> ApiResult<i64> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(MAX(sequence_id), 0) + 1 AS BIGINT) AS n FROM tasks WHERE app_guid = $1",
    )
    .bind(app)
    .fetch_one(ex)
    .await?;
    Ok(row.try_get("n")?)
}

/// How many of the app's tasks are pending, running or being cancelled.
pub async fn count_active<'e>(ex: impl Exec<'e>, app: &str) -> ApiResult<i64> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM tasks WHERE app_guid = $1 \
         AND state IN ('PENDING', 'RUNNING', 'CANCELING')",
    )
    .bind(app)
    .fetch_one(ex)
    .await?;
    Ok(row.try_get("n")?)
}

/// Guids of the app's tasks that have not ended.
pub async fn active_of_app<'e>(ex: impl Exec<'e>, app: &str) -> ApiResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT guid FROM tasks WHERE app_guid = $1 AND state IN ('PENDING', 'RUNNING', 'CANCELING')",
    )
    .bind(app)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("guid")?)).collect()
}

pub async fn insert<'e>(ex: impl Exec<'e>, t: &Task) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO tasks (guid, app_guid, sequence_id, name, command, state, memory_mb, disk_mb, \
         log_rate, droplet_guid, failure_reason, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
    )
    .bind(&t.guid)
    .bind(&t.app_guid)
    .bind(t.sequence_id)
    .bind(&t.name)
    .bind(&t.command)
    .bind(t.state.as_str())
    .bind(t.memory_mb)
    .bind(t.disk_mb)
    .bind(t.log_rate)
    .bind(&t.droplet_guid)
    .bind(&t.failure_reason)
    .bind(t.created_at)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn find<'e>(ex: impl Exec<'e>, guid: &str) -> ApiResult<Option<Task>> {
    let row =
        sqlx::query("SELECT * FROM tasks WHERE guid = $1").bind(guid).fetch_optional(ex).await?;
    row.as_ref().map(Task::from_row).transpose()
}

/// Move a task from `from` to `to` (the caller checked the move) with `reason`; whether it was
/// in `from`.
pub async fn transition<'e>(
    ex: impl Exec<'e>,
    guid: &str,
    from: TaskState,
    to: TaskState,
    reason: &str,
    now: i64,
) -> ApiResult<bool> {
    let res = sqlx::query(
        "UPDATE tasks SET state = $1, failure_reason = $2, updated_at = $3 \
         WHERE guid = $4 AND state = $5",
    )
    .bind(to.as_str())
    .bind(reason)
    .bind(now)
    .bind(guid)
    .bind(from.as_str())
    .execute(ex)
    .await?;
    Ok(res.rows_affected() == 1)
}
