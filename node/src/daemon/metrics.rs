//! What the daemon counts, for Prometheus: connected peers, changes in and
//! out, rejections, sync sessions and their durations, bytes on the wire,
//! and attachments: bytes held, bytes still to fetch, bytes received and
//! sent, files fetched, answers that failed verification; and reaching
//! members: bytes over relayed connections, hole punches tried and
//! succeeded, reservations and circuits this node's relay granted.
//!
//! The event loop updates the counters; the web server's `/metrics` renders
//! them in the OpenMetrics text format.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::net::Counters;
use crate::net::relayed::RelayedBytes;

/// How a sync session ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

/// The daemon's counters. Cheap to update from the event loop.
#[derive(Debug)]
pub struct Metrics {
    pub peers: Gauge,
    pub changes_in: Counter,
    /// Changes sent: pushed in our sessions and served to peers' requests.
    pub changes_out: Counter,
    pub rejected: Counter,
    pub sessions: Family<Outcome, Counter>,
    pub session_seconds: Histogram,
    /// Bytes of attachment content held (refreshed every second or so).
    pub files_held_bytes: Gauge,
    /// Bytes of the downloads in progress still to come.
    pub files_fetching_bytes: Gauge,
    /// Attachment bytes received and verified.
    pub files_received_bytes: Counter,
    /// Attachment bytes sent (ranges with their proofs).
    pub files_sent_bytes: Counter,
    /// Downloads completed and checked.
    pub files_fetched: Counter,
    /// File answers that failed verification (each sender was banned).
    pub files_violations: Counter,
    /// Hole punches tried with members over relayed connections, and
    /// those that gave a direct connection.
    pub holepunch_attempts: Counter,
    pub holepunch_successes: Counter,
    /// Reservations and circuits this node's relay granted members.
    pub relay_reservations: Counter,
    pub relay_circuits: Counter,
    /// Member connections this node closed past `network.max_peers`.
    pub closed_for_bound: Counter,
    registry: Registry,
}

/// Bytes counted by the sync codec and on relayed connections, read on
/// each scrape (the registry adds the `convene_` prefix).
#[derive(Debug)]
struct WireBytes(Arc<Counters>, Arc<RelayedBytes>);

impl Collector for WireBytes {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, value) in [
            ("sync_sent_bytes", "Sync protocol bytes sent", self.0.sent()),
            (
                "sync_received_bytes",
                "Sync protocol bytes received",
                self.0.received(),
            ),
            (
                "relayed_sent_bytes",
                "Bytes this node sent over connections through a member's relay",
                self.1.sent(),
            ),
            (
                "relayed_received_bytes",
                "Bytes this node received over connections through a member's relay",
                self.1.received(),
            ),
        ] {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

impl Metrics {
    /// Counters registered under the `convene_` prefix, plus the codec's
    /// byte counts.
    pub fn new(bytes: Arc<Counters>, relayed: Arc<RelayedBytes>) -> Self {
        let peers = Gauge::default();
        let changes_in = Counter::default();
        let changes_out = Counter::default();
        let rejected = Counter::default();
        let sessions = Family::<Outcome, Counter>::default();
        // 1 ms … ~65 s.
        let session_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        let mut registry = Registry::with_prefix("convene");
        registry.register("peers", "Connected peers", peers.clone());
        registry.register(
            "changes_received",
            "Changes received from peers and stored",
            changes_in.clone(),
        );
        registry.register(
            "changes_sent",
            "Changes sent to peers and stored by them",
            changes_out.clone(),
        );
        registry.register(
            "changes_rejected",
            "Changes refused: bad signature, not allowed, not valid",
            rejected.clone(),
        );
        registry.register(
            "sync_sessions",
            "Sync sessions, by how they ended",
            sessions.clone(),
        );
        registry.register(
            "sync_session_duration_seconds",
            "How long sync sessions took, first request to last answer",
            session_seconds.clone(),
        );
        registry.register_collector(Box::new(WireBytes(bytes, relayed)));
        let files_held_bytes = Gauge::default();
        let files_fetching_bytes = Gauge::default();
        let files_received_bytes = Counter::default();
        let files_sent_bytes = Counter::default();
        let files_fetched = Counter::default();
        let files_violations = Counter::default();
        registry.register(
            "files_held_bytes",
            "Bytes of attachment content held",
            files_held_bytes.clone(),
        );
        registry.register(
            "files_fetching_bytes",
            "Bytes of attachments being fetched still to come",
            files_fetching_bytes.clone(),
        );
        registry.register(
            "files_received_bytes",
            "Attachment bytes received and verified",
            files_received_bytes.clone(),
        );
        registry.register(
            "files_sent_bytes",
            "Attachment bytes sent with their proofs",
            files_sent_bytes.clone(),
        );
        registry.register(
            "files_fetched",
            "Attachments fetched and checked",
            files_fetched.clone(),
        );
        registry.register(
            "files_violations",
            "File answers that failed verification (the sender is banned)",
            files_violations.clone(),
        );
        let holepunch_attempts = Counter::default();
        let holepunch_successes = Counter::default();
        let relay_reservations = Counter::default();
        let relay_circuits = Counter::default();
        registry.register(
            "holepunch_attempts",
            "Hole punches tried with members reached through a relay",
            holepunch_attempts.clone(),
        );
        registry.register(
            "holepunch_successes",
            "Hole punches that gave a direct connection",
            holepunch_successes.clone(),
        );
        registry.register(
            "relay_reservations",
            "Reservations this node's relay granted members",
            relay_reservations.clone(),
        );
        registry.register(
            "relay_circuits",
            "Circuits this node's relay opened between members",
            relay_circuits.clone(),
        );
        let closed_for_bound = Counter::default();
        registry.register(
            "peers_closed_for_bound",
            "Member connections closed past network.max_peers",
            closed_for_bound.clone(),
        );
        Self {
            closed_for_bound,
            holepunch_attempts,
            holepunch_successes,
            relay_reservations,
            relay_circuits,
            files_held_bytes,
            files_fetching_bytes,
            files_received_bytes,
            files_sent_bytes,
            files_fetched,
            files_violations,
            peers,
            changes_in,
            changes_out,
            rejected,
            sessions,
            session_seconds,
            registry,
        }
    }

    pub fn session_done(&self, took: Option<Duration>, ok: bool) {
        self.sessions
            .get_or_create(&Outcome {
                outcome: if ok { "complete" } else { "failed" },
            })
            .inc();
        if let Some(took) = took {
            self.session_seconds.observe(took.as_secs_f64());
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_bytes() {
        let bytes = Arc::new(Counters::default());
        bytes
            .sent
            .fetch_add(1234, std::sync::atomic::Ordering::Relaxed);
        let m = Metrics::new(bytes, Arc::default());
        m.peers.set(2);
        m.changes_in.inc_by(5);
        m.session_done(Some(Duration::from_millis(30)), true);
        let text = m.render();
        assert!(text.contains("convene_peers 2"), "{text}");
        assert!(text.contains("convene_changes_received_total 5"), "{text}");
        assert!(
            text.contains("convene_sync_sessions_total{outcome=\"complete\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("convene_sync_sent_bytes_total 1234"),
            "{text}"
        );
        assert!(text.contains("convene_sync_session_duration_seconds_count 1"));
        assert!(text.ends_with("# EOF\n"));
    }
}
