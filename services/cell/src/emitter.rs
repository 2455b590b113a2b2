//! Route registration (our route emitter): every healthy instance's routes are published on
//! `router.register` every interval and at once when a router announces itself
//! (`router.start`); `router.unregister` when the instance goes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::{BusExt as _, DynBus};
use wire::routing::{RegistryMessage, RouterStart};
use wire::subjects;

#[derive(Clone)]
pub struct Emitter {
    bus: DynBus,
    table: Arc<Mutex<HashMap<String, Vec<RegistryMessage>>>>,
}

impl Emitter {
    pub fn new(bus: DynBus) -> Self {
        Self { bus, table: Arc::default() }
    }

    /// Start announcing `messages` for `instance` (published at once).
    pub async fn register(&self, instance: &str, messages: Vec<RegistryMessage>) {
        for m in &messages {
            let _ = self.bus.publish_json(subjects::ROUTER_REGISTER, m).await;
        }
        self.table.lock().unwrap_or_else(|e| e.into_inner()).insert(instance.to_owned(), messages);
    }

    /// Stop announcing `instance` and tell the routers.
    pub async fn unregister(&self, instance: &str) {
        let gone = self.table.lock().unwrap_or_else(|e| e.into_inner()).remove(instance);
        for m in gone.unwrap_or_default() {
            let _ = self.bus.publish_json(subjects::ROUTER_UNREGISTER, &m).await;
        }
    }

    async fn publish_all(&self) {
        let all: Vec<RegistryMessage> = self
            .table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .flatten()
            .cloned()
            .collect();
        for m in &all {
            let _ = self.bus.publish_json(subjects::ROUTER_REGISTER, m).await;
        }
    }

    /// Re-register every interval (a router's `router.start` sets the interval) and at once
    /// when a router starts.
    pub async fn run(self, default_interval: Duration, shutdown: kit::Shutdown) {
        let mut starts = match self.bus.subscribe(subjects::ROUTER_START).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for router.start");
                None
            }
        };
        let mut interval = default_interval;
        loop {
            let announced = async {
                match starts.as_mut() {
                    Some(s) => s.next().await,
                    None => futures::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                m = announced => {
                    if let Some(start) = m.and_then(|m| serde_json::from_slice::<RouterStart>(&m.payload).ok()) {
                        interval = Duration::from_secs(start.minimum_register_interval_in_seconds.max(1));
                    }
                    self.publish_all().await;
                }
                () = tokio::time::sleep(interval) => self.publish_all().await,
            }
        }
    }
}
