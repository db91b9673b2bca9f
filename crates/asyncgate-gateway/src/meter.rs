//! A subscription plan's message and byte rates, metered per subscription and
//! environment across every connection of it and both directions (a GCRA token bucket
//! per rate, bursts up to a minute's worth).

use asyncgate_core::{OnExcess, PlanLimits};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct PlanMeter {
    messages: Option<DefaultDirectRateLimiter>,
    bytes: Option<DefaultDirectRateLimiter>,
    pub on_excess: OnExcess,
    /// Messages dropped for being over a rate (with [`OnExcess::Drop`]).
    dropped: AtomicU64,
}

fn limiter(per_minute: u64) -> Option<DefaultDirectRateLimiter> {
    let n = NonZeroU32::new(u32::try_from(per_minute).unwrap_or(u32::MAX))?;
    Some(RateLimiter::direct(Quota::per_minute(n)))
}

impl std::fmt::Debug for PlanMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanMeter")
            .field("on_excess", &self.on_excess)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl PlanMeter {
    /// A meter for `plan`, or `None` when it meters nothing.
    pub fn new(plan: &PlanLimits) -> Option<PlanMeter> {
        plan.meters().then(|| PlanMeter {
            messages: limiter(plan.messages_per_minute),
            bytes: limiter(plan.bytes_per_minute),
            on_excess: plan.on_excess,
            dropped: AtomicU64::new(0),
        })
    }

    /// Take one frame of `payload` bytes; whether it is within the plan. A frame larger
    /// than a minute's bytes is never within it.
    pub fn admit(&self, payload: u64) -> bool {
        if let Some(m) = &self.messages {
            if m.check().is_err() {
                return false;
            }
        }
        match (
            &self.bytes,
            NonZeroU32::new(u32::try_from(payload).unwrap_or(u32::MAX)),
        ) {
            (Some(b), Some(n)) => matches!(b.check_n(n), Ok(Ok(()))),
            _ => true,
        }
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
            PlanMeter::new(&plan(0, 0)).is_none(),
            "an unlimited plan has no meter"
        );
        let m = PlanMeter::new(&plan(3, 0)).unwrap();
        assert!((0..3).all(|_| m.admit(10)));
        assert!(!m.admit(10));
        let b = PlanMeter::new(&plan(0, 100)).unwrap();
        assert!(b.admit(60) && b.admit(40));
        assert!(!b.admit(1));
        assert!(
            !PlanMeter::new(&plan(0, 100)).unwrap().admit(101),
            "larger than a minute's bytes"
        );
        assert!(b.admit(0), "an empty frame carries no bytes");
    }
}
