//! Tasks (`/v3/tasks`, `/v3/apps/:guid/tasks`): one-off commands run with an app's droplet
//! and environment.

use serde::{Deserialize, Serialize};

use super::common::{Links, Metadata, ToOne};

states! {
    /// A task's state.
    TaskState {
        Pending = "PENDING",
        Running = "RUNNING",
        Canceling = "CANCELING",
        Succeeded = "SUCCEEDED",
        Failed = "FAILED",
    }
}

/// The states a task may move to, from `from` (the task lifecycle table).
pub fn allows(from: TaskState, to: TaskState) -> bool {
    use TaskState::*;
    matches!(
        (from, to),
        (Pending, Running | Canceling | Succeeded | Failed)
            | (Running, Canceling | Succeeded | Failed)
            | (Canceling, Succeeded | Failed)
    )
}

impl TaskState {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub guid: String,
    pub sequence_id: i64,
    pub name: String,
    #[serde(default)]
    pub command: Option<String>,
    pub state: TaskState,
    pub memory_in_mb: i64,
    pub disk_in_mb: i64,
    #[serde(default)]
    pub log_rate_limit_in_bytes_per_second: i64,
    pub result: TaskResult,
    #[serde(default)]
    pub droplet_guid: String,
    #[serde(default)]
    pub relationships: TaskRelationships,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub links: Links,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResult {
    #[serde(default)]
    pub failure_reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRelationships {
    #[serde(default)]
    pub app: ToOne,
}

/// `POST /v3/apps/:guid/tasks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTask {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_in_mb: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_in_mb: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_rate_limit_in_bytes_per_second: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub droplet_guid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TaskTemplate>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTemplate {
    pub process: super::Guid,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::{check_spelling, check_table, round_trip};

    #[test]
    fn a_task_round_trips() {
        let t: Task = round_trip(
            r#"{"guid": "t-1", "sequence_id": 2, "name": "migrate", "command": "rake db:migrate",
                "state": "FAILED", "memory_in_mb": 256, "disk_in_mb": 1024,
                "log_rate_limit_in_bytes_per_second": -1,
                "result": {"failure_reason": "APP/TASK/migrate: Exited with status 1"},
                "droplet_guid": "d-1", "relationships": {"app": {"data": {"guid": "a-1"}}},
                "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:46Z",
                "metadata": {"labels": {}, "annotations": {}},
                "links": {"self": {"href": "https://api.example.com/v3/tasks/t-1"}}}"#,
        );
        assert_eq!(t.state, TaskState::Failed);
    }

    #[test]
    fn states_and_their_moves() {
        use TaskState::*;
        check_spelling(TaskState::ALL);
        let allowed = [
            (Pending, Running),
            (Pending, Canceling),
            (Pending, Succeeded),
            (Pending, Failed),
            (Running, Canceling),
            (Running, Succeeded),
            (Running, Failed),
            (Canceling, Succeeded),
            (Canceling, Failed),
        ];
        check_table(TaskState::ALL, &allowed, allows);
    }
}
