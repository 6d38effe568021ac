//! A payload_by_number peer that misbehaves on purpose: a bare libp2p swarm (TCP, noise, yamux,
//! raw streams) answering every request in one chosen way from a real node's store.

use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm};
use op_gossip::store::Store;
use op_gossip::wire::reqresp::{
    ResultCode, encode_error, encode_success, protocol_id, protocol_id_spec_form,
    response_version_for,
};
use op_gossip::wire::snappy::compress_framed;
use op_gossip::wire::ssz::encode_envelope;

/// How the peer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// The block asked for, correctly (under the spec's protocol id only).
    HonestSpecFormOnly,
    /// A real block, but of another number.
    WrongNumber,
    /// The block with a field changed and the claimed hash kept.
    WrongHash,
    /// A correct body under response version 7.
    BadVersion,
    /// A framed snappy body that decompresses beyond 10 MiB.
    Oversize,
    /// The correct response cut in half.
    Truncated,
    /// Reads the request and never answers.
    Silent,
    /// Does not speak payload_by_number at all.
    NoProtocol,
    /// Answers code 3, as op-node's server does when it rate limits the requester.
    RateLimited,
}

pub struct FakeServer {
    pub peer_id: PeerId,
    pub addr: Multiaddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    /// Starts a peer on 127.0.0.1 that answers from `store` as `behaviour` says.
    pub async fn start(key: u8, chain_id: u64, store: Arc<Store>, behaviour: Behaviour) -> Self {
        let mut swarm: Swarm<libp2p_stream::Behaviour> =
            libp2p::SwarmBuilder::with_existing_identity(super::net::node_key(key))
                .with_tokio()
                .with_tcp(
                    libp2p::tcp::Config::default(),
                    libp2p::noise::Config::new,
                    libp2p::yamux::Config::default,
                )
                .unwrap()
                .with_behaviour(|_| libp2p_stream::Behaviour::new())
                .unwrap()
                .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
                .build();
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
        let addr = loop {
            if let libp2p::swarm::SwarmEvent::NewListenAddr { address, .. } =
                swarm.select_next_some().await
            {
                break address;
            }
        };
        let peer_id = *swarm.local_peer_id();
        let mut control = swarm.behaviour().new_control();
        let protocols: Vec<String> = match behaviour {
            Behaviour::NoProtocol => vec![],
            Behaviour::HonestSpecFormOnly => vec![protocol_id_spec_form(chain_id)],
            _ => vec![protocol_id(chain_id), protocol_id_spec_form(chain_id)],
        };
        let mut incoming = Vec::new();
        for p in protocols {
            incoming.push(
                control
                    .accept(StreamProtocol::try_from_owned(p).unwrap())
                    .unwrap(),
            );
        }
        let task = tokio::spawn(async move {
            let mut streams = futures::stream::select_all(incoming);
            loop {
                tokio::select! {
                    _ = swarm.select_next_some() => {}
                    Some((_, stream)) = streams.next() => {
                        tokio::spawn(answer(stream, store.clone(), behaviour));
                    }
                }
            }
        });
        Self {
            peer_id,
            addr: addr.with(libp2p::multiaddr::Protocol::P2p(peer_id)),
            task,
        }
    }
}

async fn answer(mut stream: libp2p::Stream, store: Arc<Store>, behaviour: Behaviour) {
    let mut request = [0u8; 8];
    if stream.read_exact(&mut request).await.is_err() {
        return;
    }
    let number = u64::from_le_bytes(request);
    let serve = match behaviour {
        Behaviour::WrongNumber => number.saturating_sub(1).max(1),
        _ => number,
    };
    let block = match behaviour {
        Behaviour::RateLimited => None,
        _ => store.canonical_block(serve).unwrap(),
    };
    let response = match block {
        None if behaviour == Behaviour::RateLimited => encode_error(ResultCode::Unknown).to_vec(),
        None => encode_error(ResultCode::NotFound).to_vec(),
        Some(mut block) => {
            if behaviour == Behaviour::WrongHash {
                block.envelope.payload.gas_used += 1;
            }
            let version = response_version_for(block.version);
            let body = encode_envelope(block.version, &block.envelope).unwrap();
            match behaviour {
                Behaviour::BadVersion => encode_success(7, &body),
                Behaviour::Oversize => {
                    let mut out = vec![0u8];
                    out.extend_from_slice(&version.to_le_bytes());
                    out.extend_from_slice(&compress_framed(&vec![0u8; (10 << 20) + 1]));
                    out
                }
                Behaviour::Truncated => {
                    let full = encode_success(version, &body);
                    full[..full.len() / 2].to_vec()
                }
                _ => encode_success(version, &body),
            }
        }
    };
    if behaviour == Behaviour::Silent {
        // Silence is the behaviour under test: hold the stream unanswered past any read deadline.
        tokio::time::sleep(Duration::from_secs(120)).await;
        return;
    }
    let _ = stream.write_all(&response).await;
    let _ = stream.close().await;
}
