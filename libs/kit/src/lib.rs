//! What every service shares to be a good citizen of the platform: typed configuration
//! (defaults, then TOML, then environment), tracing, Prometheus metrics, readiness, the HTTP
//! server with request ids and graceful drain, and SQL storage on SQLite or PostgreSQL.
//!
//! This crate knows no service. It must never hold global state: everything it hands out is a
//! value the caller owns and passes on.

pub mod config;
pub mod db;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod ready;
pub mod telemetry;
pub mod tls;

use std::future::Future;

pub use tokio_util::sync::CancellationToken as Shutdown;

/// Error type for the glue between services and `paasd`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The span a service runs in: its `component` is the source id its logs are shipped under
/// (`api`, `cell/<id>`, ...). At the error level, so that it exists whatever the log filter
/// (with `RUST_LOG=warn` an info span would be disabled and the logs filed under `paasd`).
pub fn service_span(component: &str) -> tracing::Span {
    tracing::error_span!("service", component = component)
}

/// Spawn a background loop by name, inside the caller's span so its logs carry the component
/// (the task's span is at the error level for the reason given at [`service_span`]).
pub fn spawn_named<F>(name: &'static str, fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    use tracing::Instrument as _;
    let span = tracing::error_span!("task", task = name);
    tokio::spawn(fut.instrument(span))
}

/// SIGINT and SIGTERM handlers, installed when created: create it before starting anything,
/// so a signal that arrives during start-up is not lost to the default (killing) action.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
    }

    /// Wait for SIGINT or SIGTERM.
    pub async fn wait(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
