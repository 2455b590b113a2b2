//! Jobs: what a `202 Accepted` answer's `Location` points to.

use serde::{Deserialize, Serialize};

use super::common::Links;
use super::error::ErrorEntry;

states! {
    JobState {
        Processing = "PROCESSING",
        Polling = "POLLING",
        Complete = "COMPLETE",
        Failed = "FAILED",
    }
}

/// Whether a job may go from `from` to `to`: it works (PROCESSING), may wait on something else
/// (POLLING, which it may re-enter), and ends COMPLETE or FAILED once.
pub fn allows(from: JobState, to: JobState) -> bool {
    use JobState::*;
    match (from, to) {
        (Processing, Polling | Complete | Failed) => true,
        (Polling, Polling | Complete | Failed) => true,
        (Processing, Processing) | (Polling, Processing) => false,
        (Complete | Failed, _) => false,
    }
}

impl JobState {
    /// Whether the job has ended.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Complete | Self::Failed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub guid: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    /// `app.delete`, `space.apply_manifest`, ...
    #[serde(default)]
    pub operation: String,
    pub state: JobState,
    #[serde(default)]
    pub errors: Vec<ErrorEntry>,
    #[serde(default)]
    pub warnings: Vec<Warning>,
    #[serde(default)]
    pub links: Links,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    #[serde(default)]
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::testing::{check_spelling, check_table, round_trip};

    #[test]
    fn jobs_round_trip_complete_and_failed() {
        let done: Job = round_trip(
            r#"{"guid": "j-1", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:46Z",
                "operation": "app.delete", "state": "COMPLETE", "errors": [], "warnings": [],
                "links": {"self": {"href": "https://api.example.com/v3/jobs/j-1"},
                          "app": {"href": "https://api.example.com/v3/apps/a-1"}}}"#,
        );
        assert!(done.state.is_final());
        let failed: Job = round_trip(
            r#"{"guid": "j-2", "created_at": "2026-11-25T04:41:45Z", "updated_at": "2026-11-25T04:41:46Z",
                "operation": "space.apply_manifest", "state": "FAILED",
                "errors": [{"code": 10001, "title": "UnknownError", "detail": "The api restarted while this job was running; run the operation again."}],
                "warnings": [{"detail": "careful"}],
                "links": {"self": {"href": "https://api.example.com/v3/jobs/j-2"}}}"#,
        );
        assert_eq!(failed.errors[0].title, "UnknownError");
    }

    #[test]
    fn transition_table() {
        use JobState::*;
        let allowed = [
            (Processing, Polling),
            (Processing, Complete),
            (Processing, Failed),
            (Polling, Polling),
            (Polling, Complete),
            (Polling, Failed),
        ];
        check_table(JobState::ALL, &allowed, allows);
        check_spelling(JobState::ALL);
        assert!(!Processing.is_final() && !Polling.is_final());
    }
}
