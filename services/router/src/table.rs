//! The route table: endpoints per route (host plus optional context path), fed by
//! `router.register` / `router.unregister`, pruned by TTL. Readers take an immutable snapshot
//! (one `Arc` clone; a worker thread through a [`Local`] view, which clones only after the
//! table changed), so the request path never waits on updates; one task applies updates.
//! A heartbeat that repeats an endpoint's registration only moves its [`Heard`] time: the
//! table is rebuilt when a registration changes something, not every time an instance
//! re-registers (every 20 s for each of its routes).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use wire::routing::RegistryMessage;

/// One backend of a route.
#[derive(Debug)]
pub struct Endpoint {
    pub addr: String,
    pub app: String,
    pub instance_id: String,
    pub index: String,
    /// When the registration that made this endpoint (the last one that changed it) came.
    pub updated: Instant,
    /// When its registration was last heard, heartbeats included: the TTL runs from here.
    pub heard: Heard,
    pub ttl: Duration,
    pub least_connection: bool,
    /// The route service its registration named (https URL), if any.
    pub route_service_url: Option<Arc<str>>,
    /// Registered with `protocol: http2`: spoken to in HTTP/2 over cleartext (h2c).
    pub http2: bool,
    /// Its `availability_zone`, if the registration named one.
    pub zone: Option<Arc<str>>,
    /// Requests in flight (least-connection and connection limits), kept across the
    /// registrations of its address: a registration that changes the endpoint replaces it,
    /// and a request that took the one before must end on the count the next one reads.
    pub inflight: Arc<AtomicUsize>,
}

impl Endpoint {
    fn registered(
        m: &RegistryMessage,
        addr: &str,
        ttl: Duration,
        least_connection: bool,
        inflight: Arc<AtomicUsize>,
        now: Instant,
    ) -> Self {
        Self {
            addr: addr.to_owned(),
            app: m.app.clone(),
            instance_id: m.private_instance_id.clone(),
            index: m.private_instance_index.clone(),
            updated: now,
            heard: Heard::at(now),
            ttl,
            least_connection,
            route_service_url: m.route_service_url.as_deref().map(Arc::from),
            http2: m.protocol.as_deref() == Some("http2"),
            zone: zone_of(m).map(Arc::from),
            inflight,
        }
    }

    /// Whether `m` says what made this endpoint ([`Endpoint::registered`]) and nothing else.
    fn is_registered_by(&self, m: &RegistryMessage, ttl: Duration, least_connection: bool) -> bool {
        self.app == m.app
            && self.instance_id == m.private_instance_id
            && self.index == m.private_instance_index
            && self.ttl == ttl
            && self.least_connection == least_connection
            && self.route_service_url.as_deref() == m.route_service_url.as_deref()
            && self.http2 == (m.protocol.as_deref() == Some("http2"))
            && self.zone.as_deref() == zone_of(m)
    }
}

fn zone_of(m: &RegistryMessage) -> Option<&str> {
    m.availability_zone.as_deref().filter(|z| !z.is_empty())
}

/// A time an update task writes and readers of any snapshot read, without a lock: nanoseconds
/// since the first one was made.
#[derive(Debug)]
pub struct Heard(AtomicU64);

impl Heard {
    pub fn at(t: Instant) -> Self {
        let heard = Self(AtomicU64::new(0));
        heard.set(t);
        heard
    }

    pub fn get(&self) -> Instant {
        Self::base() + Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }

    fn set(&self, t: Instant) {
        let nanos = t.saturating_duration_since(Self::base()).as_nanos();
        self.0.store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn base() -> Instant {
        static BASE: OnceLock<Instant> = OnceLock::new();
        *BASE.get_or_init(Instant::now)
    }
}

impl Default for Heard {
    fn default() -> Self {
        Self::at(Instant::now())
    }
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
                        let left = e.ttl.saturating_sub(now.duration_since(e.heard.get()));
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
    /// Apply a registration; whether the table changed (a heartbeat that repeats what each
    /// endpoint already says only moves its [`Heard`] time).
    pub fn register(&mut self, m: &RegistryMessage, default_ttl: Duration) -> bool {
        self.register_at(m, default_ttl, Instant::now())
    }

    fn register_at(&mut self, m: &RegistryMessage, default_ttl: Duration, now: Instant) -> bool {
        let addr = format!("{}:{}", m.host, m.port);
        let lc =
            m.options.as_ref().and_then(|o| o.loadbalancing.as_deref()) == Some("least-connection");
        let ttl = m.stale_threshold_in_seconds.map_or(default_ttl, Duration::from_secs);
        // The count of the address's registration already in the table under one of the
        // message's routes, else a new one (one for all the message's routes): a copy of its
        // value would never see the requests in flight end, and would climb with every
        // replacement until the instance looked full.
        let inflight = m
            .uris
            .iter()
            .find_map(|uri| self.entries.get(&split_uri(uri))?.get(&addr))
            .map_or_else(Arc::default, |old| old.inflight.clone());
        let mut changed = false;
        for uri in &m.uris {
            let slot = self.entries.entry(split_uri(uri)).or_default();
            match slot.get(&addr) {
                Some(old) if old.is_registered_by(m, ttl, lc) => old.heard.set(now),
                _ => {
                    let ep = Endpoint::registered(m, &addr, ttl, lc, inflight.clone(), now);
                    slot.insert(addr.clone(), Arc::new(ep));
                    changed = true;
                }
            }
        }
        changed
    }

