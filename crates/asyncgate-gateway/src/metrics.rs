//! What the gateway counts, in the Prometheus text format: connections opened, active
//! and closed (by code and by who closed), handshakes refused (by reason code), handshake
//! and backend-dial latency, messages and bytes each way, messages refused by the
//! contract or dropped over rates, the snapshot applied, and the process's memory and
//! descriptors.
//!
//! Labels are bounded: API (`identifier@version`), environment, listener, code, who
//! closed, direction; never a connection, a client or a credential. Counts that change
//! with every message are not counted per message here: each connection keeps its own
//! ([`crate::connection::Connection`]) and a scrape adds them up ([`Live::traffic`]).

use crate::live::Live;
use crate::route::Route;
use crate::snapshot::SnapshotHandle;
use asyncgate_core::ListenerKind;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    pub environment: String,
    pub listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpenedLabels {
    pub api: String,
    pub environment: String,
    pub listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClosedLabels {
    pub api: String,
    pub environment: String,
    pub code: u16,
    pub closed_by: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    pub environment: String,
    pub listener: &'static str,
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    pub api: String,
    pub environment: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets from 0.25 ms to about 4 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// The gateway's metrics. Cheap to clone (every part is shared).
#[derive(Clone)]
pub struct Metrics {
    pub opened: Family<OpenedLabels, Counter>,
    pub closed: Family<ClosedLabels, Counter>,
    pub refused: Family<RefusedLabels, Counter>,
    pub handshake: Histograms<ListenerLabels>,
    pub backend_connect: Histograms<ApiLabels>,
    pub snapshot_version: Gauge,
    pub snapshot_apply: Gauge<f64, AtomicU64>,
    pub access_log_dropped: Counter,
    /// 1 while Redis answers (with `--redis`), else 0.
    pub shared_counters_up: Gauge,
    /// Handshakes admitted on per-node limits alone because Redis did not answer.
    pub shared_counters_fallbacks: Counter,
    /// Subscriptions over their plan's rates across the nodes this minute.
    pub shared_rates_over: Gauge,
    registry: Arc<Registry>,
}

impl Metrics {
    /// The metrics of a gateway whose live connections are `live` and whose snapshot is
    /// `snapshot` (read at each scrape).
    pub fn new(live: Arc<Live>, snapshot: Arc<SnapshotHandle>) -> Metrics {
        let mut root = Registry::default();
        // Process figures, under their usual names (no prefix).
        root.register_collector(Box::new(ProcessCollector));
        let registry = root.sub_registry_with_prefix("asyncgate");
        let opened = Family::<OpenedLabels, Counter>::default();
        let closed = Family::<ClosedLabels, Counter>::default();
        let refused = Family::<RefusedLabels, Counter>::default();
        let handshake: Histograms<ListenerLabels> = Family::new_with_constructor(latency);
        let backend_connect: Histograms<ApiLabels> = Family::new_with_constructor(latency);
        let snapshot_version = Gauge::default();
        let snapshot_apply = Gauge::<f64, AtomicU64>::default();
        let access_log_dropped = Counter::default();
        let shared_counters_up = Gauge::default();
        let shared_counters_fallbacks = Counter::default();
        let shared_rates_over = Gauge::default();
        registry.register(
            "shared_rates_over",
            "Subscriptions whose plan's message or byte rate the nodes together are over this minute (with Redis)",
            shared_rates_over.clone(),
        );
        registry.register(
            "shared_counters_up",
            "1 while Redis answers and connection limits hold across the nodes; 0 when it does not (or no Redis is configured): limits hold per node",
            shared_counters_up.clone(),
        );
        registry.register(
            "shared_counters_fallbacks",
            "Handshakes admitted on per-node connection limits alone because Redis did not answer",
            shared_counters_fallbacks.clone(),
        );
        registry.register(
            "connections_opened",
            "WebSocket connections accepted (answered 101)",
            opened.clone(),
        );
        registry.register(
            "connections_closed",
            "WebSocket connections ended, by the close code on the client's connection (1006: none) and who closed",
            closed.clone(),
        );
        registry.register(
            "handshakes_refused",
            "Handshakes answered with an error status, by reason code",
            refused.clone(),
        );
        registry.register_with_unit(
            "handshake_duration",
            "Time from accepting a connection to answering 101",
            Unit::Seconds,
            handshake.clone(),
        );
        registry.register_with_unit(
            "backend_connect_duration",
            "Time to connect to the backend and complete its handshake",
            Unit::Seconds,
            backend_connect.clone(),
        );
        registry.register(
            "snapshot_version",
            "Version of the configuration snapshot applied",
            snapshot_version.clone(),
        );
        registry.register_with_unit(
            "snapshot_apply_duration",
            "Time the last snapshot swap took",
            Unit::Seconds,
            snapshot_apply.clone(),
        );
        registry.register(
            "access_log_dropped",
            "Access-log lines dropped because the writer fell behind",
            access_log_dropped.clone(),
        );
        registry.register_collector(Box::new(TrafficCollector { live, snapshot }));
        Metrics {
            opened,
            closed,
            refused,
            handshake,
            backend_connect,
            snapshot_version,
            snapshot_apply,
            access_log_dropped,
            shared_counters_up,
            shared_counters_fallbacks,
            shared_rates_over,
            registry: Arc::new(root),
        }
    }

    /// Every metric, in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// The handshake-latency series of one listener, to keep with it (a lookup per
    /// handshake would build its labels and hash them each time).
    pub fn handshake_series(&self, environment: &str, listener: &'static str) -> Histogram {
        self.handshake
            .get_or_create(&ListenerLabels {
                environment: environment.to_string(),
                listener,
            })
            .clone()
    }

    /// The series of an API's connections on one listener, looked up on its first
    /// connection and then kept with its route.
    pub fn route_series<'r>(&self, route: &'r Route, listener: ListenerKind) -> &'r RouteSeries {
        route.series[crate::snapshot::slot(listener)].get_or_init(|| RouteSeries {
            opened: self
                .opened
                .get_or_create(&OpenedLabels {
                    api: route.api_handle.to_string(),
                    environment: route.environment.clone(),
                    listener: listener.as_str(),
                })
                .clone(),
            backend_connect: self
                .backend_connect
                .get_or_create(&ApiLabels {
                    api: route.api_handle.to_string(),
                    environment: route.environment.clone(),
                })
                .clone(),
        })
    }
}

