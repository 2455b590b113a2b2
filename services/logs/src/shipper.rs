//! Platform logs for operators: a `tracing` layer that turns every event this process logs
//! into a log envelope on the bus, with the source id of the service it came from
//! (`api`, `scheduler`, `cell/<id>`, `router/<index>`, ...; `paasd` outside any service).
//!
//! It never blocks the code that logs: events go into a bounded queue that one task publishes
//! from; when the queue is full they are dropped and counted. Events of the bus itself are not
//! shipped, so shipping cannot feed on itself.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bus::DynBus;
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;
use wire::envelope::{Envelope, LogStream};

/// Name of the span that marks a service; its `component` field is the source id.
pub const SERVICE_SPAN: &str = "service";
/// Source id of events logged outside any service span.
pub const PROCESS_SOURCE: &str = "paasd";
const QUEUE: usize = 10_000;

/// The shipping layer; see the module docs.
pub struct ShipLayer {
    tx: mpsc::Sender<Envelope>,
    dropped: Arc<AtomicU64>,
}

struct Component(String);

impl ShipLayer {
    /// Start the publisher task (needs a Tokio runtime) and return the layer.
    pub fn new(bus: DynBus) -> Self {
        let (tx, mut rx) = mpsc::channel::<Envelope>(QUEUE);
        tokio::spawn(async move {
            while let Some(env) = rx.recv().await {
                if let Ok(body) = serde_json::to_vec(&env) {
                    let _ = bus.publish(&env.subject(), body.into()).await;
                }
            }
        });
        Self { tx, dropped: Arc::new(AtomicU64::new(0)) }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }
}

impl<S> Layer<S> for ShipLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != SERVICE_SPAN {
            return;
        }
        let mut v = FieldText::default();
        attrs.record(&mut v);
        if let (Some(component), Some(span)) = (v.component, ctx.span(id)) {
            span.extensions_mut().insert(Component(component));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let target = event.metadata().target();
        if target.starts_with("bus")
            || target.starts_with("async_nats")
            || target == "logs::shipper"
        {
            return;
        }
        let source = ctx
            .event_scope(event)
            .and_then(|scope| {
                scope
                    .from_root()
                    .find_map(|s| s.extensions().get::<Component>().map(|c| c.0.clone()))
            })
            .unwrap_or_else(|| PROCESS_SOURCE.to_owned());
        let mut text = FieldText::default();
        event.record(&mut text);
        let level = *event.metadata().level();
        let line = format!("{level} {target}: {}{}", text.message, text.rest);
        let stream = if level <= Level::WARN { LogStream::Err } else { LogStream::Out };
        let base = source.split('/').next().unwrap_or(&source).to_ascii_uppercase();
        let instance = source.split_once('/').map(|(_, i)| i.to_owned()).unwrap_or_default();
        let env = Envelope::log(source.clone(), instance, base, line, stream)
            .with_tag("level", level.as_str().to_ascii_lowercase());
        if self.tx.try_send(env).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Default)]
struct FieldText {
    message: String,
    rest: String,
    component: Option<String>,
}

impl Visit for FieldText {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "component" => self.component = Some(value.to_owned()),
            name => {
                let _ = write!(self.rest, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "component" => self.component = Some(format!("{value:?}").trim_matches('"').to_owned()),
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bus::InProcessBus;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[tokio::test]
    async fn events_carry_the_source_of_their_service() {
        let bus: DynBus = Arc::new(InProcessBus::new());
        let mut sub = bus.subscribe("logs.>").await.expect("subscribe");
        let subscriber = tracing_subscriber::registry().with(ShipLayer::new(bus.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span = kit::service_span("router/3");
            let _g = span.enter();
            let inner = tracing::info_span!("http", request_id = "x");
            let _i = inner.enter();
            tracing::warn!(app_guid = "a-1", "backend failed");
        });
        let msg = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("in time")
            .expect("message");
        assert_eq!(msg.subject, "logs.router");
        let env: Envelope = serde_json::from_slice(&msg.payload).expect("envelope");
        assert_eq!(env.source_id, "router/3");
        assert_eq!(env.instance_id, "3");
        assert_eq!(env.source_type(), Some("ROUTER"));
        let text = env.log_text().expect("log");
        assert!(text.contains("backend failed") && text.contains("app_guid=a-1"), "{text}");
    }

    #[tokio::test]
    async fn what_a_request_handler_logs_is_its_services() {
        use tracing::Instrument as _;
        let bus: DynBus = Arc::new(InProcessBus::new());
        let mut sub = bus.subscribe("logs.>").await.expect("subscribe");
        // Filtered as an operator's `RUST_LOG=warn` filters (info spans off).
        let filter = tracing_subscriber::EnvFilter::new("warn");
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::Layer::with_filter(ShipLayer::new(bus.clone()), filter));
        // This test's runtime has one thread: the requests' tasks run on it too.
        let _default = tracing::subscriber::set_default(subscriber);
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(|| async {
                tracing::warn!("handled on a task of its own");
                "ok"
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = kit::Shutdown::new();
        let serve = kit::http::serve(listener, app, stop.clone(), Duration::from_secs(1));
        let server = tokio::spawn(serve.instrument(kit::service_span("api")));
        let res = reqwest::get(format!("http://{addr}/")).await.expect("request");
        assert!(res.status().is_success());
        let env = loop {
            let msg = tokio::time::timeout(Duration::from_secs(5), sub.next())
                .await
                .expect("in time")
                .expect("message");
            let env: Envelope = serde_json::from_slice(&msg.payload).expect("envelope");
            if env.log_text().is_some_and(|t| t.contains("handled on a task")) {
                break env;
            }
        };
        assert_eq!(env.source_id, "api", "not filed under paasd");
        stop.cancel();
        let _ = server.await;
    }
}
