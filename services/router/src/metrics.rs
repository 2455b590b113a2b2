//! The router's Prometheus metrics (gorouter's names where they exist): responses by status
//! group, latency, routes, registry messages, bad gateways, exhausted backends, websockets.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusGroup {
    pub status_group: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Action {
    pub action: &'static str,
}

/// Handles to every router metric; cheap to clone.
#[derive(Clone)]
pub struct RouterMetrics {
    pub responses: Family<StatusGroup, Counter>,
    pub latency: Histogram,
    /// The router's own share of `latency`: everything but waiting for the backend.
    pub router_latency: Histogram,
    pub routes: Gauge,
    pub registry_messages: Family<Action, Counter>,
    pub routes_pruned: Counter,
    pub bad_gateways: Counter,
    pub backend_exhausted_conns: Counter,
    pub websocket_upgrades: Counter,
    pub websocket_failures: Counter,
    pub access_logs_dropped: Counter,
    /// `responses` for 1xx..5xx, looked up once.
    by_group: [Counter; 5],
}

impl RouterMetrics {
    /// Create the metrics and register them in `m`.
    pub fn new(m: &kit::metrics::Metrics) -> Self {
        let mut this = Self {
            responses: Family::default(),
            latency: Histogram::new(exponential_buckets(0.000_25, 2.0, 16)),
            router_latency: Histogram::new(exponential_buckets(0.000_01, 2.0, 16)),
            routes: Gauge::default(),
            registry_messages: Family::default(),
            routes_pruned: Counter::default(),
            bad_gateways: Counter::default(),
            backend_exhausted_conns: Counter::default(),
            websocket_upgrades: Counter::default(),
            websocket_failures: Counter::default(),
            access_logs_dropped: Counter::default(),
            by_group: Default::default(),
        };
        for (i, status_group) in ["1xx", "2xx", "3xx", "4xx", "5xx"].into_iter().enumerate() {
            this.by_group[i] = this.responses.get_or_create(&StatusGroup { status_group }).clone();
        }
        m.register("responses", "Responses by status group", this.responses.clone());
        m.register(
            "latency_seconds",
            "Time to the response headers, router and backend",
            this.latency.clone(),
        );
        m.register(
            "router_latency_seconds",
            "The router's own time per request: the total without the wait for the backend",
            this.router_latency.clone(),
        );
        m.register("total_routes", "Routes in the table", this.routes.clone());
        m.register(
            "registry_message",
            "router.register / router.unregister messages applied",
            this.registry_messages.clone(),
        );
        m.register("routes_pruned", "Endpoints pruned by TTL", this.routes_pruned.clone());
        m.register("bad_gateways", "502 responses", this.bad_gateways.clone());
        m.register(
            "backend_exhausted_conns",
            "Requests refused because every backend was at its connection limit",
            this.backend_exhausted_conns.clone(),
        );
        m.register("websocket_upgrades", "Websocket upgrades", this.websocket_upgrades.clone());
        m.register(
            "websocket_failures",
            "Websocket upgrades that failed",
            this.websocket_failures.clone(),
        );
        m.register(
            "access_logs_dropped",
            "RTR lines dropped because the bus fell behind",
            this.access_logs_dropped.clone(),
        );
        this
    }

    /// Count one response.
    pub fn response(&self, status: u16, secs: f64) {
        let group = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_group[group].inc();
        self.latency.observe(secs);
        if status == 502 {
            self.bad_gateways.inc();
        }
    }
}
