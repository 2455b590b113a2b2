//! Keeping the table current: registrations from the bus, TTL pruning, and the router's own
//! announcements (`router.start` on start and after every bus reconnect; answers to
//! `router.greet`).

use std::time::{Duration, Instant};

use bus::{BusExt as _, DynBus};
use wire::routing::{RegistryMessage, RouterStart};
use wire::subjects;

use crate::metrics::{Action, RouterMetrics};
use crate::table::{Registry, Shared};

/// Most messages applied before a snapshot (one subscription buffer's worth: a few
/// milliseconds of work, so a burst delays no route by more).
const COALESCE: usize = bus::SUBSCRIPTION_BUFFER;

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
                Some(m) = msgs.next() => {
                    let mut changed = self.apply(&mut registry, &m).await;
                    // Messages already waiting go into the same snapshot: a burst (a deploy,
                    // a cell back after a partition) costs one table, not one per message.
                    for _ in 0..COALESCE {
                        let Some(m) = msgs.try_next() else { break };
                        changed |= self.apply(&mut registry, &m).await;
                    }
                    changed
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

    /// One `router.*` message; whether the table changed (not for a heartbeat that repeats a
    /// registration: a new snapshot per heartbeat would cost the whole table each time).
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
        let (action, changed) = if register {
            ("register", registry.register(&msg, self.default_ttl))
        } else {
            ("unregister", registry.unregister(&msg))
        };
        self.metrics.registry_messages.get_or_create(&Action { action }).inc();
        changed
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn registration(i: u16) -> RegistryMessage {
        RegistryMessage {
            host: "10.0.0.1".into(),
            port: 1000 + i,
            uris: vec![format!("app-{i}.example.com")],
            app: format!("app-{i}"),
            ..Default::default()
        }
    }

    /// Yield until `done`, for at most 10 s.
    async fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "{what}: not within 10 s");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn a_burst_of_registrations_makes_one_table_and_heartbeats_make_none() {
        let bus: DynBus = Arc::new(bus::InProcessBus::new());
        let table = Shared::default();
        let updater = Updater {
            bus: bus.clone(),
            table: table.clone(),
            start: RouterStart {
                id: "router-0".into(),
                hosts: Vec::new(),
                minimum_register_interval_in_seconds: 20,
                prune_threshold_in_seconds: 120,
            },
            prune_interval: Duration::from_secs(3600),
            default_ttl: Duration::from_secs(120),
            metrics: RouterMetrics::new(&kit::metrics::Metrics::new("router")),
        };
        let ready = kit::ready::Readiness::new();
        ready.register("routes");
        let shutdown = kit::Shutdown::new();
        let task = tokio::spawn(updater.run(ready.clone(), shutdown.clone()));
        until("subscribed", || ready.is_ready()).await;
        let before = table.version();
        // Published without a pause (the in-process bus delivers at once): all of them wait
        // when the updater looks.
        let burst: Vec<RegistryMessage> = (0..2000).map(registration).collect();
        for m in &burst {
            bus.publish_json(subjects::ROUTER_REGISTER, m).await.expect("publish");
        }
        until("the burst applied", || table.load().route_count() == 2000).await;
        let after_burst = table.version();
        assert_eq!(after_burst - before, 1, "one table for the burst");
        // Every route's heartbeat, then one new route: only the new route makes a table.
        for m in burst.iter().chain([&registration(2000)]) {
            bus.publish_json(subjects::ROUTER_REGISTER, m).await.expect("publish");
        }
        until("the new route applied", || table.load().route_count() == 2001).await;
        assert_eq!(table.version(), after_burst + 1, "heartbeats make no table");
        // One at a time, each change is a table of its own at once.
        bus.publish_json(subjects::ROUTER_UNREGISTER, &registration(0)).await.expect("publish");
        until("the unregistration applied", || table.version() == after_burst + 2).await;
        let pool = table.load().lookup("app-0.example.com", "/").expect("known route");
        assert!(pool.endpoints.is_empty());
        shutdown.cancel();
        task.await.expect("updater");
    }
}
