//! Route registration (our route emitter): every healthy instance's routes are published on
//! `router.register` every interval and at once when a router announces itself
//! (`router.start`); `router.unregister` when the instance goes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::{BusExt as _, DynBus};
use wire::lrp::Route;
use wire::routing::{RegistryMessage, RouteOptions, RouterStart};
use wire::subjects;

/// What the emitter knows of one instance: its routes (the desired LRP's, or the last ones the
/// scheduler sent) and, once it is healthy, the message every route is announced with.
#[derive(Default)]
struct Entry {
    routes: Option<Vec<Route>>,
    base: Option<RegistryMessage>,
}

impl Entry {
    /// One message per route, as route-emitter sends them.
    fn messages(&self) -> Vec<RegistryMessage> {
        let (Some(base), Some(routes)) = (&self.base, &self.routes) else { return Vec::new() };
        routes
            .iter()
            .map(|r| RegistryMessage {
                uris: vec![r.uri.clone()],
                protocol: r.protocol.clone(),
                options: r.loadbalancing.clone().map(|lb| RouteOptions { loadbalancing: Some(lb) }),
                route_service_url: r.route_service_url.clone(),
                ..base.clone()
            })
            .collect()
    }
}

#[derive(Clone)]
pub struct Emitter {
    bus: DynBus,
    table: Arc<Mutex<HashMap<String, Entry>>>,
}

impl Emitter {
    pub fn new(bus: DynBus) -> Self {
        Self { bus, table: Arc::default() }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start announcing `instance` (published at once): one message per route, each `base`
    /// with the route's fields. `routes` are the desired LRP's, unless the scheduler has sent
    /// newer ones for this instance ([`Emitter::set_routes`]).
    pub async fn register(&self, instance: &str, base: RegistryMessage, routes: &[Route]) {
        let messages = {
            let mut table = self.table();
            let e = table.entry(instance.to_owned()).or_default();
            e.routes.get_or_insert_with(|| routes.to_vec());
            e.base = Some(base);
            e.messages()
        };
        self.publish(subjects::ROUTER_REGISTER, &messages).await;
    }

    /// The routes of `instance` changed: from now on it announces `routes`. If it is
    /// announced already, the routes that are gone are unregistered and the new set registered
    /// at once; otherwise they are what it registers when it turns healthy.
    pub async fn set_routes(&self, instance: &str, routes: Vec<Route>) {
        let (gone, now) = {
            let mut table = self.table();
            let e = table.entry(instance.to_owned()).or_default();
            let before = e.messages();
            e.routes = Some(routes);
            let now = e.messages();
            // Routers match an unregistration on address and URI only: a route whose other
            // fields changed (a route service bound, say) is registered again, not removed.
            let gone: Vec<_> =
                before.into_iter().filter(|m| !now.iter().any(|n| n.uris == m.uris)).collect();
            (gone, now)
        };
        self.publish(subjects::ROUTER_UNREGISTER, &gone).await;
        self.publish(subjects::ROUTER_REGISTER, &now).await;
    }

    /// The routes `instance` is to announce, unless it has been told others already (a route
    /// update that arrived first is newer). Used before the instance is announced.
    pub fn first_routes(&self, instance: &str, routes: Vec<Route>) {
        self.table().entry(instance.to_owned()).or_default().routes.get_or_insert(routes);
    }

    /// Stop announcing `instance` and tell the routers. What the scheduler sent for it is
    /// kept until [`Emitter::forget`].
    pub async fn unregister(&self, instance: &str) {
        let gone = self.table().get_mut(instance).map(|e| {
            let m = e.messages();
            e.base = None;
            m
        });
        self.publish(subjects::ROUTER_UNREGISTER, &gone.unwrap_or_default()).await;
    }

    /// The instance is gone from this cell: drop everything about it (unregistered before).
    pub fn forget(&self, instance: &str) {
        self.table().remove(instance);
    }

    async fn publish(&self, subject: &str, messages: &[RegistryMessage]) {
        for m in messages {
            let _ = self.bus.publish_json(subject, m).await;
        }
    }

    async fn publish_all(&self) {
        let all: Vec<RegistryMessage> = self.table().values().flat_map(Entry::messages).collect();
        self.publish(subjects::ROUTER_REGISTER, &all).await;
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
