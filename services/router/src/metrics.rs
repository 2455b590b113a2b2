//! The router's Prometheus metrics (gorouter's names where they exist): responses by status
//! group, latency, routes, registry messages, bad gateways, exhausted backends, websockets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Shards of a [`Histogram`]; each thread records into one of them.
const SHARDS: usize = 8;

/// One thread's share of a histogram, on its own cache lines.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Shard {
    /// Per bucket (the last is `+Inf`), not cumulative.
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    /// Sum of the observations in nanoseconds.
    sum_ns: AtomicU64,
}

/// A latency histogram that request threads record into without a lock and without
/// sharing cache lines (prometheus-client's takes a write lock per observation, which two
/// worker threads contend for on every request); shards are summed when scraped.
#[derive(Debug, Clone)]
pub struct Histogram {
    bounds: Arc<[f64]>,
    shards: Arc<[Shard]>,
}

impl Histogram {
    pub fn new(bounds: impl Iterator<Item = f64>) -> Self {
        let bounds: Arc<[f64]> = bounds.collect();
        let shards = (0..SHARDS)
            .map(|_| Shard {
                buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
                ..Shard::default()
            })
            .collect();
        Self { bounds, shards }
    }

    /// Record one observation in seconds.
    pub fn observe(&self, secs: f64) {
        let shard = &self.shards[crate::thread_slot() % SHARDS];
        let i = self.bounds.iter().position(|b| secs <= *b).unwrap_or(self.bounds.len());
        shard.buckets[i].fetch_add(1, Ordering::Relaxed);
        shard.count.fetch_add(1, Ordering::Relaxed);
        // Saturating float-to-int cast: negative or NaN observations add nothing.
        shard.sum_ns.fetch_add((secs * 1e9) as u64, Ordering::Relaxed);
    }

    /// Sum, count and per-bucket counts over every shard; the last bucket, `+Inf`, has
    /// `f64::MAX` as its bound (what the encoder writes as `+Inf`).
    fn totals(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut buckets: Vec<(f64, u64)> =
            self.bounds.iter().copied().chain([f64::MAX]).map(|b| (b, 0)).collect();
        let (mut count, mut sum_ns) = (0, 0u64);
        for shard in self.shards.iter() {
            for (total, n) in buckets.iter_mut().zip(shard.buckets.iter()) {
                total.1 += n.load(Ordering::Relaxed);
            }
            count += shard.count.load(Ordering::Relaxed);
            sum_ns = sum_ns.wrapping_add(shard.sum_ns.load(Ordering::Relaxed));
        }
        (sum_ns as f64 / 1e9, count, buckets)
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.totals();
        encoder.encode_histogram::<()>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// One thread's share of a [`Count`], on a cache line of its own.
#[repr(align(128))]
#[derive(Debug, Default)]
struct CountShard(AtomicU64);

/// A counter request threads add to without sharing a cache line (prometheus-client's is one
/// atomic, which every worker's every request would take from the others); summed when
/// scraped.
#[derive(Debug, Clone, Default)]
pub struct Count(Arc<[CountShard; SHARDS]>);

impl Count {
    pub fn inc(&self) {
        self.0[crate::thread_slot() % SHARDS].0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

impl TypedMetric for Count {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for Count {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<(), _, u64>(&self.get(), None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

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
    pub responses: Family<StatusGroup, Count>,
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
    by_group: [Count; 5],
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_add_up_across_threads_and_render_as_prometheus_ones() {
        let h = Histogram::new(exponential_buckets(0.001, 10.0, 3));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for v in [0.0005, 0.002, 0.05, 7.0] {
                        h.observe(v);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let (sum, count, buckets) = h.totals();
        assert_eq!(count, 16);
        assert!((sum - 4.0 * 7.0525).abs() < 1e-6, "{sum}");
        assert_eq!(buckets, vec![(0.001, 4), (0.01, 4), (0.1, 4), (f64::MAX, 4)]);
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("latency_seconds", "Latency", h);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(text.contains("latency_seconds_bucket{le=\"0.01\"} 8"), "{text}");
        assert!(text.contains("latency_seconds_bucket{le=\"+Inf\"} 16"), "{text}");
        assert!(text.contains("latency_seconds_count 16"), "{text}");
    }

    #[test]
    fn counts_add_up_across_threads_and_render_as_prometheus_counters() {
        let responses: Family<StatusGroup, Count> = Family::default();
        let ok = responses.get_or_create(&StatusGroup { status_group: "2xx" }).clone();
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let ok = ok.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| ok.inc()))
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(ok.get(), 12_000);
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("responses", "Responses by status group", responses);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(text.contains("# TYPE responses counter"), "{text}");
        assert!(text.contains("responses_total{status_group=\"2xx\"} 12000"), "{text}");
    }
}
