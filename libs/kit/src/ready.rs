//! Readiness: a service is ready only when every one of its named checks is.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// Shared set of named readiness checks; cloning shares the set.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<RwLock<BTreeMap<String, bool>>>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declare a check, not ready until [`Readiness::set`] says so.
    pub fn register(&self, name: impl Into<String>) {
        self.checks.write().unwrap_or_else(|e| e.into_inner()).entry(name.into()).or_insert(false);
    }

    pub fn set(&self, name: impl Into<String>, ready: bool) {
        self.checks.write().unwrap_or_else(|e| e.into_inner()).insert(name.into(), ready);
    }

    pub fn is_ready(&self) -> bool {
        self.checks.read().unwrap_or_else(|e| e.into_inner()).values().all(|v| *v)
    }

    /// Names of the checks that are not ready.
    pub fn pending(&self) -> Vec<String> {
        self.checks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, v)| !**v)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// Keep the check named `"bus"` in step with the bus connection until `shutdown`.
pub async fn follow_bus(ready: Readiness, bus: bus::DynBus, shutdown: crate::Shutdown) {
    ready.register("bus");
    loop {
        ready.set("bus", bus.is_connected());
        let wait = if ready.is_ready() { 1000 } else { 50 };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
        }
    }
}
