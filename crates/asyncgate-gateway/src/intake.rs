//! What the gateway lets in before it reads a byte: a bound on connections in total (so
//! that the file descriptors of the management API and the store are never taken by
//! the gateway), and on handshakes still in progress per listener and per client
//! address (so that slow or idle clients cannot hold every slot).

use crate::error::GatewayError;
use http::StatusCode;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// File descriptors left for everything but proxied connections (management API, store,
/// logs, certificate files) when the total is derived from the process limit.
pub const RESERVED_DESCRIPTORS: u64 = 256;

/// Connections held against their maximum, handshakes included: one slot taken when a
/// connection is accepted and given back when its task ends (or is dropped). A counter,
/// not a semaphore: nobody waits for a slot, a connection over the bound is refused.
pub struct Slots {
    held: AtomicUsize,
    max: usize,
}

/// One connection's slot, given back when dropped.
pub struct Slot(Arc<Slots>);

impl Slots {
    pub fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            held: AtomicUsize::new(0),
            max,
        })
    }

    /// A slot, unless all are held.
    pub fn take(self: &Arc<Self>) -> Option<Slot> {
        self.held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.clone()))
    }

    /// Slots held now: connection tasks alive.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Connections in total when the configuration leaves it to the process: each proxied
/// connection holds two descriptors (client and backend).
pub fn default_max_connections() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    usize::try_from(soft.saturating_sub(RESERVED_DESCRIPTORS) / 2)
        .unwrap_or(usize::MAX)
        .max(16)
}

/// Raise the process's soft limit on open files to its hard limit, as servers that hold
/// many connections do at start; the resulting soft limit.
pub fn raise_descriptor_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_err() {
            return limit.current.unwrap_or(u64::MAX);
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Most refusals lingering at once (each holds a descriptor for up to the linger time);
/// beyond it a refusal is written once and the connection closed.
pub const MAX_LINGERING_REFUSALS: usize = 256;

/// One refusal lingering; dropping it frees its place.
pub struct Lingering(Arc<AtomicUsize>);

impl Lingering {
    /// A place among the lingering refusals, if one is free.
    pub fn enter(count: &Arc<AtomicUsize>) -> Option<Lingering> {
        count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < MAX_LINGERING_REFUSALS).then_some(n + 1)
            })
            .ok()
            .map(|_| Lingering(count.clone()))
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Handshakes in progress, shared by every worker thread.
#[derive(Default)]
pub struct Pending {
    per_listener: Mutex<HashMap<String, Arc<AtomicUsize>>>,
    per_address: Mutex<HashMap<IpAddr, usize>>,
}

/// A handshake in progress; dropping it (when the handshake ends either way) frees its
/// place.
pub struct PendingGuard {
    pending: Arc<Pending>,
    listener: Arc<AtomicUsize>,
    address: IpAddr,
}

impl Pending {
    /// The counter of one listener (`environment kind`), created on first use.
    pub fn listener(&self, name: &str) -> Arc<AtomicUsize> {
        let mut map = self.per_listener.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_string()).or_default().clone()
    }

    /// Count a handshake from `address` on `listener`, or refuse it (503) when either
    /// bound is reached.
    pub fn enter(
        self: &Arc<Self>,
        listener: &Arc<AtomicUsize>,
        address: IpAddr,
        per_listener: usize,
        per_address: usize,
    ) -> Result<PendingGuard, GatewayError> {
        let busy = |what: String| {
            GatewayError::client(StatusCode::SERVICE_UNAVAILABLE, "too_many_handshakes", what)
                .with_header(http::header::RETRY_AFTER, "1")
        };
        let mut addresses = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        let mine = addresses.entry(address).or_default();
        if *mine >= per_address {
            let n = *mine;
            if n == 0 {
                addresses.remove(&address);
            }
            return Err(busy(format!(
                "{n} handshakes from your address are already in progress, the most allowed"
            )));
        }
        if listener.load(Ordering::Relaxed) >= per_listener {
            if *mine == 0 {
                addresses.remove(&address);
            }
            return Err(busy(format!(
                "{per_listener} handshakes are in progress on this listener, the most allowed"
            )));
        }
        *mine += 1;
        listener.fetch_add(1, Ordering::Relaxed);
        Ok(PendingGuard {
            pending: self.clone(),
            listener: listener.clone(),
            address,
        })
    }

    /// Handshakes in progress from `address`.
    pub fn from_address(&self, address: IpAddr) -> usize {
        let map = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&address).copied().unwrap_or(0)
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.listener.fetch_sub(1, Ordering::Relaxed);
        let mut map = self
            .pending
            .per_address
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_given_back() {
        let slots = Slots::new(2);
        let a = slots.take().unwrap();
        let _b = slots.take().unwrap();
        assert!(slots.take().is_none());
        assert_eq!(slots.held(), 2);
        drop(a);
        assert_eq!(slots.held(), 1);
        assert!(slots.take().is_some());
    }

    #[test]
    fn both_bounds_refuse_and_a_finished_handshake_frees_its_place() {
        let pending = Arc::new(Pending::default());
        let listener = pending.listener("development external");
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = pending.enter(&listener, a, 3, 2).unwrap();
        let _second = pending.enter(&listener, a, 3, 2).unwrap();
        let refused = pending.enter(&listener, a, 3, 2).err().unwrap();
        assert_eq!(
            (refused.status.as_u16(), refused.code),
            (503, "too_many_handshakes")
        );
        let _third = pending.enter(&listener, b, 3, 2).unwrap();
        assert!(
            pending.enter(&listener, b, 3, 2).is_err(),
            "the listener is full"
        );
        drop(first);
        assert_eq!(pending.from_address(a), 1);
        assert!(pending.enter(&listener, b, 3, 2).is_ok());
        assert!(default_max_connections() >= 16);
    }

    #[test]
    fn lingering_refusals_are_bounded() {
        let count = Arc::new(AtomicUsize::new(0));
        let held: Vec<Lingering> = (0..MAX_LINGERING_REFUSALS)
            .map(|_| Lingering::enter(&count).unwrap())
            .collect();
        assert!(Lingering::enter(&count).is_none());
        drop(held);
        assert_eq!(count.load(Ordering::Relaxed), 0);
        assert!(Lingering::enter(&count).is_some());
    }
}