    /// Apply an unregistration; whether the table changed.
    pub fn unregister(&mut self, m: &RegistryMessage) -> bool {
        let addr = format!("{}:{}", m.host, m.port);
        let mut changed = false;
        for uri in &m.uris {
            let key = split_uri(uri);
            if let Some(slot) = self.entries.get_mut(&key) {
                changed |= slot.remove(&addr).is_some();
            }
        }
        changed
    }

    /// Drop endpoints older than their TTL; returns how many.
    pub fn prune(&mut self, now: Instant) -> usize {
        let mut pruned = 0;
        for slot in self.entries.values_mut() {
            let before = slot.len();
            slot.retain(|_, e| now.duration_since(e.heard.get()) <= e.ttl);
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

    /// How many tables were stored so far.
    pub fn version(&self) -> u64 {
        self.0.version.load(Ordering::Acquire)
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
    fn a_request_in_flight_across_registrations_ends_on_the_count_they_read() {
        let mut r = Registry::default();
        let ttl = Duration::from_secs(120);
        let mut both = msg(1, &["a.example.com", "b.example.com"]);
        r.register(&both, ttl);
        let ep = |t: &Table, host: &str| t.lookup(host, "/").expect("route").endpoints[0].clone();
        let first = ep(&r.snapshot(), "a.example.com");
        let lease = crate::pick::acquire(&first, 1).expect("free");
        // A heartbeat leaves the endpoint as it is.
        assert!(!r.register(&both, ttl));
        assert!(Arc::ptr_eq(&first, &ep(&r.snapshot(), "a.example.com")));
        // A registration that changes it replaces it while the request is in flight.
        both.availability_zone = Some("z1".into());
        assert!(r.register(&both, ttl));
        let t = r.snapshot();
        let (a, b) = (ep(&t, "a.example.com"), ep(&t, "b.example.com"));
        assert!(!Arc::ptr_eq(&first, &a), "a new registration");
        assert!(crate::pick::acquire(&a, 1).is_none(), "the request still counts");
        assert!(crate::pick::acquire(&b, 1).is_none(), "one count for the routes of one message");
        drop(lease);
        both.private_instance_index = "1".into();
        assert!(r.register(&both, ttl));
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
    fn a_heartbeat_only_moves_when_it_was_heard_and_anything_else_is_a_change() {
        let mut r = Registry::default();
        let ttl = Duration::from_secs(120);
        let t0 = Instant::now();
        let mut m = msg(1, &["a.example.com", "b.example.com"]);
        m.stale_threshold_in_seconds = Some(10);
        assert!(r.register_at(&m, ttl, t0), "new");
        let before = r.snapshot();
        let ep = |t: &Table| t.lookup("a.example.com", "/").expect("route").endpoints[0].clone();
        assert!(!r.register_at(&m, ttl, t0 + Duration::from_secs(8)), "a heartbeat");
        assert!(Arc::ptr_eq(&ep(&before), &ep(&r.snapshot())), "nothing to rebuild");
        assert_eq!(ep(&before).heard.get(), t0 + Duration::from_secs(8));
        assert_eq!(ep(&before).updated, t0, "registered when it last changed");
        // The TTL runs from the last heartbeat.
        assert_eq!(r.prune(t0 + Duration::from_secs(15)), 0);
        assert_eq!(r.prune(t0 + Duration::from_secs(19)), 2, "both routes, 11 s unheard");
        let later = t0 + Duration::from_secs(20);
        assert!(r.register_at(&m, ttl, later), "registered again after its TTL");
        let changes: [fn(&mut RegistryMessage); 8] = [
            |m| m.app = "other-app".into(),
            |m| m.private_instance_id = "other-instance".into(),
            |m| m.private_instance_index = "3".into(),
            |m| m.stale_threshold_in_seconds = Some(30),
            |m| m.route_service_url = Some("https://rs.example.com/".into()),
            |m| m.protocol = Some("http2".into()),
            |m| m.availability_zone = Some("z2".into()),
            |m| {
                m.options = Some(wire::routing::RouteOptions {
                    loadbalancing: Some("least-connection".into()),
                })
            },
        ];
        for (i, change) in changes.iter().enumerate() {
            change(&mut m);
            assert!(r.register_at(&m, ttl, later), "change {i}");
            assert!(!r.register_at(&m, ttl, later), "change {i} heard again");
        }
        // Fields the table does not keep change nothing.
        m.tags.insert("component".into(), "route-emitter".into());
        m.endpoint_updated_at_ns = Some(1);
        assert!(!r.register_at(&m, ttl, later));
        // An empty zone is no zone.
        m.availability_zone = Some(String::new());
        assert!(r.register_at(&m, ttl, later));
        m.availability_zone = None;
        assert!(!r.register_at(&m, ttl, later));
        assert!(r.unregister(&m), "removed");
        assert!(!r.unregister(&m), "nothing left to remove");
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
