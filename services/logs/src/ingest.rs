//! Ingest: envelopes from the bus, decoded, counted and queued for storage. The queue is
//! bounded: when storage falls behind, envelopes are dropped and counted per source, and each
//! affected app is told in its own stream (an `LGR` line) how many lines it lost — producers
//! are never slowed down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

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
    drains: Arc<crate::drains::Drains>,
    queue: usize,
    ingested: Counter,
    malformed: Counter,
    dropped: Counter,
    platform: Family<SourceLabel, Counter>,
}

/// How often lost-line notices are written into the affected streams.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

impl Ingest {
    pub async fn subscribe(
        bus: &DynBus,
        metrics: &kit::metrics::Metrics,
        store: Arc<crate::store::Store>,
        drains: Arc<crate::drains::Drains>,
        queue: usize,
    ) -> Result<Self, bus::BusError> {
        let sub = bus.subscribe(wire::subjects::LOGS_ALL).await?;
        let ingested = Counter::default();
        let malformed = Counter::default();
        let platform = Family::<SourceLabel, Counter>::default();
        let dropped = Counter::default();
        metrics.register(
            "envelopes_dropped",
            "Envelopes dropped because storage fell behind",
            dropped.clone(),
        );
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
        Ok(Self { sub, store, drains, queue: queue.max(1), ingested, malformed, dropped, platform })
    }

    pub async fn run(mut self, shutdown: kit::Shutdown) {
        let (tx, rx) = mpsc::channel::<(Envelope, usize)>(self.queue);
        let lost: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
        let writer = tokio::spawn(write(
            self.store.clone(),
            self.drains.clone(),
            rx,
            lost.clone(),
            shutdown.clone(),
        ));
        loop {
            let msg = tokio::select! {
                () = shutdown.cancelled() => break,
                m = self.sub.next() => match m { Some(m) => m, None => break },
            };
            let Ok(envs) = wire::envelope::decode(&msg.payload) else {
                self.malformed.inc();
                continue;
            };
            // A batch's bytes are shared out among its envelopes for storage accounting.
            let bytes = msg.payload.len() / envs.len().max(1);
            for env in envs {
                self.record(&env);
                if let Err(mpsc::error::TrySendError::Full((env, _))) = tx.try_send((env, bytes)) {
                    self.dropped.inc();
                    *lost
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(env.source_id)
                        .or_default() += 1;
                }
            }
        }
        drop(tx);
        let _ = writer.await;
    }

    fn record(&self, env: &Envelope) {
        self.ingested.inc();
        if uuid::Uuid::parse_str(&env.source_id).is_err() {
            self.platform.get_or_create(&SourceLabel { source: env.source_id.clone() }).inc();
        }
    }
}

/// Store queued envelopes and offer them to drains; once a second, tell each app that lost
/// lines how many.
async fn write(
    store: Arc<crate::store::Store>,
    drains: Arc<crate::drains::Drains>,
    mut rx: mpsc::Receiver<(Envelope, usize)>,
    lost: Arc<Mutex<HashMap<String, u64>>>,
    shutdown: kit::Shutdown,
) {
    let mut totals: HashMap<String, u64> = HashMap::new();
    let mut tick = tokio::time::interval(REPORT_INTERVAL);
    loop {
        tokio::select! {
            item = rx.recv() => match item {
                Some((env, bytes)) => drains.offer(&store.insert(env, bytes)),
                None => return,
            },
            _ = tick.tick() => report_losses(&store, &lost, &mut totals),
            () = shutdown.cancelled() => return,
        }
    }
}

fn report_losses(
    store: &crate::store::Store,
    lost: &Mutex<HashMap<String, u64>>,
    totals: &mut HashMap<String, u64>,
) {
    let now: Vec<(String, u64)> = lost.lock().unwrap_or_else(|e| e.into_inner()).drain().collect();
    for (source, n) in now {
        let total = totals.entry(source.clone()).or_default();
        *total += n;
        let text = format!(
            "Log message output is too high. {n} messages dropped (Total {total} messages dropped)."
        );
        store.insert_lgr(&source, text);
    }
}
