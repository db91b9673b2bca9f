//! Message and byte rates, metered over both directions with a GCRA token bucket per
//! rate (governor): a subscription plan's, per subscription and environment across every
//! connection of it (bursts up to a minute's worth), and an API's, per connection (bursts
//! up to a second's worth). One machinery for both.

use crate::frame::{Violation, POLICY_VIOLATION};
use asyncgate_core::{ApiLimits, OnExcess, PlanLimits};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::borrow::Cow;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

pub struct Meter {
    messages: Option<DefaultDirectRateLimiter>,
    bytes: Option<DefaultDirectRateLimiter>,
    pub on_excess: OnExcess,
    /// What closes a connection over these rates (with [`OnExcess::Close`]).
    pub over: Violation,
    /// Messages dropped for being over a rate (with [`OnExcess::Drop`]).
    dropped: AtomicU64,
    /// A plan meter's part held across the nodes, once shared (`--redis`); boxed, as an
    /// API's per-connection meter (kept with each connection) never has one.
    pub across: OnceLock<Box<Across>>,
}

/// What a plan meter's connections took since the nodes last added it up, and whether
/// the nodes together are over the plan's rates this minute (set by the shared
/// counters' sync, [`crate::shared_counters`]).
#[derive(Debug, Default)]
pub struct Across {
    /// Messages, bytes.
    taken: [AtomicU64; 2],
    over: AtomicBool,
    /// The plan's messages and bytes per minute.
    pub limits: [u64; 2],
}

impl Across {
    pub fn new(limits: [u64; 2]) -> Across {
        Across {
            limits,
            ..Across::default()
        }
    }

    /// What was taken since the last call (counted from zero again).
    pub fn take_counts(&self) -> [u64; 2] {
        [
            self.taken[0].swap(0, Ordering::Relaxed),
            self.taken[1].swap(0, Ordering::Relaxed),
        ]
    }

    /// Give back counts a sync could not hand over (Redis away).
    pub fn put_back(&self, counts: [u64; 2]) {
        self.taken[0].fetch_add(counts[0], Ordering::Relaxed);
        self.taken[1].fetch_add(counts[1], Ordering::Relaxed);
    }

    pub fn set_over(&self, over: bool) {
        self.over.store(over, Ordering::Relaxed);
    }
}

/// A subscription plan's meter, shared by the subscription's connections.
pub type PlanMeter = Meter;

/// The reason a connection over its plan's rates is closed with.
pub const OVER_PLAN: &str = "over the plan's message or byte rate";
/// The reason a connection over its API's rates is closed with.
pub const OVER_API_RATE: &str = "over the API's message or byte rate";

fn limiter(n: u64, quota: fn(NonZeroU32) -> Quota) -> Option<DefaultDirectRateLimiter> {
    let n = NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX))?;
    Some(RateLimiter::direct(quota(n)))
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("on_excess", &self.on_excess)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl Meter {
    /// A meter for `plan`, or `None` when it meters nothing.
    pub fn new(plan: &PlanLimits) -> Option<Meter> {
        plan.meters().then(|| Meter {
            messages: limiter(plan.messages_per_minute, Quota::per_minute),
            bytes: limiter(plan.bytes_per_minute, Quota::per_minute),
            on_excess: plan.on_excess,
            over: Violation {
                code: POLICY_VIOLATION,
                reason: Cow::Borrowed(OVER_PLAN),
            },
            dropped: AtomicU64::new(0),
            across: OnceLock::new(),
        })
    }

    /// A meter for one connection of an API with per-connection rates, or `None` when
    /// the API sets none.
    pub fn per_connection(limits: &ApiLimits) -> Option<Meter> {
        (limits.max_messages_per_second > 0 || limits.max_bytes_per_second > 0).then(|| Meter {
            messages: limiter(limits.max_messages_per_second, Quota::per_second),
            bytes: limiter(limits.max_bytes_per_second, Quota::per_second),
            on_excess: limits.rate_limit_action,
            over: Violation {
                code: POLICY_VIOLATION,
                reason: Cow::Borrowed(OVER_API_RATE),
            },
            dropped: AtomicU64::new(0),
            across: OnceLock::new(),
        })
    }

    /// Take one frame of `payload` bytes; whether it is within the rates. A frame larger
    /// than the byte bucket (a minute's or second's worth) is never within them.
    pub fn admit(&self, payload: u64) -> bool {
        let across = self.across.get();
        if across.is_some_and(|a| a.over.load(Ordering::Relaxed)) {
            return false;
        }
        if let Some(m) = &self.messages {
            if m.check().is_err() {
                return false;
            }
        }
        let within = match (
            &self.bytes,
            NonZeroU32::new(u32::try_from(payload).unwrap_or(u32::MAX)),
        ) {
            (Some(b), Some(n)) => matches!(b.check_n(n), Ok(Ok(()))),
            _ => true,
        };
        if let (true, Some(a)) = (within, across) {
            a.taken[0].fetch_add(1, Ordering::Relaxed);
            a.taken[1].fetch_add(payload, Ordering::Relaxed);
        }
        within
    }

    pub fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(messages: u64, bytes: u64) -> PlanLimits {
        PlanLimits {
            max_connections: 0,
            messages_per_minute: messages,
            bytes_per_minute: bytes,
            on_excess: OnExcess::Close,
        }
    }

    #[test]
    fn a_meter_admits_a_minutes_worth_then_refuses() {
        assert!(
            Meter::new(&plan(0, 0)).is_none(),
            "an unlimited plan has no meter"
        );
        let m = Meter::new(&plan(3, 0)).unwrap();
        assert!((0..3).all(|_| m.admit(10)));
        assert!(!m.admit(10));
        let b = Meter::new(&plan(0, 100)).unwrap();
        assert!(b.admit(60) && b.admit(40));
        assert!(!b.admit(1));
        assert!(
            !Meter::new(&plan(0, 100)).unwrap().admit(101),
            "larger than a minute's bytes"
        );
        assert!(b.admit(0), "an empty frame carries no bytes");
    }

    #[test]
    fn a_shared_meter_counts_what_it_admits_and_refuses_while_the_nodes_are_over() {
        let m = Meter::new(&plan(100, 0)).unwrap();
        m.across.set(Box::new(Across::new([100, 0]))).unwrap();
        assert!(m.admit(10) && m.admit(5));
        let across = m.across.get().unwrap();
        assert_eq!(across.take_counts(), [2, 15]);
        assert_eq!(across.take_counts(), [0, 0], "counted from zero again");
        across.set_over(true);
        assert!(!m.admit(1), "over across the nodes");
        assert_eq!(
            across.take_counts(),
            [0, 0],
            "a refused frame is not counted"
        );
        across.set_over(false);
        assert!(m.admit(1));
    }
}
