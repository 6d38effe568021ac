//! The event loop's answers to the admin RPC's commands (`opp2p_*`, spec §9): peer snapshots,
//! counts, connecting peers, and the operator's changes to bans and lists (handed to the peer
//! manager; the caller is answered once they are on disk). Nothing here waits.

use libp2p::PeerId;
use libp2p::swarm::dial_opts::DialOpts;

use super::{EventLoop, MAX_PENDING_CONNECTS};
use crate::clock::unix_now;
use crate::p2p::peer_manager::PeerAction;
use crate::p2p::views::{NetworkStats, PeerView, SelfView};
use crate::p2p::{Command, NetworkError, gossip, peer_id_of, reqresp};

/// Protocols of the swarm besides payload_by_number: gossipsub's (rust-libp2p's default
/// `meshsub` versions), identify and ping (their standard ids).
const BASE_PROTOCOLS: [&str; 5] = [
    "/meshsub/1.2.0",
    "/meshsub/1.1.0",
    "/meshsub/1.0.0",
    "/ipfs/id/1.0.0",
    "/ipfs/ping/1.0.0",
];

impl EventLoop {
    pub(super) fn on_admin_command(&mut self, command: Command) {
        match command {
            Command::Peers {
                connected_only,
                reply,
            } => {
                // gossipsub's total includes the application score as last pushed; push now so
                // the breakdown's parts add up (else a decayed penalty reads as a behaviour one).
                self.push_app_scores();
                let _ = reply.send(self.peer_views(connected_only));
            }
            Command::MeshPeers { reply } => {
                // Every subscribed topic is a block topic; a peer can be in several meshes.
                let mesh: std::collections::HashSet<PeerId> = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_mesh_peers()
                    .copied()
                    .collect();
                let _ = reply.send(mesh.into_iter().collect());
            }
            Command::SelfView { reply } => {
                let local = *self.swarm.local_peer_id();
                let mut protocols: Vec<String> =
                    BASE_PROTOCOLS.iter().map(|p| (*p).to_owned()).collect();
                protocols.extend(
                    reqresp::protocols(self.validator.chain().chain_id)
                        .into_iter()
                        .map(|p| p.to_string()),
                );
                let _ = reply.send(SelfView {
                    peer: local,
                    addresses: self.listen_addrs.clone(),
                    agent_version: self.agent_version.clone(),
                    protocol_version: super::IDENTIFY_PROTOCOL.to_owned(),
                    protocols,
                });
            }
            Command::Stats { reply } => {
                let mut stats = NetworkStats {
                    connected: self.swarm.connected_peers().count(),
                    known: self.manager().book().len(),
                    ..NetworkStats::default()
                };
                let subscribed = self.block_topics();
                for peer in self.swarm.connected_peers() {
                    let flags = subscribed.get(peer).copied().unwrap_or_default();
                    for (count, on) in stats.block_topics.iter_mut().zip(flags) {
                        *count += usize::from(on);
                    }
                }
                let _ = reply.send(stats);
            }
            Command::Connect { addr, reply } => {
                let Some(peer) = peer_id_of(&addr) else {
                    let _ = reply.send(Err(NetworkError::NoPeerId(addr)));
                    return;
                };
                if self.swarm.is_connected(&peer) {
                    let _ = reply.send(Ok(()));
                    return;
                }
                let waiting: usize = self.pending_connects.values().map(Vec::len).sum();
                if waiting >= MAX_PENDING_CONNECTS {
                    let _ = reply.send(Err(NetworkError::TooManyConnects));
                    return;
                }
                let opts = DialOpts::peer_id(peer).addresses(vec![addr]).build();
                match self.swarm.dial(opts) {
                    Ok(()) => self.pending_connects.entry(peer).or_default().push(reply),
                    Err(e) => {
                        let _ = reply.send(Err(NetworkError::Dial(std::sync::Arc::new(e))));
                    }
                }
            }
            Command::Operator { change, reply } => {
                let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                match self.manager_mut().operator(change, &connected, unix_now()) {
                    Ok(actions) => {
                        // The caller hears back once the change is on disk.
                        let mut writes = Vec::new();
                        let mut now = Vec::new();
                        for action in actions {
                            match action {
                                PeerAction::Persist(write) => writes.push(write),
                                other => now.push(other),
                            }
                        }
                        self.apply(now);
                        let Some(records) = &self.records else {
                            let _ = reply.send(Ok(()));
                            return;
                        };
                        let (done, on_disk) = tokio::sync::oneshot::channel();
                        match records.push(writes, Some(done)) {
                            Ok(()) => {
                                tokio::spawn(async move {
                                    let _ = on_disk.await;
                                    let _ = reply.send(Ok(()));
                                });
                            }
                            Err(full) => {
                                let _ = reply.send(Err(full.into()));
                            }
                        }
                    }
                    Err(full) => {
                        let _ = reply.send(Err(full.into()));
                    }
                }
            }
            Command::Counters { peer, reply } => {
                let _ = reply.send(self.manager().counters(&peer));
            }
            // The loop answers the others itself.
            Command::Publish { .. }
            | Command::Dial { .. }
            | Command::ListenAddrs { .. }
            | Command::ConnectedPeers { .. }
            | Command::PeerTopics { .. } => {}
        }
    }

    /// Answers the callers waiting on a dial to `peer`.
    pub(super) fn finish_connects(&mut self, peer: PeerId, result: Result<(), NetworkError>) {
        for reply in self.pending_connects.remove(&peer).unwrap_or_default() {
            let _ = reply.send(result.clone());
        }
    }

    /// Which of the chain's four block topics (V1..V4) each peer gossipsub knows subscribes to.
    fn block_topics(&self) -> std::collections::HashMap<PeerId, [bool; 4]> {
        let topics = gossip::topics(self.validator.chain());
        let mut subscribed: std::collections::HashMap<PeerId, [bool; 4]> =
            std::collections::HashMap::new();
        for (peer, peer_topics) in self.swarm.behaviour().gossipsub.all_peers() {
            let flags = subscribed.entry(*peer).or_default();
            for (flag, topic) in flags.iter_mut().zip(&topics) {
                *flag |= peer_topics.contains(&&topic.hash());
            }
        }
        subscribed
    }

    /// Every known peer (or only the connected ones).
    fn peer_views(&self, connected_only: bool) -> Vec<PeerView> {
        let subscribed = self.block_topics();
        let live: std::collections::HashMap<PeerId, _> = self.breakdowns().into_iter().collect();
        let manager = self.manager();
        manager
            .book()
            .iter()
            .filter(|(_, r)| !connected_only || r.is_connected())
            .map(|(peer, record)| PeerView {
                peer: *peer,
                record: record.clone(),
                protected: manager.is_protected(peer),
                block_topics: subscribed.get(peer).copied().unwrap_or_default(),
                score: live
                    .get(peer)
                    .copied()
                    .unwrap_or_else(|| self.last_known(peer)),
                disconnect_reason: record.shown_disconnect_reason(),
            })
            .collect()
    }
}
