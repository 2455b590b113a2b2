//! Staging output as `STG` log envelopes on the bus (source id = app guid, instance "0").

use bus::{BusExt, DynBus};
use wire::envelope::{Envelope, LogStream};

/// Publishes one app's staging lines. Publishing failures are logged, never fatal: a lost
/// log line must not fail a build.
#[derive(Clone)]
pub struct StgLog {
    bus: DynBus,
    app_guid: String,
}

impl StgLog {
    pub fn new(bus: DynBus, app_guid: impl Into<String>) -> Self {
        Self { bus, app_guid: app_guid.into() }
    }

    pub async fn line(&self, text: &str, stream: LogStream) {
        let env = Envelope::log(&self.app_guid, "0", "STG", text.as_bytes(), stream);
        if let Err(e) = self.bus.publish_json(&env.subject(), &env).await {
            tracing::warn!(app_guid = %self.app_guid, error = %e, "cannot publish staging log");
        }
    }

    pub async fn out(&self, text: &str) {
        self.line(text, LogStream::Out).await;
    }

    pub async fn err(&self, text: &str) {
        self.line(text, LogStream::Err).await;
    }
}
