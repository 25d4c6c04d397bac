//! `/metrics`: what the server is doing, in the Prometheus (OpenMetrics) text format, with
//! prometheus-client.
//!
//! Counters and histograms are updated where things happen; the gauges (connections,
//! documents, outbox depth) are read when the page is asked for.

use std::time::Duration;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use tandem_protocol::{ErrorCode, ServerMessage};

/// A label holding one name: a message type, an error code, a refusal reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Type {
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Code {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Reason {
    reason: &'static str,
}

pub(crate) struct Metrics {
    registry: Registry,
    connections: Gauge,
    documents: Gauge,
    outbox_bytes: Gauge,
    received: Family<Type, Counter>,
    sent: Family<Type, Counter>,
    errors: Family<Code, Counter>,
    refusals: Family<Reason, Counter>,
    slow_consumers: Counter,
    apply_seconds: Histogram,
    commit_seconds: Histogram,
    batch_size: Histogram,
    appends: Counter,
    append_conflicts: Counter,
    append_failures: Counter,
    presence_dropped: Counter,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("tandem"),
            connections: Gauge::default(),
            documents: Gauge::default(),
            outbox_bytes: Gauge::default(),
            received: Family::default(),
            sent: Family::default(),
            errors: Family::default(),
            refusals: Family::default(),
            slow_consumers: Counter::default(),
            // From 10 µs to about 10 s.
            apply_seconds: Histogram::new(exponential_buckets(1e-5, 2.0, 20)),
            commit_seconds: Histogram::new(exponential_buckets(1e-5, 2.0, 20)),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
            appends: Counter::default(),
            append_conflicts: Counter::default(),
            append_failures: Counter::default(),
            presence_dropped: Counter::default(),
        };
        let registry = &mut metrics.registry;
        registry.register("connections", "WebSocket connections open", metrics.connections.clone());
        registry.register("documents", "Documents loaded in memory", metrics.documents.clone());
        registry.register(
            "outbox_bytes",
            "Bytes of frames whose changes wait to be stored",
            metrics.outbox_bytes.clone(),
        );
        registry.register(
            "messages_received",
            "Client messages, by type",
            metrics.received.clone(),
        );
        registry.register(
            "messages_sent",
            "Server messages, by type, once per recipient",
            metrics.sent.clone(),
        );
        registry.register("errors", "Error messages sent, by code", metrics.errors.clone());
        registry.register(
            "refusals",
            "Connections and messages refused, by reason",
            metrics.refusals.clone(),
        );
        registry.register(
            "slow_consumer_disconnects",
            "Connections closed because their outgoing queue was full",
            metrics.slow_consumers.clone(),
        );
        registry.register(
            "apply_seconds",
            "Time to handle one client frame in its room",
            metrics.apply_seconds.clone(),
        );
        registry.register(
            "store_commit_seconds",
            "Time to store one batch of changes",
            metrics.commit_seconds.clone(),
        );
        registry.register(
            "store_batch_items",
            "Outbox items stored in one commit",
            metrics.batch_size.clone(),
        );
        registry.register(
            "cluster_appends",
            "Changes this node appended to the cluster's log",
            metrics.appends.clone(),
        );
        registry.register(
            "cluster_append_conflicts",
            "Appends refused because another node's change came first (each then planned again)",
            metrics.append_conflicts.clone(),
        );
        registry.register(
            "cluster_append_failures",
            "Appends or reads of the cluster's log that failed (NATS unreachable, or slow to answer)",
            metrics.append_failures.clone(),
        );
        registry.register(
            "cluster_presence_dropped",
            "Messages for the other nodes' presence (presence, joins, heartbeats, requests for users) dropped because NATS was too slow or away to take them",
            metrics.presence_dropped.clone(),
        );
        metrics
    }

    /// A change appended to the cluster's log.
    pub(crate) fn appended(&self) {
        self.appends.inc();
    }

    /// An append, or a read of the log for one, that failed for want of NATS.
    pub(crate) fn append_failure(&self) {
        self.append_failures.inc();
    }

    /// A presence message for the other nodes dropped; the count so far.
    pub(crate) fn presence_dropped(&self) -> u64 {
        self.presence_dropped.inc() + 1
    }

    /// An append refused because another node's change came first.
    pub(crate) fn append_conflict(&self) {
        self.append_conflicts.inc();
    }

    /// The page, with the gauges as they are now.
    pub(crate) fn render(
        &self,
        connections: usize,
        documents: usize,
        outbox_bytes: usize,
    ) -> String {
        let gauge = |value: usize| i64::try_from(value).unwrap_or(i64::MAX);
        self.connections.set(gauge(connections));
        self.documents.set(gauge(documents));
        self.outbox_bytes.set(gauge(outbox_bytes));
        let mut page = String::new();
        // Writing into a String cannot fail.
        encode(&mut page, &self.registry).expect("encoding into a String");
        page
    }

    pub(crate) fn received(&self, kind: Option<&'static str>) {
        let r#type = kind.unwrap_or("invalid");
        self.received.get_or_create(&Type { r#type }).inc();
    }

    /// A message sent to `recipients` connections.
    pub(crate) fn sent(&self, message: &ServerMessage, recipients: usize) {
        let recipients = recipients as u64;
        self.sent.get_or_create(&Type { r#type: message.kind() }).inc_by(recipients);
        if let ServerMessage::Error { code, .. } = message {
            self.errors.get_or_create(&Code { code: code_name(*code) }).inc_by(recipients);
        }
    }

    /// A connection, message or request refused: `auth`, `origin`, `rate`, `api_rate`,
    /// `old_edits`, `connections`, `connections_per_ip`, `new_connections_per_ip`, `documents`.
    pub(crate) fn refused(&self, reason: &'static str) {
        self.refusals.get_or_create(&Reason { reason }).inc();
    }

    pub(crate) fn slow_consumer(&self) {
        self.slow_consumers.inc();
    }

    pub(crate) fn applied(&self, took: Duration) {
        self.apply_seconds.observe(took.as_secs_f64());
    }

    pub(crate) fn committed(&self, took: Duration, items: usize) {
        self.commit_seconds.observe(took.as_secs_f64());
        self.batch_size.observe(items as f64);
    }
}

/// An error code as the wire spells it.
fn code_name(code: ErrorCode) -> String {
    match serde_json::to_value(code) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{code:?}"),
    }
}
