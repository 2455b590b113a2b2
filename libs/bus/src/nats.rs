//! The bus over a real NATS server (`async-nats`), for deployments of several processes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::subject::{validate_pattern, validate_subject};
use crate::{Bus, BusError, Message, Subscription, SUBSCRIPTION_BUFFER};

#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// `nats://host:port`, several separated by commas.
    pub url: String,
    pub name: String,
    pub connect_timeout: Duration,
    /// Keep trying in the background when the first connection fails, instead of failing.
    pub retry_on_initial_connect: bool,
}

impl Default for NatsOptions {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            name: "paasd".into(),
            connect_timeout: Duration::from_secs(2),
            retry_on_initial_connect: false,
        }
    }
}

/// NATS implementation of [`Bus`]. Reconnects on its own; every reconnect bumps the
/// connection epoch.
#[derive(Clone)]
pub struct NatsBus {
    client: async_nats::Client,
    epoch: Arc<watch::Sender<u64>>,
}

impl NatsBus {
    pub async fn connect(opts: &NatsOptions) -> Result<Self, BusError> {
        let (epoch_tx, _) = watch::channel(0u64);
        let epoch = Arc::new(epoch_tx);
        let events = epoch.clone();
        let mut connect = async_nats::ConnectOptions::new()
            .name(&opts.name)
            .connection_timeout(opts.connect_timeout)
            .event_callback(move |event| {
                let events = events.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            events.send_modify(|e| *e += 1);
                            tracing::info!("message bus connected");
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!("message bus disconnected")
                        }
                        other => tracing::debug!(event = %other, "message bus event"),
                    }
                }
            });
        if opts.retry_on_initial_connect {
            connect = connect.retry_on_initial_connect();
        }
        // One server or several separated by commas (a cluster's members), tried in the order
        // given (a host's own server first); the client also learns the cluster's other
        // members from the server it reaches, and moves on to them when it goes away.
        let servers: Vec<&str> =
            opts.url.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        let client = connect
            .retain_servers_order()
            .connect(servers)
            .await
            .map_err(|e| BusError::Connection(format!("{}: {e}", opts.url)))?;
        // The first `Connected` event may race with this; record the initial connection.
        if client.connection_state() == async_nats::connection::State::Connected {
            epoch.send_if_modified(|e| {
                let first = *e == 0;
                if first {
                    *e = 1;
                }
                first
            });
        }
        Ok(Self { client, epoch })
    }

    /// A round trip through the server: once our own message comes back, the server has
    /// processed every command this connection sent before it (`flush` only empties our
    /// write buffer, which is not enough for another connection's publish to see a new
    /// subscription).
    async fn sync(&self) -> Result<(), BusError> {
        let subject = format!("_PAAS_SYNC.{}", uuid::Uuid::new_v4().simple());
        let mut probe = self
            .client
            .subscribe(subject.clone())
            .await
            .map_err(|e| BusError::Connection(e.to_string()))?;
        self.client
            .publish(subject.clone(), Bytes::new())
            .await
            .map_err(|e| BusError::Connection(e.to_string()))?;
        let timeout = Duration::from_secs(10);
        match tokio::time::timeout(timeout, probe.next()).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(BusError::Closed),
            Err(_) => Err(BusError::Timeout { subject, timeout }),
        }
    }

    async fn forward(
        &self,
        sub: Result<async_nats::Subscriber, async_nats::SubscribeError>,
    ) -> Result<Subscription, BusError> {
        let mut sub = sub.map_err(|e| BusError::Connection(e.to_string()))?;
        // Make sure the server knows the subscription before the caller relies on it.
        self.sync().await?;
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let task = tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                let msg = Message {
                    subject: m.subject.to_string(),
                    reply: m.reply.map(|r| r.to_string()),
                    payload: m.payload,
                };
                match tx.try_send(msg) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::debug!("subscriber too slow, message dropped");
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => break,
                }
            }
        });
        Ok(Subscription::new(rx, Some(Box::new(AbortOnDrop(task)))))
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Bus for NatsBus {
    fn publish(&self, subject: &str, payload: Bytes) -> BoxFuture<'_, Result<(), BusError>> {
        let subject = subject.to_owned();
        Box::pin(async move {
            validate_subject(&subject)?;
            self.client
                .publish(subject, payload)
                .await
                .map_err(|e| BusError::Connection(e.to_string()))
        })
    }

    fn subscribe(&self, pattern: &str) -> BoxFuture<'_, Result<Subscription, BusError>> {
        let pattern = pattern.to_owned();
        Box::pin(async move {
            validate_pattern(&pattern)?;
            let sub = self.client.subscribe(pattern).await;
            self.forward(sub).await
        })
    }

    fn queue_subscribe(
        &self,
        pattern: &str,
        queue: &str,
    ) -> BoxFuture<'_, Result<Subscription, BusError>> {
        let pattern = pattern.to_owned();
        let queue = queue.to_owned();
        Box::pin(async move {
            validate_pattern(&pattern)?;
            let sub = self.client.queue_subscribe(pattern, queue).await;
            self.forward(sub).await
        })
    }

    fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Message, BusError>> {
        let subject = subject.to_owned();
        Box::pin(async move {
            validate_subject(&subject)?;
            let req = async_nats::Request::new().payload(payload).timeout(Some(timeout));
            match self.client.send_request(subject.clone(), req).await {
                Ok(m) => Ok(Message {
                    subject: m.subject.to_string(),
                    reply: m.reply.map(|r| r.to_string()),
                    payload: m.payload,
                }),
                Err(e) => Err(match e.kind() {
                    async_nats::RequestErrorKind::TimedOut => {
                        BusError::Timeout { subject, timeout }
                    }
                    async_nats::RequestErrorKind::NoResponders => BusError::NoResponders(subject),
                    async_nats::RequestErrorKind::Other => BusError::Connection(e.to_string()),
                }),
            }
        })
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(self.sync())
    }

    fn connection_epoch(&self) -> watch::Receiver<u64> {
        self.epoch.subscribe()
    }

    fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}
