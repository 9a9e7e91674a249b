//! Metrics recorded beside the query path: probes, reloads, TCP connections, the query log. They change
//! a few times a second at most, so they are ordinary prometheus metrics in one registry.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{
    Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// The metrics of events beside the query path.
pub struct Events {
    /// Where they are registered; `GET /metrics` gathers it.
    pub registry: Registry,
    probe_duration: HistogramVec,
    probe_failures: IntCounterVec,
    reloads: IntCounterVec,
    generation: IntGauge,
    last_success: Gauge,
    tcp_connections: IntGauge,
    query_log_dropped: IntCounter,
    xdp_answers: IntCounterVec,
    xdp_dropped: IntCounterVec,
    cluster_standing: IntGaugeVec,
    cluster_transitions: IntCounterVec,
    cluster_nodes: IntGauge,
}

/// The process's event metrics.
pub fn events() -> &'static Events {
    static EVENTS: OnceLock<Events> = OnceLock::new();
    EVENTS.get_or_init(Events::new)
}

impl Events {
    fn new() -> Self {
        let registry = Registry::new();
        let probe_duration = HistogramVec::new(
            HistogramOpts::new(
                "meridian_probe_duration_seconds",
                "Time one health probe took, success or not.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["check"],
        )
        .expect("valid histogram");
        let probe_failures = IntCounterVec::new(
            Opts::new(
                "meridian_probe_failures_total",
                "Failed health probes, by check and why.",
            ),
            &["check", "reason"],
        )
        .expect("valid counter");
        let reloads = IntCounterVec::new(
            Opts::new(
                "meridian_reloads_total",
                "Reloads by result: ok (swapped in) or error (old data kept).",
            ),
            &["result"],
        )
        .expect("valid counter");
        let generation = IntGauge::new(
            "meridian_config_generation",
            "The generation of zones and config serving.",
        )
        .expect("valid gauge");
        let last_success = Gauge::new(
            "meridian_config_last_reload_success_timestamp_seconds",
            "When the generation serving was loaded (Unix time).",
        )
        .expect("valid gauge");
        let tcp_connections =
            IntGauge::new("meridian_tcp_connections", "DNS TCP connections open.")
                .expect("valid gauge");
        let query_log_dropped = IntCounter::new(
            "meridian_query_log_dropped_total",
            "Query log entries dropped because the writer fell behind (the queue was full).",
        )
        .expect("valid counter");
        let xdp_answers = IntCounterVec::new(
            Opts::new(
                "meridian_xdp_answers_total",
                "UDP replies sent by the AF_XDP path, by interface and queue (counted as udp in \
                 the query metrics too).",
            ),
            &["interface", "queue"],
        )
        .expect("valid counter");
        let xdp_dropped = IntCounterVec::new(
            Opts::new(
                "meridian_xdp_dropped_total",
                "Packets for the AF_XDP path the kernel dropped before Meridian read them, by \
                 interface, queue and reason: ring_full (the receive ring was full: Meridian \
                 fell behind), no_frame (no free frame to receive into: replies not yet sent \
                 hold them), other (oversized frames, bad descriptors). Read about once a second.",
            ),
            &["interface", "queue", "reason"],
        )
        .expect("valid counter");
        let cluster_standing = IntGaugeVec::new(
            Opts::new(
                "meridian_cluster_standing",
                "1 for this node's standing in the fleet (connecting, joined, cut_off, \
                 isolated), 0 for the others; absent on a single node.",
            ),
            &["standing"],
        )
        .expect("valid gauge");
        let cluster_transitions = IntCounterVec::new(
            Opts::new(
                "meridian_cluster_transitions_total",
                "Changes of this node's standing in the fleet, by the standing entered.",
            ),
            &["to"],
        )
        .expect("valid counter");
        let cluster_nodes = IntGauge::new(
            "meridian_cluster_nodes",
            "Nodes of the fleet alive in etcd, as this node last saw them.",
        )
        .expect("valid gauge");
        let build_info = IntGaugeVec::new(
            Opts::new("meridian_build_info", "Always 1; the version as a label."),
            &["version"],
        )
        .expect("valid gauge");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let all: [(&str, Box<dyn prometheus::core::Collector>); 13] = [
            ("cluster_standing", Box::new(cluster_standing.clone())),
            ("cluster_transitions", Box::new(cluster_transitions.clone())),
            ("cluster_nodes", Box::new(cluster_nodes.clone())),
            ("probe_duration", Box::new(probe_duration.clone())),
            ("probe_failures", Box::new(probe_failures.clone())),
            ("reloads", Box::new(reloads.clone())),
            ("generation", Box::new(generation.clone())),
            ("last_success", Box::new(last_success.clone())),
            ("tcp_connections", Box::new(tcp_connections.clone())),
            ("query_log_dropped", Box::new(query_log_dropped.clone())),
            ("xdp_answers", Box::new(xdp_answers.clone())),
            ("xdp_dropped", Box::new(xdp_dropped.clone())),
            ("build_info", Box::new(build_info)),
        ];
        for (name, m) in all {
            registry
                .register(m)
                .unwrap_or_else(|e| panic!("metric {name} registers once: {e}"));
        }
        // Both results are shown from the start, so `rate()` sees the first error.
        for result in ["ok", "error"] {
            reloads.with_label_values(&[result]);
        }
        Self {
            registry,
            probe_duration,
            probe_failures,
            reloads,
            generation,
            last_success,
            tcp_connections,
            query_log_dropped,
            xdp_answers,
            xdp_dropped,
            cluster_standing,
            cluster_transitions,
            cluster_nodes,
        }
    }

    /// This node's standing in the fleet is now `standing`.
    pub fn cluster_standing(&self, standing: crate::cluster::Standing) {
        for s in crate::cluster::Standing::ALL {
            self.cluster_standing
                .with_label_values(&[s.as_str()])
                .set(i64::from(s == standing));
        }
        self.cluster_transitions
            .with_label_values(&[standing.as_str()])
            .inc();
    }

    /// This node sees `n` live nodes in the fleet.
    pub fn cluster_nodes(&self, n: usize) {
        self.cluster_nodes.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The counter of replies the AF_XDP path sends from `queue` of `interface`.
    pub fn xdp_answers(&self, interface: &str, queue: u32) -> IntCounter {
        self.xdp_answers
            .with_label_values(&[interface, &queue.to_string()])
    }

    /// The counters of packets the kernel dropped for `queue` of `interface`, by reason:
    /// ring_full, no_frame, other.
    pub fn xdp_dropped(&self, interface: &str, queue: u32) -> [IntCounter; 3] {
        let queue = queue.to_string();
        ["ring_full", "no_frame", "other"].map(|reason| {
            self.xdp_dropped
                .with_label_values(&[interface, &queue, reason])
        })
    }

    /// One probe of `check` took `took`, failing for `failure` when it did.
    pub fn probe(&self, check: &str, took: Duration, failure: Option<&str>) {
        self.probe_duration
            .with_label_values(&[check])
            .observe(took.as_secs_f64());
        if let Some(reason) = failure {
            self.probe_failures
                .with_label_values(&[check, reason])
                .inc();
        }
    }

    /// Generation `generation` was loaded and serves (at start, or by a reload when
    /// `reload`).
    pub fn loaded(&self, generation: u64, reload: bool) {
        if reload {
            self.reloads.with_label_values(&["ok"]).inc();
        }
        self.generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.last_success.set(now.as_secs_f64());
    }

    /// A reload failed; the old generation keeps serving.
    pub fn reload_failed(&self) {
        self.reloads.with_label_values(&["error"]).inc();
    }

    /// A query log entry was dropped: the writer's queue was full.
    pub fn query_log_dropped(&self) {
        self.query_log_dropped.inc();
    }

    /// Counts a TCP connection open until the guard is dropped.
    pub fn tcp_connection(&'static self) -> TcpConnection {
        self.tcp_connections.inc();
        TcpConnection(self)
    }
}

/// An open TCP connection, counted in `meridian_tcp_connections` while it lives.
pub struct TcpConnection(&'static Events);

impl Drop for TcpConnection {
    fn drop(&mut self) {
        self.0.tcp_connections.dec();
    }
}
