//! Gossipsub configured as op-node configures it, for the chain's four block topics.
//!
//! Sits inside the event loop's behaviour. Reference: `shared/spec/op-p2p.md` §4.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use libp2p::gossipsub::{
    self, ConfigBuilder, IdentTopic, MessageAuthenticity, MessageId, ValidationMode,
    WhitelistSubscriptionFilter,
};

use super::metrics::{GossipEvent, GossipMetrics};
use super::peer_manager::metrics::PEER_SCORE_BUCKETS;
use super::recent_messages::RecentMessages;
use super::scoring::{self, ScoringLevel};
use crate::chain::ChainSpec;
use crate::metrics::{GOSSIPSUB_MAX_TOPICS, GOSSIPSUB_PREFIX, Metrics};
use crate::wire::MAX_GOSSIP_SIZE_BYTES;

/// op-node `DefaultMeshD`: mesh target size.
pub const DEFAULT_MESH_D: usize = 8;
/// op-node `DefaultMeshDlo`: below this the heartbeat grafts.
pub const DEFAULT_MESH_D_LO: usize = 6;
/// op-node `DefaultMeshDhi`: above this the heartbeat prunes.
pub const DEFAULT_MESH_D_HI: usize = 12;
/// op-node `DefaultMeshDlazy`: peers gossiped to (IHAVE) per heartbeat.
pub const DEFAULT_MESH_D_LAZY: usize = 6;
/// op-node `gossipHeartbeat`.
pub const HEARTBEAT: Duration = Duration::from_millis(500);
/// op-node fanout TTL.
pub const FANOUT_TTL: Duration = Duration::from_secs(24);
/// op-node `HistoryLength`: heartbeats of full messages kept for IWANT.
pub const HISTORY_LENGTH: usize = 12;
/// op-node `HistoryGossip`: heartbeats of message ids gossiped in IHAVE.
pub const HISTORY_GOSSIP: usize = 3;
/// op-node `seenMessagesTTL` = 130 heartbeats.
pub const SEEN_MESSAGES_TTL: Duration = Duration::from_secs(65);

/// Mesh parameters (op-node's `--p2p.gossip.mesh.*` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GossipConfig {
    /// Target mesh degree.
    pub mesh_d: usize,
    /// Low watermark.
    pub mesh_d_lo: usize,
    /// High watermark.
    pub mesh_d_hi: usize,
    /// Lazy gossip degree.
    pub mesh_d_lazy: usize,
    /// Publish to every peer on the topic instead of the mesh (op-node default: off).
    pub flood_publish: bool,
    /// Messages waiting for or in validation ([`super::VALIDATION_QUEUE`]).
    pub validation_queue: usize,
    /// Validations running at once ([`super::VALIDATION_CONCURRENCY`]).
    pub validation_concurrency: usize,
}

impl Default for GossipConfig {
    fn default() -> Self {
        Self {
            mesh_d: DEFAULT_MESH_D,
            mesh_d_lo: DEFAULT_MESH_D_LO,
            mesh_d_hi: DEFAULT_MESH_D_HI,
            mesh_d_lazy: DEFAULT_MESH_D_LAZY,
            flood_publish: false,
            validation_queue: super::VALIDATION_QUEUE,
            validation_concurrency: super::VALIDATION_CONCURRENCY,
        }
    }
}

/// Messages of one received RPC that gossipsub processes (rust-libp2p's default: 5,000); the rest
/// are dropped. Every message costs its op-node message id on the network loop (a decompression
/// and a SHA-256 over up to 10 MiB, about 30 ms for the largest) before anything can tell it is
/// junk, and one RPC is handled in one go: 500 such messages in one RPC stalled the loop for
/// over a second. Honest peers send a block or two per RPC (a gossip message as it is
/// published, or the few an IWANT asked for); 16 bounds the stall to about 0.5 s in the worst
/// case, and a block dropped here is still fetched by gap filling.
pub const MAX_MESSAGES_PER_RPC: usize = 16;

/// The gossipsub behaviour type we run: only the chain's block topics are tracked.
pub type Gossipsub =
    gossipsub::Behaviour<gossipsub::IdentityTransform, WhitelistSubscriptionFilter>;

