//! The rules of an actual instance's life in one place: which state changes are allowed, and
//! what a crash does.

use wire::lrp::ActualState::{self, Claimed, Crashed, Running, Unclaimed};

use crate::clock::SECOND_NS;

/// Whether an instance may go from `from` to `to`. `same_instance` says whether the report
/// comes from the instance (cell + instance guid) the record names; changes that keep a claim
/// (CLAIMED/RUNNING/CRASHED → CLAIMED/RUNNING/CRASHED) need it.
pub fn allows(from: ActualState, to: ActualState, same_instance: bool) -> bool {
    match (from, to) {
        (Unclaimed, Unclaimed | Claimed | Running) => true,
        (Unclaimed, Crashed) => false,
        (Claimed | Running, Unclaimed) => true,
        (Claimed | Running, Claimed | Running | Crashed) => same_instance,
        (Crashed, Unclaimed | Claimed | Running) => true,
        (Crashed, Crashed) => false,
    }
}

/// First crashes that restart at once.
pub const IMMEDIATE_RESTARTS: u32 = 3;
/// No restarts from this many crashes on.
pub const MAX_RESTARTS: u32 = 200;
/// A crash after running this long starts counting again.
pub const CRASH_RESET_NS: i64 = 5 * 60 * SECOND_NS;
const BACKOFF_MIN_NS: i64 = 30 * SECOND_NS;
const BACKOFF_MAX_NS: i64 = 16 * 60 * SECOND_NS;
const MAX_BACKOFF_EXPONENT: u32 = 5;

/// What a crash report does to the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashOutcome {
    pub crash_count: u32,
    /// UNCLAIMED (restart now) or CRASHED (wait for the back-off).
    pub state: ActualState,
}

/// Apply a crash to an instance in `state` since `since` with `crash_count` earlier crashes.
pub fn on_crash(state: ActualState, since: i64, crash_count: u32, now: i64) -> CrashOutcome {
    let count = if state == Running && now - since > CRASH_RESET_NS { 1 } else { crash_count + 1 };
    let state = if count < IMMEDIATE_RESTARTS { Unclaimed } else { Crashed };
    CrashOutcome { crash_count: count, state }
}

/// How long a CRASHED instance with `crash_count` crashes waits before its restart, or `None`
/// once it is never restarted again.
pub fn restart_delay_ns(crash_count: u32) -> Option<i64> {
    if crash_count >= MAX_RESTARTS {
        return None;
    }
    if crash_count < IMMEDIATE_RESTARTS {
        return Some(0);
    }
    let exp = (crash_count - IMMEDIATE_RESTARTS).min(MAX_BACKOFF_EXPONENT);
    Some((BACKOFF_MIN_NS << exp).min(BACKOFF_MAX_NS))
}

/// Whether a CRASHED instance is due for its restart at `now`.
pub fn restart_due(crash_count: u32, since: i64, now: i64) -> bool {
    restart_delay_ns(crash_count).is_some_and(|d| now - since >= d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_table() {
        use ActualState::*;
        // (from, to, same instance, allowed)
        let table = [
            (Unclaimed, Unclaimed, false, true),
            (Unclaimed, Claimed, false, true),
            (Unclaimed, Running, false, true),
            (Unclaimed, Crashed, true, false),
            (Claimed, Unclaimed, false, true),
            (Claimed, Claimed, true, true),
            (Claimed, Claimed, false, false),
            (Claimed, Running, true, true),
            (Claimed, Running, false, false),
            (Claimed, Crashed, true, true),
            (Claimed, Crashed, false, false),
            (Running, Unclaimed, false, true),
            (Running, Claimed, true, true),
            (Running, Claimed, false, false),
            (Running, Running, true, true),
            (Running, Running, false, false),
            (Running, Crashed, true, true),
            (Running, Crashed, false, false),
            (Crashed, Unclaimed, false, true),
            (Crashed, Claimed, false, true),
            (Crashed, Running, false, true),
            (Crashed, Crashed, false, false),
        ];
        for (from, to, same, want) in table {
            assert_eq!(allows(from, to, same), want, "{from:?} -> {to:?} (same instance: {same})");
        }
    }

    #[test]
    fn crash_back_off_schedule_matches_diego() {
        let m = 60;
        // crash count -> wait in seconds
        let table: [(u32, Option<i64>); 12] = [
            (1, Some(0)),
            (2, Some(0)),
            (3, Some(30)),
            (4, Some(m)),
            (5, Some(2 * m)),
            (6, Some(4 * m)),
            (7, Some(8 * m)),
            (8, Some(16 * m)),
            (9, Some(16 * m)),
            (199, Some(16 * m)),
            (200, None),
            (500, None),
        ];
        for (count, secs) in table {
            assert_eq!(restart_delay_ns(count), secs.map(|s| s * SECOND_NS), "crash {count}");
        }
    }

    #[test]
    fn crashes_restart_at_once_twice_then_wait() {
        let now = 1_000 * SECOND_NS;
        let first = on_crash(Running, now - SECOND_NS, 0, now);
        assert_eq!(first, CrashOutcome { crash_count: 1, state: Unclaimed });
        let second = on_crash(Running, now - SECOND_NS, 1, now);
        assert_eq!(second, CrashOutcome { crash_count: 2, state: Unclaimed });
        let third = on_crash(Claimed, now - SECOND_NS, 2, now);
        assert_eq!(third, CrashOutcome { crash_count: 3, state: Crashed });
        assert!(!restart_due(3, now, now + 29 * SECOND_NS));
        assert!(restart_due(3, now, now + 30 * SECOND_NS));
    }

    #[test]
    fn running_five_minutes_resets_the_count() {
        let now = 10_000 * SECOND_NS;
        let long_run = on_crash(Running, now - CRASH_RESET_NS - SECOND_NS, 7, now);
        assert_eq!(long_run, CrashOutcome { crash_count: 1, state: Unclaimed });
        let short_run = on_crash(Running, now - CRASH_RESET_NS + SECOND_NS, 7, now);
        assert_eq!(short_run, CrashOutcome { crash_count: 8, state: Crashed });
        let claimed_long = on_crash(Claimed, now - CRASH_RESET_NS - SECOND_NS, 7, now);
        assert_eq!(claimed_long.crash_count, 8, "only a RUNNING instance earns the reset");
    }
}
