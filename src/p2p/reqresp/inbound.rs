//! Inbound payload_by_number streams, handed to the server without loss.
//!
//! libp2p-stream (0.5.0-alpha) passes each negotiated inbound stream through a channel with a
//! single slot and drops the stream when that slot is taken. The swarm's connection task reports
//! every stream it finished negotiating in one go, so a burst of requests can lose all but the
//! first of them however fast the accept loop is, and a dropped yamux stream is reset: the requester sees
//! "connection is closed" instead of an answer, and one peer's burst resets other peers' streams.
//! This behaviour accepts the protocols itself and queues the streams for the accept loop, which
//! only spawns a task per stream (the server answers code 3 beyond its own `max_streams`), so the
//! queue is only ever as long as one burst. Outbound streams still go through libp2p-stream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::{DeniedUpgrade, InboundUpgrade, UpgradeInfo};
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::handler::{ConnectionEvent, FullyNegotiatedInbound};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{PeerId, Stream, StreamProtocol};
use tokio::sync::mpsc;

/// Negotiated streams waiting for the accept loop, per protocol. A connection negotiates at most
/// 128 inbound streams at once (libp2p-swarm's default), so this absorbs a full burst from two
/// connections; only a server whose accept loop has stalled drops (resets) streams beyond it.
pub const INBOUND_QUEUE: usize = 256;

/// A negotiated inbound stream: the peer and the IP of the connection it came on.
pub struct InboundStream {
    /// The remote peer.
    pub peer: PeerId,
    /// The connection's remote IP (`None` for an address without one).
    pub ip: Option<IpAddr>,
    /// The stream.
    pub stream: Stream,
}

type Senders = HashMap<StreamProtocol, mpsc::Sender<InboundStream>>;

/// Registers the protocols to accept; cheap to clone (shared with every connection handler).
#[derive(Clone, Default)]
pub struct InboundStreams {
    senders: Arc<Mutex<Senders>>,
}

/// A protocol asked for twice: its streams already go to another receiver.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{protocol} is already accepted")]
pub struct AlreadyAccepted {
    /// The protocol.
    pub protocol: StreamProtocol,
}

impl InboundStreams {
    /// Starts accepting `protocol`: every negotiated stream arrives on the receiver. Dropping the
    /// receiver stops accepting. Fails if `protocol` is already accepted.
    pub fn accept(
        &self,
        protocol: StreamProtocol,
    ) -> Result<mpsc::Receiver<InboundStream>, AlreadyAccepted> {
        let mut senders = self.lock();
        senders.retain(|_, s| !s.is_closed());
        if senders.contains_key(&protocol) {
            return Err(AlreadyAccepted { protocol });
        }
        let (tx, rx) = mpsc::channel(INBOUND_QUEUE);
        senders.insert(protocol, tx);
        Ok(rx)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Senders> {
        self.senders.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn protocols(&self) -> Vec<StreamProtocol> {
        let mut senders = self.lock();
        senders.retain(|_, s| !s.is_closed());
        senders.keys().cloned().collect()
    }

    fn deliver(&self, peer: PeerId, ip: Option<IpAddr>, stream: Stream, protocol: &StreamProtocol) {
        // A stream that cannot be queued is dropped, which resets it.
        if let Some(sender) = self.lock().get(protocol)
            && let Err(e) = sender.try_send(InboundStream { peer, ip, stream })
        {
            tracing::warn!(%protocol, %peer, "inbound stream dropped: {e}");
        }
    }
}

/// The network behaviour: one [`Handler`] per connection, no events.
pub struct Behaviour {
    streams: InboundStreams,
}

impl Behaviour {
    /// Accepts what `streams` registers.
    pub fn new(streams: InboundStreams) -> Self {
        Self { streams }
    }

    fn handler(&self, peer: PeerId, remote: &Multiaddr) -> Handler {
        Handler {
            peer,
            ip: crate::p2p::gate::ip_of(remote),
            streams: self.streams.clone(),
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer, remote))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer, addr))
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

/// Per connection: offers the registered protocols and forwards what is negotiated.
pub struct Handler {
    peer: PeerId,
    ip: Option<IpAddr>,
    streams: InboundStreams,
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Infallible;
    type ToBehaviour = Infallible;
    type InboundProtocol = Upgrade;
    type OutboundProtocol = DeniedUpgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Upgrade> {
        SubstreamProtocol::new(Upgrade(self.streams.protocols()), ())
    }

    fn poll(
        &mut self,
        _: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<DeniedUpgrade, (), Infallible>> {
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, event: Infallible) {
        match event {}
    }

    fn on_connection_event(&mut self, event: ConnectionEvent<Upgrade, DeniedUpgrade>) {
        if let ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
            protocol: (stream, protocol),
            ..
        }) = event
        {
            self.streams.deliver(self.peer, self.ip, stream, &protocol);
        }
    }
}

/// Offers a list of protocols and yields the raw stream with the one negotiated.
pub struct Upgrade(Vec<StreamProtocol>);

impl UpgradeInfo for Upgrade {
    type Info = StreamProtocol;
    type InfoIter = std::vec::IntoIter<StreamProtocol>;

    fn protocol_info(&self) -> Self::InfoIter {
        self.0.clone().into_iter()
    }
}

impl InboundUpgrade<Stream> for Upgrade {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = Ready<Result<Self::Output, Infallible>>;

    fn upgrade_inbound(self, stream: Stream, protocol: StreamProtocol) -> Self::Future {
        ready(Ok((stream, protocol)))
    }
}
