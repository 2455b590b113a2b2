//! Leadership: with PostgreSQL, one scheduler leads by holding a session advisory lock on a
//! connection of its own; the others stand by, refuse to mutate (503) and take over when the
//! leader's connection dies. With SQLite there is one scheduler, always the leader.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kit::ready::Readiness;
use prometheus_client::metrics::gauge::Gauge;
use sqlx::{AnyConnection, Connection as _, Row as _};

/// The advisory lock key every scheduler of one database competes for ("paas-sch").
const LOCK_KEY: i64 = 0x7061_6173_2d73_6368;

/// Shared view of whether this scheduler leads.
#[derive(Clone, Default)]
pub struct Leadership {
    leader: Arc<AtomicBool>,
    /// `paas_scheduler_leader`: 1 while this scheduler leads.
    gauge: Gauge,
}

impl Leadership {
    /// Always the leader (SQLite: one scheduler per database file).
    pub fn sole() -> Self {
        let l = Self::default();
        l.leader.store(true, Ordering::SeqCst);
        l.gauge.set(1);
        l
    }

    /// The gauge to register with the service's metrics.
    pub fn gauge(&self) -> Gauge {
        self.gauge.clone()
    }

    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    fn set(&self, leader: bool) {
        self.gauge.set(i64::from(leader));
        if self.leader.swap(leader, Ordering::SeqCst) != leader {
            tracing::info!(leader, "scheduler leadership changed");
        }
    }
}

/// Compete for the lock until shutdown; `ready`'s `leadership` turns green once this scheduler
/// knows whether it leads or stands by.
pub async fn contend(
    url: String,
    state: Leadership,
    ready: Readiness,
    shutdown: kit::Shutdown,
    poll: Duration,
) {
    let mut conn: Option<AnyConnection> = None;
    loop {
        let known = match conn.as_mut() {
            None => match AnyConnection::connect(&url).await {
                Ok(c) => {
                    conn = Some(c);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "leadership connection failed");
                    false
                }
            },
            Some(c) if state.is_leader() => sqlx::query("SELECT 1").execute(&mut *c).await.is_ok(),
            Some(c) => match try_lock(c).await {
                Ok(got) => {
                    state.set(got);
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, "leadership query failed");
                    false
                }
            },
        };
        if !known {
            state.set(false);
            conn = None;
        }
        ready.set("leadership", known);
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(poll) => {}
        }
    }
    state.set(false);
    if let Some(c) = conn {
        let _ = c.close().await;
    }
}

async fn try_lock(c: &mut AnyConnection) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT pg_try_advisory_lock($1) AS got")
        .bind(LOCK_KEY)
        .fetch_one(&mut *c)
        .await?;
    row.try_get::<bool, _>("got")
}
