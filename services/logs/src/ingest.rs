//! Ingest: envelopes from the bus, decoded and counted.

use std::sync::Arc;

use bus::{DynBus, Subscription};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use wire::envelope::Envelope;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    /// A platform component (`api`, `router/0`, ...); app sources are not labelled one by one.
    pub source: String,
}

pub struct Ingest {
    sub: Subscription,
    store: Arc<crate::store::Store>,
    ingested: Counter,
    malformed: Counter,
    platform: Family<SourceLabel, Counter>,
}

impl Ingest {
    pub async fn subscribe(
        bus: &DynBus,
        metrics: &kit::metrics::Metrics,
        store: Arc<crate::store::Store>,
    ) -> Result<Self, bus::BusError> {
        let sub = bus.subscribe(wire::subjects::LOGS_ALL).await?;
        let ingested = Counter::default();
        let malformed = Counter::default();
        let platform = Family::<SourceLabel, Counter>::default();
        metrics.register("envelopes_ingested", "Envelopes received from the bus", ingested.clone());
        metrics.register(
            "envelopes_malformed",
            "Bus messages that were not envelopes",
            malformed.clone(),
        );
        metrics.register(
            "platform_envelopes",
            "Envelopes from platform components, by component",
            platform.clone(),
        );
        Ok(Self { sub, store, ingested, malformed, platform })
    }

    pub async fn run(mut self, shutdown: kit::Shutdown) {
        loop {
            let msg = tokio::select! {
                () = shutdown.cancelled() => return,
                m = self.sub.next() => match m { Some(m) => m, None => return },
            };
            match serde_json::from_slice::<Envelope>(&msg.payload) {
                Ok(env) => {
                    self.record(&env);
                    self.store.insert(env, msg.payload.len());
                }
                Err(_) => {
                    self.malformed.inc();
                }
            }
        }
    }

    fn record(&self, env: &Envelope) {
        self.ingested.inc();
        if uuid::Uuid::parse_str(&env.source_id).is_err() {
            self.platform.get_or_create(&SourceLabel { source: env.source_id.clone() }).inc();
        }
    }
}
