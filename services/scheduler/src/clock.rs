//! Time, behind a trait so the crash back-off and TTLs are tested with a clock the test moves.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

pub trait Clock: Send + Sync + 'static {
    /// Unix time in nanoseconds.
    fn now_ns(&self) -> i64;
}

pub type DynClock = Arc<dyn Clock>;

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> i64 {
        wire::envelope::now_ns()
    }
}

/// A clock that moves only when told.
#[derive(Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start_ns: i64) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(start_ns)))
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.0.fetch_add(i64::try_from(by.as_nanos()).unwrap_or(i64::MAX), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub const SECOND_NS: i64 = 1_000_000_000;
