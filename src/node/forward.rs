//! The forward task: turns the network's events into node events, and hands every block
//! accepted from gossip to the store writer (with back-pressure: a full store queue slows the
//! validation tasks, never the network loop).

use tokio::sync::{broadcast, mpsc};

use crate::events::NodeEvent;
use crate::p2p::NetworkEvent;
use crate::store::writer::{BlockSource, StoreOp, StoreRequest};
use crate::store::{BlockRef, StoredBlock};

pub(super) async fn forward_network_events(
    mut net_events: mpsc::Receiver<NetworkEvent>,
    store_tx: mpsc::Sender<StoreOp>,
    events: broadcast::Sender<NodeEvent>,
) {
    while let Some(event) = net_events.recv().await {
        let node_event = match event {
            NetworkEvent::Listening(addr) => NodeEvent::Listening(addr),
            NetworkEvent::PeerConnected(p) => NodeEvent::PeerConnected(p),
            NetworkEvent::PeerDisconnected(p) => NodeEvent::PeerDisconnected(p),
            NetworkEvent::PeerBanned { peer, score, until } => {
                NodeEvent::PeerBanned { peer, score, until }
            }
            NetworkEvent::MessageValidated {
                from,
                verdict,
                reason,
            } => NodeEvent::Validated {
                from,
                verdict,
                reason,
            },
            NetworkEvent::BlockAccepted {
                block,
                from,
                accepted_at,
            } => {
                let block = *block;
                let id = BlockRef {
                    number: block.envelope.payload.block_number,
                    hash: block.envelope.payload.block_hash,
                };
                let _ = events.send(NodeEvent::Accepted {
                    id,
                    from,
                    at: accepted_at,
                });
                // The signed bytes go to the store as they are (a non-canonical form, counted
                // by the validation task, goes without them and is re-encoded there).
                let request = StoreRequest {
                    block: StoredBlock {
                        version: block.version,
                        envelope: block.envelope,
                        ssz: block.ssz,
                    },
                    source: BlockSource::Gossip(from),
                    at: accepted_at,
                };
                if store_tx
                    .send(StoreOp::Insert(Box::new(request)))
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
        };
        let _ = events.send(node_event);
    }
}
