//! The connection gate: the first behaviour of the swarm, so a banned peer is refused before any
//! protocol runs (op-node's expiry connection gater, spec §7.3): outbound dials to a banned peer
//! are not made, inbound connections from one are closed once its id is known (after the noise
//! handshake). Counts what it allowed and refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

use super::peers::bans::BanList;
use crate::clock::unix_now;

/// Why a connection was refused.
#[derive(Debug, thiserror::Error)]
#[error("peer {peer} is banned until {until} (unix seconds)")]
pub struct Banned {
    /// The peer.
    pub peer: PeerId,
    /// Ban expiry.
    pub until: u64,
}

/// Gate counters.
#[derive(Debug, Default)]
pub struct GateStats {
    /// Inbound connections allowed.
    pub accepts_allowed: AtomicU64,
    /// Inbound connections refused.
    pub accepts_refused: AtomicU64,
    /// Outbound dials allowed.
    pub dials_allowed: AtomicU64,
    /// Outbound dials refused.
    pub dials_refused: AtomicU64,
}

/// The gate behaviour.
pub struct Gate {
    bans: Arc<BanList>,
    stats: Arc<GateStats>,
}

impl Gate {
    /// A gate over `bans`.
    pub fn new(bans: Arc<BanList>, stats: Arc<GateStats>) -> Self {
        Self { bans, stats }
    }

    /// Refuses a banned peer, counting the refusal and (when `allowed` is given) the admission.
    fn check(
        &self,
        peer: PeerId,
        allowed: Option<&AtomicU64>,
        refused: &AtomicU64,
    ) -> Result<(), ConnectionDenied> {
        match self.bans.banned_until(&peer, unix_now()) {
            Some(until) => {
                refused.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, "connection refused: banned");
                Err(ConnectionDenied::new(Banned { peer, until }))
            }
            None => {
                if let Some(allowed) = allowed {
                    allowed.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
        }
    }
}

impl NetworkBehaviour for Gate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = std::convert::Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let stats = &self.stats;
        self.check(peer, Some(&stats.accepts_allowed), &stats.accepts_refused)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        if let Some(peer) = peer {
            let stats = &self.stats;
            self.check(peer, Some(&stats.dials_allowed), &stats.dials_refused)?;
        }
        Ok(Vec::new())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        // A dial by address only learns the peer id here; its admission was counted when the
        // dial started.
        self.check(peer, None, &self.stats.dials_refused)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}