/// One route's series on one listener: handles to the families' entries (no entry is
/// ever removed, so a handle counts where a scrape reads).
#[derive(Clone, Debug)]
pub struct RouteSeries {
    pub opened: Counter,
    pub backend_connect: Histogram,
}

/// Counts read at each scrape: live connections and traffic per API and environment
/// (open connections' own counts plus what ended ones carried), messages refused by the
/// contract (under the revision served) and dropped over a plan's rates.
struct TrafficCollector {
    live: Arc<Live>,
    snapshot: Arc<SnapshotHandle>,
}

impl std::fmt::Debug for TrafficCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrafficCollector")
    }
}

impl Collector for TrafficCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rows = self.live.traffic();
        let compiled = self.snapshot.load();
        {
            let gauge = ConstGauge::new(0i64);
            let mut m = encoder.encode_descriptor(
                "connections_active",
                "WebSocket connections open now",
                None,
                gauge.metric_type(),
            )?;
            for r in &rows {
                let labels = [("api", &*r.api_handle), ("environment", &r.environment)];
                ConstGauge::new(r.active as i64).encode(m.encode_family(&labels)?)?;
            }
        }
        for (name, help, unit, pick) in [
            (
                "messages",
                "WebSocket messages received from one side, by direction",
                None,
                (|c: &crate::connection::Counts| c.messages) as fn(&_) -> u64,
            ),
            (
                "transferred",
                "Bytes received from one side (frames as on the wire), by direction",
                Some(&Unit::Bytes),
                |c: &crate::connection::Counts| c.bytes,
            ),
        ] {
            let mut m = encoder.encode_descriptor(
                name,
                help,
                unit,
                ConstCounter::new(0u64).metric_type(),
            )?;
            for r in &rows {
                for (direction, counts) in ["client_to_backend", "backend_to_client"]
                    .into_iter()
                    .zip(&r.counts)
                {
                    let labels = [
                        ("api", &*r.api_handle),
                        ("environment", &r.environment),
                        ("direction", direction),
                    ];
                    ConstCounter::new(pick(counts)).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        let mut m = encoder.encode_descriptor(
            "messages_refused",
            "Messages that did not match the contract (reason contract, since the revision served was deployed) or went over a rate and were dropped (reason rate)",
            None,
            ConstCounter::new(0u64).metric_type(),
        )?;
        for r in &rows {
            let contract = compiled.refused_messages(&r.environment, &r.api_id);
            for (reason, n) in [("contract", contract), ("rate", r.dropped)] {
                let labels = [
                    ("api", &*r.api_handle),
                    ("environment", &r.environment),
                    ("reason", reason),
                ];
                ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// The process's resident memory and open descriptors, from `/proc` (Linux).
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(rss) = resident_bytes() {
            let g = ConstGauge::new(rss as i64);
            g.encode(encoder.encode_descriptor(
                "process_resident_memory",
                "Resident memory size",
                Some(&Unit::Bytes),
                g.metric_type(),
            )?)?;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            let g = ConstGauge::new(fds.count() as i64);
            g.encode(encoder.encode_descriptor(
                "process_open_fds",
                "Open file descriptors",
                None,
                g.metric_type(),
            )?)?;
        }
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        if let Some(soft) = limit {
            let g = ConstGauge::new(i64::try_from(soft).unwrap_or(i64::MAX));
            g.encode(encoder.encode_descriptor(
                "process_max_fds",
                "Limit of open file descriptors",
                None,
                g.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// `VmRSS` of `/proc/self/status`, in bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
