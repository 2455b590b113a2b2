//! Tracing set-up for a process: human-readable or JSON lines on stderr, filtered by
//! `RUST_LOG` (default `info`), plus any extra layer (the logs service adds one that ships
//! every event to the aggregator). Text lines carry ANSI colour only when stderr is a terminal
//! and `NO_COLOR` is unset (<https://no-color.org>).

use std::io::IsTerminal as _;

use serde::{Deserialize, Serialize};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// JSON lines instead of human-readable text.
    pub json: bool,
    /// Filter directives when `RUST_LOG` is unset.
    pub filter: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self { json: false, filter: "info".into() }
    }
}

pub type BoxLayer = Box<dyn Layer<Registry> + Send + Sync + 'static>;

/// Install the process-wide subscriber. Calling it twice keeps the first (tests do that).
pub fn init(config: &TelemetryConfig, extra: Vec<BoxLayer>) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.filter));
    let fmt: BoxLayer = if config.json {
        Box::new(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(std::io::stderr),
        )
    } else {
        Box::new(
            tracing_subscriber::fmt::layer()
                .with_ansi(colour(
                    std::io::stderr().is_terminal(),
                    std::env::var_os("NO_COLOR").as_deref(),
                ))
                .with_writer(std::io::stderr),
        )
    };
    let mut layers = vec![fmt];
    layers.extend(extra);
    let _ = tracing_subscriber::registry().with(layers.with_filter(filter)).try_init();
}

/// Colour on a terminal, unless `NO_COLOR` is set to anything but the empty string.
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(!colour(false, None));
        assert!(!colour(true, Some("1".as_ref())));
        assert!(colour(true, Some("".as_ref())), "an empty NO_COLOR is unset");
    }
}
