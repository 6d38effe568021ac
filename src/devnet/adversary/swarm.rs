//! The adversary's swarm: the honest transport stack (TCP + noise + yamux, identify, ping),
//! gossipsub built like an honest node's by [`crate::p2p::gossip::build`] (scoring off, flood
//! publishing on so every target gets every message straight from it), and raw streams for
//! payload_by_number. Built once by [`super::spawn`], driven by [`super::runner`].

use libp2p::swarm::NetworkBehaviour;
use libp2p::{Swarm, identify, noise, ping, tcp, yamux};

use super::{AdversaryConfig, AdversaryError};
use crate::p2p::gossip::{self, GossipConfig, Gossipsub};
use crate::p2p::scoring::ScoringLevel;

/// What the adversary's peers see of it.
#[derive(NetworkBehaviour)]
pub(super) struct Behaviour {
    pub(super) gossipsub: Gossipsub,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    pub(super) stream: libp2p_stream::Behaviour,
}

/// The adversary's swarm for `config`'s identity and chain.
pub(super) fn build(config: &AdversaryConfig) -> Result<Swarm<Behaviour>, AdversaryError> {
    let gossip_config = GossipConfig {
        flood_publish: true,
        ..GossipConfig::default()
    };
    let chain = config.chain.clone();
    let swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(AdversaryError::Transport)?
        .with_behaviour(|key| {
            Ok(Behaviour {
                gossipsub: gossip::build(
                    &chain,
                    &gossip_config,
                    ScoringLevel::None,
                    None,
                    Default::default(),
                )?,
                identify: identify::Behaviour::new(
                    identify::Config::new("/opstack/identify/1".into(), key.public())
                        .with_agent_version("op-gossip-adversary".into()),
                ),
                ping: ping::Behaviour::new(ping::Config::new()),
                stream: libp2p_stream::Behaviour::new(),
            })
        })
        .map_err(AdversaryError::Behaviour)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(crate::p2p::IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}
