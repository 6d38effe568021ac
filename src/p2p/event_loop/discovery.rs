//! The event loop's end of discovery ([`crate::discovery::link`]): dials the records discovery
//! hands over (after the gate's check: banned or blocked peers, IPs and subnets are never
//! dialled), reports each dial's outcome and identify's view of our IP, keeps the connected-peer
//! count discovery dials toward, and files a connected peer's ENR and chain id in the book.
//! Nothing here waits: reports go out with `try_send`.

use libp2p::PeerId;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};

use super::EventLoop;
use crate::clock::unix_now;
use crate::discovery::link::{LoopLink, NetworkReport};
use crate::discovery::records::DialTarget;

/// The next record discovery wants dialled (never ready without discovery).
pub(super) async fn next_dial(link: &mut Option<LoopLink>) -> Option<DialTarget> {
    match link {
        Some(link) => link.dials.recv().await,
        None => std::future::pending().await,
    }
}

impl EventLoop {
    /// Dials a discovered record, or reports at once why not.
    pub(super) fn on_discovery_dial(&mut self, target: DialTarget) {
        let peer = target.peer;
        let connected = self.swarm.is_connected(&peer);
        let refused = self
            .manager()
            .refusal(Some(peer), Some(target.ip), unix_now())
            .is_some();
        let Some(link) = self.discovery.as_mut() else {
            return;
        };
        let failed = NetworkReport::Dialled { peer, ok: false };
        if connected {
            return link.report(NetworkReport::Dialled { peer, ok: true });
        }
        if refused {
            return link.report(failed);
        }
        let addr = target.addr.clone();
        if !link.track(target) {
            return link.report(failed);
        }
        let opts = DialOpts::peer_id(peer)
            .addresses(vec![addr])
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            tracing::debug!(%peer, error = %e, "cannot dial a discovered peer");
            link.finish(&peer);
            link.report(failed);
        }
    }

    /// A peer connected: update the count; a discovery dial succeeded.
    pub(super) fn discovery_on_connected(&mut self, peer: PeerId) {
        let peers = self.swarm.network_info().num_peers();
        let Some(link) = self.discovery.as_mut() else {
            return;
        };
        link.set_connected(peers);
        if let Some(target) = link.finish(&peer) {
            self.swarm
                .behaviour_mut()
                .gate
                .manager
                .book_mut()
                .on_discovered(&peer, target.enr, target.chain_id);
            link.report(NetworkReport::Dialled { peer, ok: true });
        }
    }

    /// A peer's last connection closed.
    pub(super) fn discovery_on_closed(&mut self) {
        let peers = self.swarm.network_info().num_peers();
        if let Some(link) = &self.discovery {
            link.set_connected(peers);
        }
    }

    /// A dial failed: a discovery dial is reported.
    pub(super) fn discovery_on_dial_failed(&mut self, peer: Option<PeerId>) {
        if let (Some(link), Some(peer)) = (self.discovery.as_mut(), peer)
            && link.finish(&peer).is_some()
        {
            link.report(NetworkReport::Dialled { peer, ok: false });
        }
    }

    /// identify: the address a peer sees us at (a vote for our ENR's IP).
    pub(super) fn discovery_on_identify(&mut self, peer: PeerId, info: &libp2p::identify::Info) {
        if let (Some(link), Some(ip)) = (
            &self.discovery,
            crate::p2p::gate::ip_of(&info.observed_addr),
        ) {
            link.report(NetworkReport::Observed { peer, ip });
        }
    }
}
