//! The message bus between services: one trait, [`Bus`], with two implementations that behave
//! the same — [`NatsBus`] over a real NATS server for deployments of several processes, and
//! [`InProcessBus`] for `paasd dev`, where every service shares one process.
//!
//! Semantics (both implementations): NATS subjects with `*` (one token) and `>` (the rest)
//! wildcards; queue groups deliver each message to exactly one member of the group;
//! request/reply with a timeout. Delivery is at-most-once: the bus never blocks a publisher on
//! a slow subscriber, it drops for that subscriber instead. Anything that must not be lost
//! travels over HTTP with retries, not over this bus.

mod inproc;
mod nats;
mod subject;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::Stream;
use tokio::sync::mpsc;

pub use inproc::InProcessBus;
pub use nats::{NatsBus, NatsOptions};
pub use subject::{subject_matches, validate_pattern, validate_subject};

/// A message as subscribers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    /// Inbox to answer on, for requests.
    pub reply: Option<String>,
    pub payload: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("invalid subject {0:?}: {1}")]
    InvalidSubject(String, &'static str),
    #[error("no answer on {subject} within {timeout:?}")]
    Timeout { subject: String, timeout: Duration },
    #[error("no subscriber for request on {0}")]
    NoResponders(String),
    #[error("message bus is closed")]
    Closed,
    #[error("message bus connection: {0}")]
    Connection(String),
    #[error("encoding message: {0}")]
    Codec(#[from] serde_json::Error),
}

/// A stream of messages for one subscription; dropping it unsubscribes.
pub struct Subscription {
    rx: mpsc::Receiver<Message>,
    _guard: Option<Box<dyn Send + Sync>>,
}

impl Subscription {
    pub(crate) fn new(rx: mpsc::Receiver<Message>, guard: Option<Box<dyn Send + Sync>>) -> Self {
        Self { rx, _guard: guard }
    }

    /// The next message, or `None` once the bus is closed.
    pub async fn next(&mut self) -> Option<Message> {
        self.rx.recv().await
    }

    /// A message already waiting, without waiting for one.
    pub fn try_next(&mut self) -> Option<Message> {
        self.rx.try_recv().ok()
    }
}

impl Stream for Subscription {
    type Item = Message;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.rx.poll_recv(cx)
    }
}

/// Messages buffered per subscription before the bus drops for that subscriber.
pub const SUBSCRIPTION_BUFFER: usize = 8192;

/// The bus as every service sees it.
pub trait Bus: Send + Sync + 'static {
    /// Publish without waiting for anyone; a subject without subscribers drops the message.
    fn publish(&self, subject: &str, payload: Bytes) -> BoxFuture<'_, Result<(), BusError>>;

    /// Every message matching `pattern` (wildcards allowed).
    fn subscribe(&self, pattern: &str) -> BoxFuture<'_, Result<Subscription, BusError>>;

    /// Like [`Bus::subscribe`], but each message goes to exactly one member of `queue`.
    fn queue_subscribe(
        &self,
        pattern: &str,
        queue: &str,
    ) -> BoxFuture<'_, Result<Subscription, BusError>>;

    /// Publish with a fresh reply inbox and wait for the first answer.
    fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Message, BusError>>;

    /// Wait until the bus has taken every message this handle published before: a message
    /// another connection publishes afterwards (in response to something we did next) cannot
    /// overtake them.
    fn flush(&self) -> BoxFuture<'_, Result<(), BusError>>;

    /// Counts (re)connections: starts at 1 once connected and grows by one on every reconnect,
    /// so a router can re-announce itself (`router.start`) after the bus came back.
    fn connection_epoch(&self) -> tokio::sync::watch::Receiver<u64>;

    /// Whether the bus is usable right now (for `/readyz`).
    fn is_connected(&self) -> bool;
}

/// Shared handle used by services.
pub type DynBus = Arc<dyn Bus>;

/// JSON helpers on top of any [`Bus`].
pub trait BusExt: Bus {
    fn publish_json<'a, T: serde::Serialize + Sync>(
        &'a self,
        subject: &'a str,
        value: &'a T,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            let body = serde_json::to_vec(value)?;
            self.publish(subject, Bytes::from(body)).await
        })
    }

    /// Answer a request message (no-op when it carries no reply inbox).
    fn respond<'a>(
        &'a self,
        to: &'a Message,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            match &to.reply {
                Some(reply) => self.publish(reply, payload).await,
                None => Ok(()),
            }
        })
    }
}

impl<B: Bus + ?Sized> BusExt for B {}
