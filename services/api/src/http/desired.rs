//! Desired state now lives in [`crate::domain::desired`]; these names stay for the callers of
//! other families until the merge.

pub use crate::domain::desired::{run_resync, sync_app_logged, vcap_application}; // compat: removed at merge
