//! How the parts outside the event loop (the sync client, the req/resp server) report a peer's
//! outcome to the peer manager: a bounded channel into the event loop, never waited on. A report
//! that finds the channel full is dropped, counted in `op_gossip_peer_reports_dropped_total`
//! and summarised in a WARN at most every [`DROP_LOG_INTERVAL`].

use std::time::Duration;

use libp2p::PeerId;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

use crate::log_limit::LogEvery;
use crate::p2p::peers::app_score::PeerOutcome;

/// At most one WARN about dropped reports per this interval (a flood of req/resp refusals can
/// drop thousands a second; the line carries how many).
pub const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);

static DROPS: LogEvery = LogEvery::new(DROP_LOG_INTERVAL);

/// Reports waiting for the event loop. A report is a few dozen bytes; 1,024 of them is about a
/// second of the worst req/resp flood the server's limits let through (its refusals are the
/// most frequent reports) and far more than the sync client produces (one per request).
pub const REPORT_CHANNEL: usize = 1024;

/// A cloneable sender of peer reports.
#[derive(Debug, Clone)]
pub struct PeerReporter {
    tx: mpsc::Sender<(PeerId, PeerOutcome)>,
    dropped: Counter,
}

impl PeerReporter {
    /// A reporter counting its drops in `dropped`, and the receiving end for the event loop.
    pub fn channel(dropped: Counter) -> (Self, mpsc::Receiver<(PeerId, PeerOutcome)>) {
        let (tx, rx) = mpsc::channel(REPORT_CHANNEL);
        (Self { tx, dropped }, rx)
    }

    /// Reports `outcome` for `peer`. When the event loop is this far behind the report is
    /// dropped and counted: the reporter must never wait on the network loop.
    pub fn report(&self, peer: PeerId, outcome: PeerOutcome) {
        if self.tx.try_send((peer, outcome)).is_err() {
            self.dropped.inc();
            if let Some(n) = DROPS.event() {
                tracing::warn!(
                    dropped = n,
                    capacity = REPORT_CHANNEL,
                    "peer reports dropped: the network loop is behind (scores miss these outcomes)"
                );
            }
        }
    }

    /// Reports dropped so far because the channel was full (or the loop stopped).
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_channel_drops_and_counts_instead_of_waiting() {
        let counter = Counter::default();
        let (reporter, mut rx) = PeerReporter::channel(counter.clone());
        let peer = PeerId::random();
        for _ in 0..REPORT_CHANNEL + 5 {
            reporter.report(peer, PeerOutcome::InvalidBlock);
        }
        assert_eq!(reporter.dropped(), 5);
        assert_eq!(counter.get(), 5, "the metric is the same count");
        assert!(rx.try_recv().is_ok(), "the first reports went through");
    }
}
