//! The route table: endpoints per route (host plus optional context path), fed by
//! `router.register` / `router.unregister`, pruned by TTL. Readers take an immutable snapshot
//! (one `Arc` clone; a worker thread through a [`Local`] view, which clones only after the
//! table changed), so the request path never waits on updates; one task applies updates.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use wire::routing::RegistryMessage;

/// One backend of a route.
#[derive(Debug)]
pub struct Endpoint {
    pub addr: String,
    pub app: String,
    pub instance_id: String,
    pub index: String,
    pub updated: Instant,
    pub ttl: Duration,
    pub least_connection: bool,
    /// The route service its registration named (https URL), if any.
    pub route_service_url: Option<Arc<str>>,
    /// Registered with `protocol: http2`: spoken to in HTTP/2 over cleartext (h2c).
    pub http2: bool,
    /// Its `availability_zone`, if the registration named one.
    pub zone: Option<Arc<str>>,
    /// Requests in flight (least-connection and connection limits), kept across the
    /// registrations of its address: a heartbeat replaces the `Endpoint`, and a request that
    /// took the one before must end on the count the next one reads.
    pub inflight: Arc<AtomicUsize>,
}

/// The endpoints of one route, with the round-robin position.
#[derive(Debug, Default)]
pub struct Pool {
    pub endpoints: Vec<Arc<Endpoint>>,
    pub next: AtomicUsize,
    /// The route service every request of this route goes through first: what the most
    /// recent registration named (gorouter keeps it per pool the same way).
    pub route_service_url: Option<Arc<str>>,
}

/// The hasher of the maps every request looks into: seeded at random per process (keys
/// cannot be chosen to collide) and several times cheaper than the default for short keys.
pub(crate) type Fast = foldhash::fast::RandomState;

/// Host → (context path, pool), longest paths first.
#[derive(Debug, Default)]
pub struct Table {
    routes: HashMap<String, Vec<(String, Arc<Pool>)>, Fast>,
    /// Whether any route has a route service or an HTTP/2 endpoint (the HTTP/1.1 fast path
    /// looks only then).
    special: bool,
}

/// Split `host/path` into a lowercase host and a path without trailing slash ("" for none).
pub fn split_uri(uri: &str) -> (String, String) {
    let uri = uri.split('?').next().unwrap_or("");
    let (host, path) = match uri.find('/') {
        Some(i) => (&uri[..i], uri[i..].trim_end_matches('/')),
        None => (uri, ""),
    };
    (host.to_ascii_lowercase(), path.to_owned())
}

