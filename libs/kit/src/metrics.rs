//! Prometheus metrics: one registry per service, served as text at `/metrics`.

use std::sync::{Arc, Mutex};

use prometheus_client::registry::Registry;

/// A service's metric registry; cloning shares it.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
}

impl Metrics {
    /// A registry whose metric names start with `paas_<service>_`.
    pub fn new(service: &str) -> Self {
        let registry = Registry::with_prefix(format!("paas_{service}"));
        Self { registry: Arc::new(Mutex::new(registry)) }
    }

    /// Register a metric (a `Counter`, `Gauge`, `Histogram`, `Family`, ...).
    pub fn register<M>(&self, name: &str, help: &str, metric: M)
    where
        M: prometheus_client::registry::Metric,
    {
        self.registry.lock().unwrap_or_else(|e| e.into_inner()).register(name, help, metric);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let reg = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &reg).is_err() {
            out.clear();
        }
        out
    }
}
