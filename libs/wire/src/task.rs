//! One-off tasks between the api, the scheduler and cells (Diego's Tasks): the api desires a
//! task at the scheduler (`PUT /v1/tasks/:guid`), the scheduler places it on a cell
//! (`POST /internal/v1/tasks`), the cell runs it once and reports how it ended
//! (`POST /v1/tasks/:guid/completed`), and the scheduler calls the api back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::lrp::{DesiredLrp, HealthCheck, HealthCheckType, ImageRef};

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

impl TaskDefinition {
    /// The task as one instance of a desired LRP (guid = task guid, no health check, no
    /// routes): what the auction places and what a cell builds the environment from.
    pub fn as_lrp(&self) -> DesiredLrp {
        DesiredLrp {
            process_guid: self.task_guid.clone(),
            domain: self.domain.clone(),
            log_guid: self.log_guid.clone(),
            log_source: "TASK".into(),
            instances: 1,
            memory_mb: self.memory_mb,
            disk_mb: self.disk_mb,
            max_pids: 1024,
            cpu_weight: 1,
            stack: self.stack.clone(),
            image: self.image.clone(),
            start_command: self.command.clone(),
            env: self.env.clone(),
            ports: vec![8080],
            health_check: HealthCheck {
                kind: HealthCheckType::Process,
                endpoint: None,
                invocation_timeout_secs: 1,
                interval_secs: 30,
                start_timeout_secs: 60,
            },
            routes: vec![],
            placement_tags: vec![],
            metric_tags: self.metric_tags.clone(),
            log_rate_limit_bytes_per_second: -1,
            annotation: String::new(),
        }
    }
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
