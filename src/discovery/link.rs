//! The channels between the discovery task and the network event loop: small and bounded.
//!
//! ```text
//!  discovery service ──DialTarget (≤ LINK_CHANNEL)──► event loop: gate check, dial
//!          ▲                                              │
//!          └──NetworkReport (≤ LINK_CHANNEL, try_send)─────┘ dial outcome, identify's
//!                                                           observed address
//!  connected peers: one counter the loop writes and the service reads
//! ```
//! The loop never waits on discovery: reports go out with `try_send` and are dropped (and
//! counted by the service as timed-out dials) when the service lags.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use libp2p::PeerId;
use tokio::sync::mpsc;

use super::dial_queue::MAX_IN_FLIGHT;
use super::records::DialTarget;

/// Capacity of each direction: a few times the dials in flight, and room for identify reports.
pub const LINK_CHANNEL: usize = 32;
/// Discovery dials the loop tracks at most (the service runs [`MAX_IN_FLIGHT`]; the slack covers
/// a dial whose outcome is still on its way when the service times it out).
pub const MAX_TRACKED_DIALS: usize = 4 * MAX_IN_FLIGHT;

/// What the event loop tells discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkReport {
    /// A dial that discovery asked for ended (`ok`: connected, or already connected).
    Dialled {
        /// The peer.
        peer: PeerId,
        /// Connected.
        ok: bool,
    },
    /// identify: a peer saw us at this IP.
    Observed {
        /// The reporting peer.
        peer: PeerId,
        /// Our IP as it saw it.
        ip: IpAddr,
    },
}

/// The event loop's end.
#[derive(Debug)]
pub struct LoopLink {
    /// Records to dial.
    pub dials: mpsc::Receiver<DialTarget>,
    reports: mpsc::Sender<NetworkReport>,
    connected: Arc<AtomicUsize>,
    /// Discovery dials in progress, with their records (for the peer book once connected).
    pending: HashMap<PeerId, DialTarget>,
}

/// The discovery service's end.
#[derive(Debug)]
pub struct ServiceLink {
    /// Dial requests.
    pub dials: mpsc::Sender<DialTarget>,
    /// Outcomes and observations.
    pub reports: mpsc::Receiver<NetworkReport>,
    connected: Arc<AtomicUsize>,
}

/// A fresh pair.
pub fn link() -> (LoopLink, ServiceLink) {
    let (dials_tx, dials_rx) = mpsc::channel(LINK_CHANNEL);
    let (reports_tx, reports_rx) = mpsc::channel(LINK_CHANNEL);
    let connected = Arc::new(AtomicUsize::new(0));
    (
        LoopLink {
            dials: dials_rx,
            reports: reports_tx,
            connected: connected.clone(),
            pending: HashMap::new(),
        },
        ServiceLink {
            dials: dials_tx,
            reports: reports_rx,
            connected,
        },
    )
}

/// A pair when discovery runs, none without (`--p2p.no-discovery`).
pub fn link_if(enabled: bool) -> (Option<LoopLink>, Option<ServiceLink>) {
    match enabled {
        true => {
            let (a, b) = link();
            (Some(a), Some(b))
        }
        false => (None, None),
    }
}

impl LoopLink {
    /// Reports to the service without waiting (dropped if it lags).
    pub fn report(&self, report: NetworkReport) {
        let _ = self.reports.try_send(report);
    }

    /// Remembers a dial in progress; `false` (and nothing kept) when too many are tracked.
    pub fn track(&mut self, target: DialTarget) -> bool {
        if self.pending.len() >= MAX_TRACKED_DIALS && !self.pending.contains_key(&target.peer) {
            return false;
        }
        self.pending.insert(target.peer, target);
        true
    }

    /// The dial to `peer` ended: its record, if discovery asked for it.
    pub fn finish(&mut self, peer: &PeerId) -> Option<DialTarget> {
        self.pending.remove(peer)
    }

    /// The loop's count of connected peers.
    pub fn set_connected(&self, peers: usize) {
        self.connected.store(peers, Ordering::Relaxed);
    }
}

impl ServiceLink {
    /// Connected peers, as the loop last counted.
    pub fn connected(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }
}
