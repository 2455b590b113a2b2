//! Keeping the table current: registrations from the bus, TTL pruning, and the router's own
//! announcements (`router.start` on start and after every bus reconnect; answers to
//! `router.greet`).

use std::time::{Duration, Instant};

use bus::{BusExt as _, DynBus};
use wire::routing::{RegistryMessage, RouterStart};
use wire::subjects;

use crate::metrics::{Action, RouterMetrics};
use crate::table::{Registry, Shared};

pub struct Updater {
    pub bus: DynBus,
    pub table: Shared,
    pub start: RouterStart,
    pub prune_interval: Duration,
    pub default_ttl: Duration,
    pub metrics: RouterMetrics,
}

impl Updater {
    pub async fn run(self, ready: kit::ready::Readiness, shutdown: kit::Shutdown) {
        // One subscription for every `router.*` subject: registrations and unregistrations
        // are applied in the order the bus delivered them (a replacement's registration that
        // was published before the old instance's unregistration is never applied after it).
        let mut msgs = match self.bus.subscribe(subjects::ROUTER_ALL).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot subscribe to route registrations");
                return;
            }
        };
        ready.set("routes", true);
        let mut registry = Registry::default();
        let mut epoch = self.bus.connection_epoch();
        let _ = self.bus.publish_json(subjects::ROUTER_START, &self.start).await;
        let mut prune = tokio::time::interval(self.prune_interval);
        loop {
            let changed = tokio::select! {
                () = shutdown.cancelled() => return,
                Some(m) = msgs.next() => self.apply(&mut registry, &m).await,
                Ok(()) = epoch.changed() => {
                    let _ = self.bus.publish_json(subjects::ROUTER_START, &self.start).await;
                    false
                }
                _ = prune.tick() => {
                    let pruned = registry.prune(Instant::now());
                    self.metrics.routes_pruned.inc_by(pruned as u64);
                    pruned > 0
                }
            };
            if changed {
                let table = registry.snapshot();
                self.metrics.routes.set(i64::try_from(table.route_count()).unwrap_or(i64::MAX));
                self.table.store(table);
            }
        }
    }

    /// One `router.*` message; whether the table changed.
    async fn apply(&self, registry: &mut Registry, m: &bus::Message) -> bool {
        let register = match m.subject.as_str() {
            subjects::ROUTER_REGISTER => true,
            subjects::ROUTER_UNREGISTER => false,
            subjects::ROUTER_GREET => {
                if let Ok(body) = serde_json::to_vec(&self.start) {
                    let _ = self.bus.respond(m, body.into()).await;
                }
                return false;
            }
            // `router.start` of this and other routers.
            _ => return false,
        };
        let msg = match serde_json::from_slice::<RegistryMessage>(&m.payload) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::debug!(error = %e, subject = %m.subject, "malformed registry message");
                return false;
            }
        };
        let action = if register {
            registry.register(&msg, self.default_ttl);
            "register"
        } else {
            registry.unregister(&msg);
            "unregister"
        };
        self.metrics.registry_messages.get_or_create(&Action { action }).inc();
        true
    }
}
