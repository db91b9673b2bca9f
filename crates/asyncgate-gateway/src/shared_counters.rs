//! Connection limits held across gateway nodes in Redis (`--redis`). Each counter is a
//! Redis hash of per-node counts; a node's count is counted only while the node is alive
//! (its key, refreshed every few seconds, expires when it dies), so a crashed node's
//! places come back by themselves. A node takes a place in every counter of a connection
//! at once (one Lua script: all or none), after its own per-node check has passed.
//!
//! Subscription plans' message and byte rates are added up across the nodes too, per
//! minute: every second each node adds what its connections of a subscription took to
//! the subscription's counters for the current minute and reads the totals back; when
//! the nodes together are over a rate, each node refuses the subscription's messages
//! (as its plan says: drop or close) for the rest of that minute. A node's own meter
//! (GCRA, per minute) keeps holding on its own meanwhile, so between two syncs the nodes
//! together can take at most one second's worth more.
//!
//! When Redis cannot be reached, nodes fall back to their per-node limits (already
//! applied), say so in the `asyncgate_shared_counters_up` gauge, the
//! `asyncgate_shared_counters_fallbacks_total` counter and the log, and never refuse
//! traffic for it. A node writes its own counts again at every heartbeat, so a Redis that
//! restarted empty is right again within one.

use crate::meter::{Across, Meter};
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How often a node adds up the plans' rates with the others.
const RATE_SYNC: Duration = Duration::from_secs(1);
/// How often a node says it is alive and writes its counts.
const HEARTBEAT: Duration = Duration::from_secs(3);
/// How long a node counts as alive after its last heartbeat.
const ALIVE_SECONDS: u64 = 10;
/// Longest a handshake waits for Redis before falling back to per-node limits.
const RESERVE_TIMEOUT: Duration = Duration::from_millis(500);
/// Counters no node has written for this long disappear.
const COUNTER_SECONDS: u64 = 120;

const PREFIX: &str = "asyncgate:";

/// Check every counter (KEYS) against its limit (ARGV[3..], 0: none), counting the
/// places of live nodes only; when all have room take one place in each for this node
/// (ARGV[1]). Returns 0, or the 1-based index of the first full counter.
const RESERVE: &str = r"
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i + 2])
  if limit > 0 then
    local held = 0
    local all = redis.call('HGETALL', key)
    for j = 1, #all, 2 do
      local node = all[j]
      if node == ARGV[1] or redis.call('EXISTS', ARGV[2] .. node) == 1 then
        held = held + tonumber(all[j + 1])
      end
    end
    if held >= limit then
      return i
    end
  end
end
for _, key in ipairs(KEYS) do
  redis.call('HINCRBY', key, ARGV[1], 1)
  redis.call('EXPIRE', key, tonumber(ARGV[#KEYS + 3]))
end
return 0
";

/// One counter a connection takes a place in: its name and the most it may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub name: String,
    pub limit: u64,
}

/// What a reservation found.
#[derive(Debug)]
pub enum Reserved {
    /// A place in every counter, given back when dropped.
    Place(SharedPlace),
    /// The counter at this index is full across the nodes.
    Full(usize),
    /// Redis did not answer: per-node limits only.
    Unavailable,
}

/// The places one connection holds; dropping it gives them back.
pub struct SharedPlace(Box<(Arc<SharedCounters>, Vec<String>)>);

impl std::fmt::Debug for SharedPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SharedPlace").field(&self.0 .1).finish()
    }
}

impl Drop for SharedPlace {
    fn drop(&mut self) {
        let (counters, names) = &mut *self.0;
        counters.give_back(std::mem::take(names));
    }
}

pub struct SharedCounters {
    node: String,
    alive_key: String,
    client: redis::Client,
    /// Made by the heartbeat once Redis first answers; it reconnects by itself after.
    redis: Mutex<Option<redis::aio::ConnectionManager>>,
    script: redis::Script,
    /// This node's places per counter: what it writes at each heartbeat.
    mine: Mutex<HashMap<String, u64>>,
    /// Plan meters whose rates are added up across the nodes, with their counter names.
    rates: Mutex<Vec<(std::sync::Weak<Meter>, String)>>,
    /// Places given back, for the background task to take off in Redis.
    released: mpsc::UnboundedSender<Vec<String>>,
    /// [`UNKNOWN`], [`UP`] or [`DOWN`]: whether Redis answered last time.
    state: AtomicU8,
    metrics: Metrics,
}

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

