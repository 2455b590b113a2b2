//! Choosing an endpoint of a pool: round-robin (from a random start) or least-connection,
//! skipping endpoints already tried, benched after a failure, or at the per-backend
//! connection limit. A chosen endpoint is held by a [`Lease`], which counts it as in flight
//! until dropped (after the response body is done).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::table::{Endpoint, Pool};

/// How long an endpoint that failed is skipped (`droplet_stale_threshold / 4`).
pub const BENCH: Duration = Duration::from_secs(30);

/// One request's claim on an endpoint.
#[derive(Debug)]
pub struct Lease {
    pub ep: Arc<Endpoint>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.ep.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why nothing was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoPick {
    /// Every endpoint was tried or is benched.
    Exhausted,
    /// Some endpoint could have been used but is at its connection limit.
    AtLimit,
}

/// Take a slot on `ep` unless it already has `max` requests in flight (0 = unlimited).
pub fn acquire(ep: &Arc<Endpoint>, max: usize) -> Option<Lease> {
    if max == 0 {
        ep.inflight.fetch_add(1, Ordering::AcqRel);
        return Some(Lease { ep: ep.clone() });
    }
    let mut cur = ep.inflight.load(Ordering::Acquire);
    loop {
        if cur >= max {
            return None;
        }
        match ep.inflight.compare_exchange_weak(cur, cur + 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some(Lease { ep: ep.clone() }),
            Err(now) => cur = now,
        }
    }
}

/// The host part of `host:port` (the whole string when it has no port).
fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(h, _)| h)
}

/// Endpoint choice shared by all requests: the bench, the connection limit and the zone.
#[derive(Debug, Default)]
pub struct Picker {
    benched: Mutex<HashMap<String, Instant>>,
    /// Whether `benched` may hold anything: requests skip its lock while nothing is benched.
    any_benched: AtomicBool,
    /// Per-backend limit of requests in flight; 0 = unlimited.
    pub max_conns: usize,
    /// `locally-optimistic`: a request's first attempt prefers endpoints in this zone.
    local_zone: Option<Arc<str>>,
}

impl Picker {
    pub fn new(max_conns: usize) -> Self {
        Self {
            benched: Mutex::default(),
            any_benched: AtomicBool::new(false),
            max_conns,
            local_zone: None,
        }
    }

    #[must_use]
    pub fn with_local_zone(mut self, zone: Option<Arc<str>>) -> Self {
        self.local_zone = zone;
        self
    }

    /// Skip `addr` for [`BENCH`].
    pub fn bench(&self, addr: &str) {
        let mut b = self.benched.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        b.retain(|_, until| *until > now);
        b.insert(addr.to_owned(), now + BENCH);
        self.any_benched.store(true, Ordering::Release);
    }

    fn benched_now(&self) -> Option<HashMap<String, Instant>> {
        if !self.any_benched.load(Ordering::Acquire) {
            return None;
        }
        let mut b = self.benched.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        b.retain(|_, until| *until > now);
        if b.is_empty() {
            self.any_benched.store(false, Ordering::Release);
            return None;
        }
        Some(b.clone())
    }

    /// Pick an endpoint of `pool` not in `tried` (endpoint addresses, or hosts: every
    /// endpoint on that host); `preferred` (a sticky instance id) wins
    /// when that instance is usable. With a local zone, the first attempt (nothing tried yet)
    /// takes an endpoint of that zone when one is usable, and any zone otherwise.
    pub fn pick(
        &self,
        pool: &Pool,
        tried: &[String],
        preferred: Option<&str>,
    ) -> Result<Lease, NoPick> {
        let benched = self.benched_now();
        let now = Instant::now();
        let usable = |e: &Endpoint| {
            !tried.iter().any(|t| *t == e.addr || t == host_of(&e.addr))
                && benched.as_ref().is_none_or(|b| b.get(&e.addr).is_none_or(|u| *u <= now))
        };
        if let Some(zone) = self.local_zone.as_deref().filter(|_| tried.is_empty()) {
            let local = |e: &Endpoint| usable(e) && e.zone.as_deref() == Some(zone);
            if pool.endpoints.iter().any(|e| local(e)) {
                if let Ok(l) = self.choose(pool, preferred, local) {
                    return Ok(l);
                }
            }
        }
        self.choose(pool, preferred, usable)
    }

