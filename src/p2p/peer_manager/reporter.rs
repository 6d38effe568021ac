//! How the parts outside the event loop (the sync client, the req/resp server) report a peer's
//! outcome to the peer manager: a bounded channel into the event loop, never waited on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use libp2p::PeerId;
use tokio::sync::mpsc;

use crate::p2p::peers::app_score::PeerOutcome;

/// Reports waiting for the event loop. A report is a few dozen bytes; 1,024 of them is about a
/// second of the worst req/resp flood the server's limits let through (its refusals are the
/// most frequent reports) and far more than the sync client produces (one per request).
pub const REPORT_CHANNEL: usize = 1024;

/// A cloneable sender of peer reports.
#[derive(Debug, Clone)]
pub struct PeerReporter {
    tx: mpsc::Sender<(PeerId, PeerOutcome)>,
    dropped: Arc<AtomicU64>,
}

impl PeerReporter {
    /// A reporter and the receiving end for the event loop.
    pub fn channel() -> (Self, mpsc::Receiver<(PeerId, PeerOutcome)>) {
        let (tx, rx) = mpsc::channel(REPORT_CHANNEL);
        (
            Self {
                tx,
                dropped: Arc::default(),
            },
            rx,
        )
    }

    /// Reports `outcome` for `peer`. When the event loop is this far behind the report is
    /// dropped and counted: the reporter must never wait on the network loop.
    pub fn report(&self, peer: PeerId, outcome: PeerOutcome) {
        if self.tx.try_send((peer, outcome)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reports dropped so far because the channel was full (or the loop stopped).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
