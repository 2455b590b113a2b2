//! Instance lifecycle facts published on `app.events`, recorded by the api as audit events
//! (`audit.app.process.crash`) and shown in the app's log stream.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppEvent {
    pub app_guid: String,
    pub process_guid: String,
    pub index: u32,
    pub instance_guid: String,
    #[serde(default)]
    pub cell_id: String,
    #[serde(flatten)]
    pub kind: AppEventKind,
    /// Unix ns.
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AppEventKind {
    Crash { reason: String, exit_status: Option<i32>, crash_count: u32 },
    PlacementFailed { error: String },
}