    fn choose(
        &self,
        pool: &Pool,
        preferred: Option<&str>,
        usable: impl Fn(&Endpoint) -> bool,
    ) -> Result<Lease, NoPick> {
        let mut at_limit = false;
        if let Some(id) = preferred {
            if let Some(ep) = pool.endpoints.iter().find(|e| e.instance_id == id && usable(e)) {
                match acquire(ep, self.max_conns) {
                    Some(l) => return Ok(l),
                    None => at_limit = true,
                }
            }
        }
        let n = pool.endpoints.len();
        if pool.endpoints.first().is_some_and(|e| e.least_connection) {
            let mut order: Vec<(usize, u16, &Arc<Endpoint>)> = pool
                .endpoints
                .iter()
                .filter(|e| usable(e))
                .map(|e| (e.inflight.load(Ordering::Relaxed), rand::random::<u16>(), e))
                .collect();
            order.sort_by_key(|(load, tie, _)| (*load, *tie));
            for (_, _, ep) in order {
                match acquire(ep, self.max_conns) {
                    Some(l) => return Ok(l),
                    None => at_limit = true,
                }
            }
        } else {
            for _ in 0..n {
                // One endpoint needs no turn (nor the shared counter every request would
                // take from the other workers).
                let i = if n == 1 { 0 } else { pool.next.fetch_add(1, Ordering::Relaxed) % n };
                let ep = &pool.endpoints[i];
                if !usable(ep) {
                    continue;
                }
                match acquire(ep, self.max_conns) {
                    Some(l) => return Ok(l),
                    None => at_limit = true,
                }
            }
        }
        Err(if at_limit { NoPick::AtLimit } else { NoPick::Exhausted })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(port: u16, lc: bool) -> Arc<Endpoint> {
        ep_at(&format!("10.0.0.1:{port}"), port, lc)
    }

    fn ep_at(addr: &str, port: u16, lc: bool) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            addr: addr.to_owned(),
            app: "app".into(),
            instance_id: format!("inst-{port}"),
            index: port.to_string(),
            updated: Instant::now(),
            heard: Default::default(),
            ttl: Duration::from_secs(120),
            least_connection: lc,
            route_service_url: None,
            http2: false,
            zone: None,
            inflight: Default::default(),
        })
    }

    fn pool(lc: bool) -> Pool {
        Pool { endpoints: vec![ep(1, lc), ep(2, lc), ep(3, lc)], ..Default::default() }
    }

    #[test]
    fn round_robin_skips_tried_and_benched() {
        let p = Picker::new(0);
        let pool = pool(false);
        let first = p.pick(&pool, &[], None).expect("pick").ep.addr.clone();
        let second = p.pick(&pool, &[], None).expect("pick").ep.addr.clone();
        assert_ne!(first, second);
        p.bench("10.0.0.1:1");
        let tried = vec!["10.0.0.1:2".to_owned()];
        assert_eq!(p.pick(&pool, &tried, None).expect("pick").ep.addr, "10.0.0.1:3");
        let all: Vec<String> = (1..=3).map(|i| format!("10.0.0.1:{i}")).collect();
        assert_eq!(p.pick(&pool, &all, None).err(), Some(NoPick::Exhausted));
    }

    #[test]
    fn a_host_tried_rules_out_all_its_endpoints() {
        let p = Picker::new(0);
        let mut pool = pool(false);
        pool.endpoints.push(ep_at("10.0.0.2:4", 4, false));
        let tried = vec!["10.0.0.1:2".to_owned(), "10.0.0.1".to_owned()];
        for _ in 0..5 {
            assert_eq!(p.pick(&pool, &tried, None).expect("pick").ep.addr, "10.0.0.2:4");
        }
        // An endpoint tried rules out that endpoint only.
        let tried = vec!["10.0.0.1:2".to_owned()];
        let seen: std::collections::BTreeSet<String> =
            (0..8).map(|_| p.pick(&pool, &tried, None).expect("pick").ep.addr.clone()).collect();
        assert_eq!(seen.len(), 3, "{seen:?}");
    }

    #[test]
    fn least_connection_takes_the_idlest_and_limits_hold() {
        let p = Picker::new(1);
        let pool = pool(true);
        let a = p.pick(&pool, &[], None).expect("a");
        let b = p.pick(&pool, &[], None).expect("b");
        let c = p.pick(&pool, &[], None).expect("c");
        let mut got = vec![a.ep.addr.clone(), b.ep.addr.clone(), c.ep.addr.clone()];
        got.sort();
        assert_eq!(got, ["10.0.0.1:1", "10.0.0.1:2", "10.0.0.1:3"], "one each");
        assert_eq!(p.pick(&pool, &[], None).err(), Some(NoPick::AtLimit));
        drop(b);
        assert_eq!(p.pick(&pool, &[], None).expect("freed").ep.inflight.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_sticky_instance_is_preferred_while_usable() {
        let p = Picker::new(0);
        let pool = pool(false);
        for _ in 0..5 {
            assert_eq!(p.pick(&pool, &[], Some("inst-2")).expect("pick").ep.addr, "10.0.0.1:2");
        }
        p.bench("10.0.0.1:2");
        assert_ne!(p.pick(&pool, &[], Some("inst-2")).expect("pick").ep.addr, "10.0.0.1:2");
        assert!(p.pick(&pool, &[], Some("gone")).is_ok());
    }

    #[test]
    fn locally_optimistic_prefers_its_zone_on_the_first_attempt_only() {
        let zoned = |port: u16, zone: &str, lc: bool| {
            let mut e = Arc::try_unwrap(ep(port, lc)).expect("sole");
            e.zone = Some(zone.into());
            Arc::new(e)
        };
        for lc in [false, true] {
            let pool = Pool {
                endpoints: vec![zoned(1, "z1", lc), zoned(2, "z2", lc), zoned(3, "z2", lc)],
                ..Default::default()
            };
            let p = Picker::new(0).with_local_zone(Some("z2".into()));
            for _ in 0..6 {
                let got = p.pick(&pool, &[], None).expect("pick").ep.addr.clone();
                assert_ne!(got, "10.0.0.1:1", "first attempts stay in z2 (lc {lc})");
            }
            // A retry may go anywhere; with the local ones benched, the first attempt too.
            let tried = vec!["10.0.0.1:2".to_owned(), "10.0.0.1:3".to_owned()];
            assert_eq!(p.pick(&pool, &tried, None).expect("retry").ep.addr, "10.0.0.1:1");
            p.bench("10.0.0.1:2");
            p.bench("10.0.0.1:3");
            assert_eq!(p.pick(&pool, &[], None).expect("fallback").ep.addr, "10.0.0.1:1");
            // Without a preference, all zones share the load (leases held, so least-connection
            // spreads too).
            let p = Picker::new(0);
            let held: Vec<Lease> =
                (0..9).map(|_| p.pick(&pool, &[], None).expect("pick")).collect();
            let seen: std::collections::HashSet<&str> =
                held.iter().map(|l| l.ep.addr.as_str()).collect();
            assert_eq!(seen.len(), 3, "lc {lc}");
        }
    }
}