impl SharedCounters {
    /// Connect to Redis at `url` as node `node`, and start the heartbeat and the task that
    /// gives places back (on the current runtime). Fails only on a URL that cannot be
    /// used; Redis being away at start is a fallback like any other.
    pub async fn start(
        url: &str,
        node: &str,
        metrics: Metrics,
    ) -> Result<Arc<SharedCounters>, String> {
        let client = redis::Client::open(url)
            .map_err(|e| format!("--redis: `{url}` is not a Redis URL: {e}"))?;
        let (released, mut rx) = mpsc::unbounded_channel::<Vec<String>>();
        let counters = Arc::new(SharedCounters {
            node: node.to_string(),
            alive_key: format!("{PREFIX}node:{node}"),
            client,
            redis: Mutex::new(None),
            script: redis::Script::new(RESERVE),
            mine: Mutex::new(HashMap::new()),
            rates: Mutex::new(Vec::new()),
            released,
            state: AtomicU8::new(UNKNOWN),
            metrics,
        });
        let weak = Arc::downgrade(&counters);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            let mut rate_tick = tokio::time::interval(RATE_SYNC);
            loop {
                tokio::select! {
                    _ = rate_tick.tick() => {
                        let Some(c) = weak.upgrade() else { return };
                        c.sync_rates().await;
                    }
                    names = rx.recv() => {
                        let Some(names) = names else { return };
                        let Some(c) = weak.upgrade() else { return };
                        c.take_off(names).await;
                    }
                    _ = tick.tick() => {
                        let Some(c) = weak.upgrade() else { return };
                        c.heartbeat().await;
                    }
                }
            }
        });
        Ok(counters)
    }

    /// Whether Redis answered last time it was asked.
    pub fn up(&self) -> bool {
        self.state.load(Ordering::Relaxed) == UP
    }

    /// Note whether Redis answered; a change is logged (once per change, not per call).
    fn answered(&self, up: bool, error: Option<String>) {
        self.metrics.shared_counters_up.set(i64::from(up));
        let was = self
            .state
            .swap(if up { UP } else { DOWN }, Ordering::Relaxed);
        if up && was == DOWN {
            tracing::info!("Redis answers again: connection limits hold across the nodes");
        } else if !up && was != DOWN {
            tracing::warn!(
                error = error.as_deref().unwrap_or("no answer in time"),
                "Redis is unreachable: connection limits hold per node until it answers again"
            );
        }
    }

    /// Take a place in every one of `counters` (those with a limit) for this node.
    pub async fn reserve(self: &Arc<Self>, counters: &[Counted]) -> Reserved {
        let mut invocation = self.script.prepare_invoke();
        invocation.arg(&self.node).arg(format!("{PREFIX}node:"));
        for c in counters {
            invocation.key(counter_key(&c.name));
        }
        for c in counters {
            invocation.arg(c.limit);
        }
        invocation.arg(COUNTER_SECONDS);
        let Some(mut redis) = self.connection() else {
            self.metrics.shared_counters_fallbacks.inc();
            return Reserved::Unavailable;
        };
        let answer =
            tokio::time::timeout(RESERVE_TIMEOUT, invocation.invoke_async::<u64>(&mut redis)).await;
        match answer {
            Ok(Ok(0)) => {
                self.answered(true, None);
                let names: Vec<String> = counters.iter().map(|c| c.name.clone()).collect();
                let mut mine = self.mine.lock().unwrap_or_else(|p| p.into_inner());
                for n in &names {
                    *mine.entry(n.clone()).or_default() += 1;
                }
                Reserved::Place(SharedPlace(Box::new((self.clone(), names))))
            }
            Ok(Ok(full)) => {
                self.answered(true, None);
                Reserved::Full(full as usize - 1)
            }
            Ok(Err(e)) => {
                self.metrics.shared_counters_fallbacks.inc();
                self.answered(false, Some(e.to_string()));
                Reserved::Unavailable
            }
            Err(_) => {
                self.metrics.shared_counters_fallbacks.inc();
                self.answered(false, None);
                Reserved::Unavailable
            }
        }
    }

    /// Add up `meter`'s plan rates (`limits`: messages and bytes per minute) with the
    /// other nodes under `name`, from now on (once per meter).
    pub fn share_rate(&self, meter: &Arc<Meter>, name: String, limits: [u64; 2]) {
        if meter.across.set(Box::new(Across::new(limits))).is_ok() {
            self.rates
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((Arc::downgrade(meter), name));
        }
    }

    /// Add what each shared plan meter took to this minute's totals, and mark the meters
    /// whose subscriptions are over across the nodes.
    async fn sync_rates(&self) {
        let meters: Vec<(Arc<Meter>, String)> = {
            let mut rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
            rates.retain(|(m, _)| m.strong_count() > 0);
            rates
                .iter()
                .filter_map(|(m, name)| Some((m.upgrade()?, name.clone())))
                .collect()
        };
        if meters.is_empty() {
            return;
        }
        let Some(mut redis) = self.connection() else {
            return;
        };
        let minute = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 60);
        let taken: Vec<[u64; 2]> = meters
            .iter()
            .map(|(m, _)| m.across.get().map_or([0, 0], |a| a.take_counts()))
            .collect();
        let mut pipe = redis::pipe();
        for ((_, name), counts) in meters.iter().zip(&taken) {
            for (i, what) in ["messages", "bytes"].iter().enumerate() {
                let key = format!("{PREFIX}rate:{name}:{what}:{minute}");
                pipe.incr(&key, counts[i]);
                pipe.expire(&key, 120).ignore();
            }
        }
        match pipe.query_async::<Vec<u64>>(&mut redis).await {
            Ok(totals) => {
                let mut over_now = 0;
                for (i, (meter, _)) in meters.iter().enumerate() {
                    let Some(across) = meter.across.get() else {
                        continue;
                    };
                    let over = (0..2).any(|k| {
                        across.limits[k] > 0
                            && totals
                                .get(i * 2 + k)
                                .is_some_and(|t| *t >= across.limits[k])
                    });
                    across.set_over(over);
                    over_now += i64::from(over);
                }
                self.metrics.shared_rates_over.set(over_now);
            }
            Err(e) => {
                // Per node until Redis answers: nothing is refused for Redis being away.
                for ((meter, _), counts) in meters.iter().zip(taken) {
                    if let Some(across) = meter.across.get() {
                        across.put_back(counts);
                        across.set_over(false);
                    }
                }
                self.metrics.shared_rates_over.set(0);
                self.answered(false, Some(e.to_string()));
            }
        }
    }

    fn give_back(&self, names: Vec<String>) {
        {
            let mut mine = self.mine.lock().unwrap_or_else(|p| p.into_inner());
            for n in &names {
                if let Some(count) = mine.get_mut(n) {
                    *count -= 1;
                    if *count == 0 {
                        mine.remove(n);
                    }
                }
            }
        }
        let _ = self.released.send(names);
    }

    async fn take_off(&self, names: Vec<String>) {
        let mut pipe = redis::pipe();
        for n in &names {
            pipe.hincr(counter_key(n), &self.node, -1).ignore();
        }
        let Some(mut redis) = self.connection() else {
            return;
        };
        if let Err(e) = pipe.query_async::<()>(&mut redis).await {
            // The next heartbeat writes this node's counts as they are.
            tracing::debug!(error = %e, "could not give places back in Redis");
        }
    }

    fn connection(&self) -> Option<redis::aio::ConnectionManager> {
        self.redis.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Say this node is alive and write its counts as they are (connecting first, the
    /// first time Redis answers).
    async fn heartbeat(&self) {
        let redis = match self.connection() {
            Some(r) => r,
            None => {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Duration::from_secs(2))
                    .set_response_timeout(Duration::from_secs(2))
                    .set_number_of_retries(1)
                    .set_max_delay(2_000);
                match redis::aio::ConnectionManager::new_with_config(self.client.clone(), config)
                    .await
                {
                    Ok(r) => {
                        *self.redis.lock().unwrap_or_else(|p| p.into_inner()) = Some(r.clone());
                        r
                    }
                    Err(e) => return self.answered(false, Some(e.to_string())),
                }
            }
        };
        let counts: Vec<(String, u64)> = self
            .mine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let mut pipe = redis::pipe();
        pipe.set_ex(&self.alive_key, 1, ALIVE_SECONDS).ignore();
        for (name, count) in &counts {
            let key = counter_key(name);
            pipe.hset(&key, &self.node, *count).ignore();
            pipe.expire(&key, COUNTER_SECONDS as i64).ignore();
        }
        let mut redis = redis;
        match pipe.query_async::<()>(&mut redis).await {
            Ok(()) => self.answered(true, None),
            Err(e) => self.answered(false, Some(e.to_string())),
        }
    }
}

fn counter_key(name: &str) -> String {
    format!("{PREFIX}connections:{name}")
}