/// Builds gossipsub: anonymous messages only (author, seqno or signature → rejected by gossipsub
/// itself), op-node's message id (computed once per message through `recent`, which keeps the
/// decompressed body for the validator), validation by the application, PX off, a 10 MiB cap, and
/// op-node's peer scoring at `scoring`. Its own metrics (mesh, GRAFT/PRUNE reasons, queues, by
/// topic) go into `metrics`' registry, and each topic joined counts as a JOIN event in its gossip
/// metrics (`None`: no metrics, for the devnet's adversary and a node whose metrics are not
/// served).
pub fn build(
    chain: &ChainSpec,
    config: &GossipConfig,
    scoring: ScoringLevel,
    metrics: Option<(&Metrics, &GossipMetrics)>,
    recent: Arc<RecentMessages>,
) -> Result<Gossipsub, BuildError> {
    let gossip_config = ConfigBuilder::default()
        .validation_mode(ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(move |m: &gossipsub::Message| {
            MessageId::from(recent.message_id(m.topic.as_str(), &m.data).to_vec())
        })
        .max_transmit_size(MAX_GOSSIP_SIZE_BYTES)
        .max_publish_messages(MAX_MESSAGES_PER_RPC)
        .heartbeat_interval(HEARTBEAT)
        .mesh_n(config.mesh_d)
        .mesh_n_low(config.mesh_d_lo)
        .mesh_n_high(config.mesh_d_hi)
        .gossip_lazy(config.mesh_d_lazy)
        .mesh_outbound_min(config.mesh_d_lo.min(config.mesh_d / 2).min(2))
        .fanout_ttl(FANOUT_TTL)
        .history_length(HISTORY_LENGTH)
        .history_gossip(HISTORY_GOSSIP)
        .duplicate_cache_time(SEEN_MESSAGES_TTL)
        .flood_publish(config.flood_publish)
        .build()?;
    let allowed: HashSet<_> = topics(chain).iter().map(|t| t.hash()).collect();
    let behaviour = Gossipsub::new_with_subscription_filter(
        MessageAuthenticity::Anonymous,
        gossip_config,
        WhitelistSubscriptionFilter(allowed),
    )
    .map_err(BuildError::Behaviour)?;
    let metrics_config = gossipsub::MetricsConfig {
        max_topics: GOSSIPSUB_MAX_TOPICS,
        // Topics we never subscribe to are filtered out before any metric would see them.
        max_never_subscribed_topics: 0,
        // The same buckets as `peer_scores`, so both histograms read alike.
        score_buckets: PEER_SCORE_BUCKETS.to_vec(),
    };
    let mut behaviour = match metrics {
        Some((metrics, _)) => metrics.register_under(GOSSIPSUB_PREFIX, |registry| {
            behaviour.with_metrics(registry, metrics_config)
        }),
        None => behaviour,
    };
    if scoring == ScoringLevel::Light {
        behaviour
            .with_peer_score(
                scoring::light_params(chain.block_time),
                scoring::thresholds(),
            )
            .map_err(BuildError::PeerScore)?;
    }
    for topic in topics(chain) {
        behaviour
            .subscribe(&topic)
            .map_err(|error| BuildError::Subscribe {
                topic: topic.to_string(),
                error,
            })?;
        if let Some((_, gossip)) = metrics {
            gossip.gossip_event(GossipEvent::Join);
        }
    }
    Ok(behaviour)
}

/// Why gossipsub could not be built (a bad configuration; nothing a peer can cause).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// libp2p refused the configuration (mesh degrees out of order, history too short).
    #[error("gossipsub config: {0}")]
    Config(#[from] gossipsub::ConfigBuilderError),
    /// libp2p refused to build the behaviour with that configuration (its reason).
    #[error("gossipsub: {0}")]
    Behaviour(&'static str),
    /// libp2p refused the peer-scoring parameters (its reason).
    #[error("gossipsub peer scoring: {0}")]
    PeerScore(String),
    /// A block topic could not be joined.
    #[error("subscribe {topic}: {error}")]
    Subscribe {
        /// The topic.
        topic: String,
        /// libp2p's error.
        #[source]
        error: gossipsub::SubscriptionError,
    },
}

/// The chain's four block topics, V1 first.
pub fn topics(chain: &ChainSpec) -> Vec<IdentTopic> {
    chain.topics().iter().map(IdentTopic::new).collect()
}
