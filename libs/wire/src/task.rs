//! One-off tasks between the api, the scheduler and cells (Diego's Tasks): the api desires a
//! task at the scheduler (`PUT /v1/tasks/:guid`), the scheduler places it on a cell
//! (`POST /internal/v1/tasks`), the cell runs it once and reports how it ended
//! (`POST /v1/tasks/:guid/completed`), and the scheduler calls the api back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::lrp::ImageRef;

/// Domain of the api's tasks.
pub const CF_TASKS_DOMAIN: &str = "cf-tasks";

/// What to run, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDefinition {
    pub task_guid: String,
    #[serde(default = "default_domain")]
    pub domain: String,
    /// App guid: the log source id.
    pub log_guid: String,
    /// The task's name: its logs are `APP/TASK/<name>`.
    pub name: String,
    pub memory_mb: u64,
    pub disk_mb: u64,
    pub stack: String,
    pub image: ImageRef,
    pub command: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub metric_tags: BTreeMap<String, String>,
    /// Where the scheduler reports the end (an api internal URL).
    pub completion_callback_url: String,
}

fn default_domain() -> String {
    CF_TASKS_DOMAIN.into()
}

/// A task at the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskState {
    Pending,
    Running,
    Completed,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Completed => "COMPLETED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Running, Self::Completed].into_iter().find(|s| s.as_str() == text)
    }
}

/// A task as the scheduler keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub definition: TaskDefinition,
    pub state: TaskState,
    #[serde(default)]
    pub cell_id: String,
    #[serde(default)]
    pub failed: bool,
    #[serde(default)]
    pub failure_reason: String,
    /// Why it is not placed yet, if it is not.
    #[serde(default)]
    pub placement_error: String,
    /// Unix ns.
    pub created_at: i64,
    pub updated_at: i64,
}

/// Cell → scheduler, and scheduler → api: how a task ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCompletion {
    pub task_guid: String,
    pub failed: bool,
    #[serde(default)]
    pub failure_reason: String,
    #[serde(default)]
    pub cell_id: String,
}

/// Scheduler → cell: stop a running task (`POST /internal/v1/tasks/cancel`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCancel {
    pub task_guid: String,
}