fn path_matches(prefix: &str, path: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

impl Table {
    /// The pool for `host` + `path`: longest matching context path with endpoints, then
    /// wildcard parents (`*.b.example.com`, `*.example.com`, ...). A known route with no
    /// endpoints returns its empty pool.
    pub fn lookup(&self, host: &str, path: &str) -> Option<Arc<Pool>> {
        // Hosts come lowercased from the request path; copied only when they are not (or
        // when a wildcard is tried).
        let mut candidate = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(host.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(host)
        };
        let mut empty = None;
        loop {
            if let Some(routes) = self.routes.get(candidate.as_ref()) {
                for (prefix, pool) in routes {
                    if path_matches(prefix, path) {
                        if !pool.endpoints.is_empty() {
                            return Some(pool.clone());
                        }
                        empty.get_or_insert_with(|| pool.clone());
                    }
                }
                if empty.is_some() {
                    return empty;
                }
            }
            let rest = candidate.strip_prefix("*.").unwrap_or(&candidate);
            let parent = rest.split_once('.').map(|(_, p)| p)?;
            if !parent.contains('.') {
                return empty;
            }
            candidate = std::borrow::Cow::Owned(format!("*.{parent}"));
        }
    }

    pub fn route_count(&self) -> usize {
        self.routes.values().map(Vec::len).sum()
    }

    /// The table as gorouter's `GET /routes` shows it: `host[/path]` → its endpoints.
    pub fn dump(&self) -> std::collections::BTreeMap<String, Vec<serde_json::Value>> {
        let now = Instant::now();
        let mut out = std::collections::BTreeMap::new();
        for (host, list) in &self.routes {
            for (path, pool) in list {
                let endpoints = pool
                    .endpoints
                    .iter()
                    .map(|e| {
                        let left = e.ttl.saturating_sub(now.duration_since(e.updated));
                        serde_json::json!({
                            "address": e.addr,
                            "protocol": if e.http2 { "http2" } else { "http1" },
                            "tls": false,
                            "ttl": left.as_secs(),
                            "route_service_url": pool.route_service_url.as_deref(),
                            "private_instance_id": e.instance_id,
                            "private_instance_index": e.index,
                            "app_id": e.app,
                            "availability_zone": e.zone.as_deref(),
                            "load_balancing_algorithm":
                                if e.least_connection { "least-connection" } else { "round-robin" },
                        })
                    })
                    .collect();
                out.insert(format!("{host}{path}"), endpoints);
            }
        }
        out
    }

    /// Whether some route has a route service or an HTTP/2 endpoint.
    pub fn has_special_routes(&self) -> bool {
        self.special
    }
}

/// The mutable side, owned by the updater.
#[derive(Default)]
pub struct Registry {
    /// uri → endpoints by address.
    entries: HashMap<(String, String), HashMap<String, Arc<Endpoint>>>,
}

impl Registry {
    pub fn register(&mut self, m: &RegistryMessage, default_ttl: Duration) {
        let addr = format!("{}:{}", m.host, m.port);
        let lc =
            m.options.as_ref().and_then(|o| o.loadbalancing.as_deref()) == Some("least-connection");
        let ttl = m.stale_threshold_in_seconds.map_or(default_ttl, Duration::from_secs);
        // The count of the address's registration already in the table under one of the
        // message's routes, else a new one (one for all the message's routes): a copy of its
        // value would never see the requests in flight end, and would climb with every
        // heartbeat until the instance looked full.
        let inflight = m
            .uris
            .iter()
            .find_map(|uri| self.entries.get(&split_uri(uri))?.get(&addr))
            .map_or_else(Arc::default, |old| old.inflight.clone());
        for uri in &m.uris {
            let ep = Endpoint {
                addr: addr.clone(),
                app: m.app.clone(),
                instance_id: m.private_instance_id.clone(),
                index: m.private_instance_index.clone(),
                updated: Instant::now(),
                ttl,
                least_connection: lc,
                route_service_url: m.route_service_url.as_deref().map(Arc::from),
                http2: m.protocol.as_deref() == Some("http2"),
                zone: m.availability_zone.as_deref().filter(|z| !z.is_empty()).map(Arc::from),
                inflight: inflight.clone(),
            };
            self.entries.entry(split_uri(uri)).or_default().insert(addr.clone(), Arc::new(ep));
        }
    }

    pub fn unregister(&mut self, m: &RegistryMessage) {
        let addr = format!("{}:{}", m.host, m.port);
        for uri in &m.uris {
            let key = split_uri(uri);
            if let Some(slot) = self.entries.get_mut(&key) {
                slot.remove(&addr);
            }
        }
    }

    /// Drop endpoints older than their TTL; returns how many.
    pub fn prune(&mut self, now: Instant) -> usize {
        let mut pruned = 0;
        for slot in self.entries.values_mut() {
            let before = slot.len();
            slot.retain(|_, e| now.duration_since(e.updated) <= e.ttl);
            pruned += before - slot.len();
        }
        pruned
    }

    /// An immutable table for readers (routes with no endpoints stay, answering 503).
    pub fn snapshot(&self) -> Table {
        let mut routes: HashMap<String, Vec<(String, Arc<Pool>)>, Fast> = HashMap::default();
        let mut special = false;
        for ((host, path), slot) in &self.entries {
            let mut endpoints: Vec<Arc<Endpoint>> = slot.values().cloned().collect();
            endpoints.sort_by(|a, b| a.addr.cmp(&b.addr));
            let start = rand::random::<usize>() % endpoints.len().max(1);
            let route_service_url = endpoints
                .iter()
                .max_by_key(|e| e.updated)
                .and_then(|e| e.route_service_url.clone());
            special |= route_service_url.is_some() || endpoints.iter().any(|e| e.http2);
            let pool =
                Arc::new(Pool { endpoints, next: AtomicUsize::new(start), route_service_url });
            routes.entry(host.clone()).or_default().push((path.clone(), pool));
        }
        for list in routes.values_mut() {
            list.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        }
        Table { routes, special }
    }
}

/// The snapshot readers use.
#[derive(Clone, Default)]
pub struct Shared(Arc<Published>);

#[derive(Default)]
struct Published {
    table: RwLock<Arc<Table>>,
    /// Bumped after every store, so [`Local`] views know when to look again.
    version: AtomicU64,
}

impl Shared {
    pub fn load(&self) -> Arc<Table> {
        self.0.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn store(&self, t: Table) {
        *self.0.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(t);
        self.0.version.fetch_add(1, Ordering::Release);
    }

    /// A view of the table for one worker thread.
    pub fn local(&self) -> Local {
        Local { shared: self.clone(), cached: Mutex::new(None) }
    }
}

/// One worker thread's view of the table: the current snapshot in an `Arc` of the worker's
/// own, so a request takes a reference on a cache line no other thread writes. The shared
/// lock and the snapshot's own count, which every worker would otherwise take from the
/// others on every request, are touched only after the table changed.
pub struct Local {
    shared: Shared,
    cached: Mutex<Option<(u64, View)>>,
}

/// A snapshot behind a reference count of one worker's own.
#[allow(clippy::redundant_allocation)] // the second allocation is the point: see [`Local`]
pub type View = Arc<Arc<Table>>;

impl Local {
    pub fn load(&self) -> View {
        // Read before the table: a store in between leaves a newer table under an older
        // version, which the next load replaces; never the other way round.
        let version = self.shared.0.version.load(Ordering::Acquire);
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((v, table)) = &*cached {
            if *v == version {
                return table.clone();
            }
        }
        let table = Arc::new(self.shared.load());
        *cached = Some((version, table.clone()));
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(port: u16, uris: &[&str]) -> RegistryMessage {
        RegistryMessage {
            host: "10.0.0.1".into(),
            port,
            uris: uris.iter().map(|u| (*u).to_owned()).collect(),
            app: "app".into(),
            ..Default::default()
        }
    }

    fn addrs(t: &Table, host: &str, path: &str) -> Vec<String> {
        t.lookup(host, path)
            .map(|p| p.endpoints.iter().map(|e| e.addr.clone()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_workers_view_follows_every_store_and_is_reused_between_them() {
        let shared = Shared::default();
        let mut r = Registry::default();
        let ttl = Duration::from_secs(120);
        let local = shared.local();
        let empty = local.load();
        assert!(addrs(&empty, "a.example.com", "/").is_empty());
        assert!(Arc::ptr_eq(&empty, &local.load()), "no store: the same view");
        r.register(&msg(1, &["a.example.com"]), ttl);
        shared.store(r.snapshot());
        let first = local.load();
        assert_eq!(addrs(&first, "a.example.com", "/"), ["10.0.0.1:1"]);
        assert!(Arc::ptr_eq(&first, &local.load()));
        // Another worker's view and the shared table agree.
        assert_eq!(addrs(&shared.local().load(), "a.example.com", "/"), ["10.0.0.1:1"]);
        r.register(&msg(2, &["a.example.com"]), ttl);
        shared.store(r.snapshot());
        assert_eq!(addrs(&local.load(), "a.example.com", "/"), ["10.0.0.1:1", "10.0.0.1:2"]);
        assert_eq!(addrs(&shared.load(), "a.example.com", "/"), ["10.0.0.1:1", "10.0.0.1:2"]);
    }

    #[test]
    fn lookups_by_host_path_and_wildcard() {
        let mut r = Registry::default();
        let ttl = Duration::from_secs(120);
        r.register(&msg(1, &["App.Example.com"]), ttl);
        r.register(&msg(2, &["app.example.com/api"]), ttl);
        r.register(&msg(3, &["*.example.com"]), ttl);
        r.register(&msg(4, &["*.b.example.com"]), ttl);
        let t = r.snapshot();
        assert_eq!(addrs(&t, "APP.example.com", "/"), ["10.0.0.1:1"]);
        assert_eq!(addrs(&t, "app.example.com", "/api/v1"), ["10.0.0.1:2"]);
        assert_eq!(
            addrs(&t, "app.example.com", "/apix"),
            ["10.0.0.1:1"],
            "prefix ends at a segment"
        );
        assert_eq!(addrs(&t, "other.example.com", "/"), ["10.0.0.1:3"]);
        assert_eq!(addrs(&t, "a.b.example.com", "/"), ["10.0.0.1:4"]);
        assert_eq!(addrs(&t, "x.y.b.example.com", "/"), ["10.0.0.1:4"]);
        assert!(t.lookup("example.org", "/").is_none());
        r.unregister(&msg(1, &["app.example.com"]));
        let t = r.snapshot();
        let pool = t.lookup("app.example.com", "/").expect("known route");
        assert!(pool.endpoints.is_empty(), "an emptied route stays known (503, not 404)");
    }

    #[test]
    fn a_routes_route_service_is_the_one_its_latest_registration_names() {
        let mut r = Registry::default();
        let ttl = Duration::from_secs(120);
        assert!(!r.snapshot().has_special_routes());
        let mut bound = msg(1, &["a.example.com"]);
        bound.route_service_url = Some("https://rs.example.com/".into());
        r.register(&bound, ttl);
        r.register(&msg(2, &["b.example.com"]), ttl);
        let t = r.snapshot();
        assert!(t.has_special_routes());
        let rs = |t: &Table, h: &str| t.lookup(h, "/").and_then(|p| p.route_service_url.clone());
        assert_eq!(rs(&t, "a.example.com").as_deref(), Some("https://rs.example.com/"));
        assert_eq!(rs(&t, "b.example.com"), None);
        // Unbound: the instances register without it.
        r.register(&msg(1, &["a.example.com"]), ttl);
        let t = r.snapshot();
        assert_eq!(rs(&t, "a.example.com"), None);
        assert!(!t.has_special_routes());
        let mut h2 = msg(3, &["c.example.com"]);
        h2.protocol = Some("http2".into());
        r.register(&h2, ttl);
        let t = r.snapshot();
        assert!(t.has_special_routes(), "an HTTP/2 endpoint takes the hyper path too");
        assert!(t.lookup("c.example.com", "/").is_some_and(|p| p.endpoints[0].http2));
    }

    #[test]
    fn a_request_in_flight_across_heartbeats_ends_on_the_count_they_read() {
        let mut r = Registry::default();
        let ttl = Duration::from_secs(120);
        let both = msg(1, &["a.example.com", "b.example.com"]);
        r.register(&both, ttl);
        let ep = |t: &Table, host: &str| t.lookup(host, "/").expect("route").endpoints[0].clone();
        let first = ep(&r.snapshot(), "a.example.com");
        let lease = crate::pick::acquire(&first, 1).expect("free");
        // The instance's heartbeat replaces its endpoints while the request is in flight.
        r.register(&both, ttl);
        let t = r.snapshot();
        let (a, b) = (ep(&t, "a.example.com"), ep(&t, "b.example.com"));
        assert!(!Arc::ptr_eq(&first, &a), "a new registration");
        assert!(crate::pick::acquire(&a, 1).is_none(), "the request still counts");
        assert!(crate::pick::acquire(&b, 1).is_none(), "one count for the routes of one message");
        drop(lease);
        for _ in 0..3 {
            r.register(&both, ttl);
        }
        let t = r.snapshot();
        for host in ["a.example.com", "b.example.com"] {
            assert_eq!(ep(&t, host).inflight.load(Ordering::Relaxed), 0, "{host}");
        }
        assert!(crate::pick::acquire(&ep(&t, "a.example.com"), 1).is_some());
        // Another instance has a count of its own.
        r.register(&msg(2, &["a.example.com"]), ttl);
        let other = r.snapshot().lookup("a.example.com", "/").expect("route").endpoints.clone();
        assert_eq!(other.len(), 2);
        assert!(!Arc::ptr_eq(&other[0].inflight, &other[1].inflight));
    }

    #[test]
    fn stale_endpoints_are_pruned_by_their_ttl() {
        let mut r = Registry::default();
        let mut short = msg(1, &["a.example.com"]);
        short.stale_threshold_in_seconds = Some(1);
        r.register(&short, Duration::from_secs(120));
        r.register(&msg(2, &["a.example.com"]), Duration::from_secs(120));
        assert_eq!(r.prune(Instant::now() + Duration::from_secs(2)), 1);
        assert_eq!(addrs(&r.snapshot(), "a.example.com", "/"), ["10.0.0.1:2"]);
    }
}
