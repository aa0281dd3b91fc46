//! The server's metrics for the operator, in the Prometheus text format
//! (`prometheus-client`), served on `--metrics-listen`.
//!
//! One set per process ([`get`]): counters and histograms are updated
//! where things happen (ingest, features, recordings, webhooks, requests)
//! with atomics or a short lock, never a wait; gauges that describe the
//! server's state now (streams by state, sessions by protocol, backlogs,
//! the process itself) are set right before each scrape ([`Metrics::render`]
//! takes them from the caller, which knows where they are).
//!
//! - [`process`]: CPU, memory and open files of this process;
//! - [`requests`]: the HTTP and gRPC requests served, by route or method
//!   and by status or code.

pub mod process;
pub mod requests;

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabel {
    pub protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrackLabel {
    pub track: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LaneLabel {
    pub lane: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabels {
    /// `tls` or `tcp`.
    pub transport: &'static str,
    /// What TLS's ALPN settled on (`h2`, `http/1.1`), `none` without.
    pub alpn: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcLabels {
    pub method: String,
    pub code: String,
}

/// Seconds buckets from 1 ms to about 2 minutes.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 18))
}

/// Every metric of the server.
pub struct Metrics {
    registry: Registry,
    pub streams: Family<StateLabel, Gauge>,
    pub sessions: Family<ProtocolLabel, Gauge>,
    pub ingest_bytes: Family<ProtocolLabel, Counter>,
    pub ingest_frames: Family<TrackLabel, Counter>,
    /// From a keyframe's arrival to the session's features taking it.
    pub ingest_lag: Histogram,
    pub job_queue: Family<LaneLabel, Gauge>,
    pub job_seconds: Family<LaneLabel, Histogram, fn() -> Histogram>,
    /// From a keyframe's arrival to its thumbnail being published.
    pub thumbnail_latency: Histogram,
    pub recording_bytes: Counter,
    pub upload_backlog: Gauge,
    pub webhook_deliveries: Family<OutcomeLabel, Counter>,
    pub webhook_backlog: Gauge,
    pub http_requests: Family<HttpLabels, Counter>,
    pub grpc_requests: Family<GrpcLabels, Counter>,
    pub http_connections: Family<ConnectionLabels, Counter>,
    pub http_connections_open: Gauge,
    pub http_connections_unused: Counter,
    pub http_connections_refused: Family<ReasonLabel, Counter>,
    pub headroom_lag: Family<SourceLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub srt_dropped_datagrams: Counter,
    pub admission_refusing: Gauge,
    pub sessions_refused: Family<ReasonLabel, Counter>,
    pub sessions_shed: Counter,
    /// Anonymous memory resident beyond what malloc has in use.
    pub heap_idle_bytes: Gauge,
    /// Bytes the allocator has handed out and not had back.
    pub heap_in_use_bytes: Gauge,
    pub heap_returned_bytes: Counter,
    pub process: process::ProcessMetrics,
}

impl Metrics {
    fn new() -> Self {
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("liveproc");
        let m = Self {
            streams: Family::default(),
            sessions: Family::default(),
            ingest_bytes: Family::default(),
            ingest_frames: Family::default(),
            ingest_lag: latency_histogram(),
            job_queue: Family::default(),
            job_seconds: Family::new_with_constructor(latency_histogram),
            thumbnail_latency: latency_histogram(),
            recording_bytes: Counter::default(),
            upload_backlog: Gauge::default(),
            webhook_deliveries: Family::default(),
            webhook_backlog: Gauge::default(),
            http_requests: Family::default(),
            grpc_requests: Family::default(),
            http_connections: Family::default(),
            http_connections_open: Gauge::default(),
            http_connections_unused: Counter::default(),
            http_connections_refused: Family::default(),
            headroom_lag: Family::default(),
            srt_dropped_datagrams: Counter::default(),
            admission_refusing: Gauge::default(),
            sessions_refused: Family::default(),
            sessions_shed: Counter::default(),
            heap_idle_bytes: Gauge::default(),
            heap_in_use_bytes: Gauge::default(),
            heap_returned_bytes: Counter::default(),
            process: process::ProcessMetrics::default(),
            registry: Registry::default(),
        };
        registry.register(
            "streams",
            "Registered streams on this node, by state",
            m.streams.clone(),
        );
        registry.register(
            "sessions",
            "Live sessions on this node, by ingest protocol",
            m.sessions.clone(),
        );
        registry.register(
            "ingest_bytes",
            "Media bytes received, by ingest protocol",
            m.ingest_bytes.clone(),
        );
        registry.register(
            "ingest_frames",
            "Access units received, by track",
            m.ingest_frames.clone(),
        );
        registry.register(
            "ingest_lag_seconds",
            "Time from a keyframe's arrival to the session's features taking it",
            m.ingest_lag.clone(),
        );
        registry.register(
            "job_queue_depth",
            "Media jobs (image, clip, remux) waiting for a slot, by lane",
            m.job_queue.clone(),
        );
        registry.register(
            "job_seconds",
            "Time of a media job from being asked to its end, by lane",
            m.job_seconds.clone(),
        );
        registry.register(
            "thumbnail_latency_seconds",
            "Time from a keyframe's arrival to its thumbnail being published",
            m.thumbnail_latency.clone(),
        );
        registry.register(
            "recording_bytes_written",
            "Media bytes (samples) written to recording files",
            m.recording_bytes.clone(),
        );
        registry.register(
            "upload_backlog_recordings",
            "Recordings not yet wholly in object storage",
            m.upload_backlog.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts, by outcome",
            m.webhook_deliveries.clone(),
        );
        registry.register(
            "webhook_backlog",
            "Webhook events waiting to be delivered (every node's)",
            m.webhook_backlog.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            m.http_requests.clone(),
        );
        registry.register(
            "grpc_requests",
            "gRPC calls ended, by method and code",
            m.grpc_requests.clone(),
        );
        registry.register(
            "http_connections",
            "Connections taken on the gRPC/HTTP address, by transport and ALPN protocol",
            m.http_connections.clone(),
        );
        registry.register(
            "http_connections_open",
            "Connections open on the gRPC/HTTP address",
            m.http_connections_open.clone(),
        );
        registry.register(
            "http_connections_unused",
            "Connections that closed without a request (browser preconnects, scanners, clients too slow to send one)",
            m.http_connections_unused.clone(),
        );
        registry.register(
            "headroom_lag_seconds",
            "Lateness that lasted the last quarter second: of SRT datagrams taken from their socket (srt), of SRT payloads waiting for their session (srt_sessions), of tasks woken (runtime)",
            m.headroom_lag.clone(),
        );
        registry.register(
            "srt_dropped_datagrams",
            "SRT datagrams the kernel dropped because a socket's receive buffer was full",
            m.srt_dropped_datagrams.clone(),
        );
        registry.register(
            "admission_refusing",
            "1 while this node refuses new sessions because it is behind",
            m.admission_refusing.clone(),
        );
        registry.register(
            "sessions_refused",
            "New sessions refused by this node, by reason",
            m.sessions_refused.clone(),
        );
        registry.register(
            "sessions_shed",
            "Sessions this node ended to keep its others whole when it was overloaded",
            m.sessions_shed.clone(),
        );
        registry.register(
            "heap_idle_bytes",
            "Anonymous memory resident beyond what the allocator has in use, at its last look",
            m.heap_idle_bytes.clone(),
        );
        registry.register(
            "heap_in_use_bytes",
            "Heap memory the allocator has handed out and not had back, at its last look",
            m.heap_in_use_bytes.clone(),
        );
        registry.register(
            "heap_returned_bytes",
            "Free heap memory given back to the system",
            m.heap_returned_bytes.clone(),
        );
        registry.register(
            "http_connections_refused",
            "Connections closed before serving, by reason",
            m.http_connections_refused.clone(),
        );
        m.process.register(&mut root);
        Self {
            registry: root,
            ..m
        }
    }

    /// Every metric in the OpenMetrics text format, with the process's
    /// figures read now.
    pub fn render(&self) -> String {
        self.process.refresh();
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }

    /// Every metric in the classic Prometheus text format (0.0.4), for
    /// scrapers that do not ask for OpenMetrics (and `promtool`).
    pub fn render_classic(&self) -> String {
        to_classic(&self.render())
    }

    pub fn ingest_bytes(&self, protocol: &str) -> Counter {
        self.ingest_bytes
            .get_or_create(&ProtocolLabel {
                protocol: protocol.to_string(),
            })
            .clone()
    }
}

/// OpenMetrics text as the classic format has it: a counter's family is
/// named with its `_total` (OpenMetrics names it without), and there are
/// no `# UNIT` or `# EOF` lines.
pub fn to_classic(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(name) {
                    out.push_str(&format!("{prefix}{name}_total {tail}"));
                } else {
                    out.push_str(line);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classic_format_names_counters_with_their_total() {
        let open = "# HELP a_bytes Bytes.\n# TYPE a_bytes counter\n# UNIT a_bytes bytes\na_bytes_total 3\n# HELP g G.\n# TYPE g gauge\ng 1\n# EOF\n";
        assert_eq!(
            to_classic(open),
            "# HELP a_bytes_total Bytes.\n# TYPE a_bytes_total counter\na_bytes_total 3\n# HELP g G.\n# TYPE g gauge\ng 1\n"
        );
    }

    #[test]
    fn renders_the_text_format_with_every_family() {
        let m = get();
        m.recording_bytes.inc_by(10);
        m.ingest_bytes("srt").inc_by(188);
        m.thumbnail_latency.observe(0.05);
        let text = m.render();
        for name in [
            "liveproc_recording_bytes_written_total",
            "liveproc_ingest_bytes_total{protocol=\"srt\"}",
            "liveproc_thumbnail_latency_seconds_bucket",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_cpu_seconds_total",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }
}
