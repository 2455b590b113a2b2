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
        let subs = async {
            Ok::<_, bus::BusError>((
                self.bus.subscribe(subjects::ROUTER_REGISTER).await?,
                self.bus.subscribe(subjects::ROUTER_UNREGISTER).await?,
                self.bus.subscribe(subjects::ROUTER_GREET).await?,
            ))
        };
        let (mut reg, mut unreg, mut greet) = match subs.await {
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
                Some(m) = reg.next() => match serde_json::from_slice::<RegistryMessage>(&m.payload) {
                    Ok(msg) => {
                        registry.register(&msg, self.default_ttl);
                        self.metrics.registry_messages.get_or_create(&Action { action: "register" }).inc();
                        true
                    }
                    Err(e) => { tracing::debug!(error = %e, "malformed router.register"); false }
                },
                Some(m) = unreg.next() => match serde_json::from_slice::<RegistryMessage>(&m.payload) {
                    Ok(msg) => {
                        registry.unregister(&msg);
                        self.metrics.registry_messages.get_or_create(&Action { action: "unregister" }).inc();
                        true
                    }
                    Err(_) => false,
                },
                Some(m) = greet.next() => {
                    if let Ok(body) = serde_json::to_vec(&self.start) {
                        let _ = self.bus.respond(&m, body.into()).await;
                    }
                    false
                }
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
}
