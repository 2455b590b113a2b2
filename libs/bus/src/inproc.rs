//! The bus inside one process (`paasd dev`): subscriptions are channels in a shared table.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};

use crate::subject::{subject_matches, validate_pattern, validate_subject};
use crate::{Bus, BusError, Message, Subscription, SUBSCRIPTION_BUFFER};

struct Sub {
    id: u64,
    pattern: String,
    queue: Option<String>,
    tx: mpsc::Sender<Message>,
}

#[derive(Default)]
struct Table {
    subs: RwLock<Vec<Sub>>,
    next_id: AtomicU64,
    /// Round-robin position per queue group.
    rr: AtomicUsize,
    dropped: AtomicU64,
}

/// In-process implementation of [`Bus`].
#[derive(Clone)]
pub struct InProcessBus {
    table: Arc<Table>,
    epoch: watch::Sender<u64>,
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessBus {
    pub fn new() -> Self {
        let (epoch, _) = watch::channel(1);
        Self { table: Arc::new(Table::default()), epoch }
    }

    /// Messages dropped because a subscriber's buffer was full.
    pub fn dropped(&self) -> u64 {
        self.table.dropped.load(Ordering::Relaxed)
    }

    fn add(&self, pattern: &str, queue: Option<&str>) -> Result<Subscription, BusError> {
        validate_pattern(pattern)?;
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let id = self.table.next_id.fetch_add(1, Ordering::Relaxed);
        let sub = Sub { id, pattern: pattern.to_owned(), queue: queue.map(str::to_owned), tx };
        self.table.subs.write().unwrap_or_else(|e| e.into_inner()).push(sub);
        let guard = Unsubscribe { table: Arc::downgrade(&self.table), id };
        Ok(Subscription::new(rx, Some(Box::new(guard))))
    }

    /// Deliver to every plain subscriber and one member of each queue group; returns how many
    /// subscribers received it.
    fn deliver(&self, msg: Message) -> usize {
        let subs = self.table.subs.read().unwrap_or_else(|e| e.into_inner());
        let mut delivered = 0;
        let mut groups: HashMap<&str, Vec<&Sub>> = HashMap::new();
        for sub in subs.iter().filter(|s| subject_matches(&s.pattern, &msg.subject)) {
            match &sub.queue {
                Some(q) => groups.entry(q.as_str()).or_default().push(sub),
                None => delivered += usize::from(self.offer(sub, msg.clone())),
            }
        }
        for members in groups.values() {
            let start = self.table.rr.fetch_add(1, Ordering::Relaxed);
            // Offer to the members in turn; a member whose buffer is full is skipped.
            let taken = (0..members.len())
                .map(|i| members[(start + i) % members.len()])
                .any(|sub| sub.tx.try_send(msg.clone()).is_ok());
            if taken {
                delivered += 1;
            } else {
                self.table.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        delivered
    }

    fn offer(&self, sub: &Sub, msg: Message) -> bool {
        match sub.tx.try_send(msg) {
            Ok(()) => true,
            Err(_) => {
                self.table.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

struct Unsubscribe {
    table: std::sync::Weak<Table>,
    id: u64,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        if let Some(table) = self.table.upgrade() {
            table.subs.write().unwrap_or_else(|e| e.into_inner()).retain(|s| s.id != self.id);
        }
    }
}

impl Bus for InProcessBus {
    fn publish(&self, subject: &str, payload: Bytes) -> BoxFuture<'_, Result<(), BusError>> {
        let res = validate_subject(subject).map(|()| {
            self.deliver(Message { subject: subject.to_owned(), reply: None, payload });
        });
        Box::pin(async move { res })
    }

    fn subscribe(&self, pattern: &str) -> BoxFuture<'_, Result<Subscription, BusError>> {
        let res = self.add(pattern, None);
        Box::pin(async move { res })
    }

    fn queue_subscribe(
        &self,
        pattern: &str,
        queue: &str,
    ) -> BoxFuture<'_, Result<Subscription, BusError>> {
        let res = self.add(pattern, Some(queue));
        Box::pin(async move { res })
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
            let inbox = format!("_INBOX.{}", uuid::Uuid::new_v4().simple());
            let mut replies = self.add(&inbox, None)?;
            let msg = Message { subject: subject.clone(), reply: Some(inbox), payload };
            if self.deliver(msg) == 0 {
                return Err(BusError::NoResponders(subject));
            }
            match tokio::time::timeout(timeout, replies.next()).await {
                Ok(Some(m)) => Ok(m),
                Ok(None) => Err(BusError::Closed),
                Err(_) => Err(BusError::Timeout { subject, timeout }),
            }
        })
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), BusError>> {
        // Delivery happens inside `publish`.
        Box::pin(async { Ok(()) })
    }

    fn connection_epoch(&self) -> watch::Receiver<u64> {
        self.epoch.subscribe()
    }

    fn is_connected(&self) -> bool {
        true
    }
}
