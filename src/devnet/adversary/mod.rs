//! A hostile node, for devnet scenarios and tests: it joins the honest network like any peer and
//! then misbehaves at a steady rate until stopped.
//!
//! Where it sits: outside every honest node. `op-gossip devnet --adversary <kind>` runs it inside
//! the orchestrator process, next to the node processes it attacks; tests can spawn it next to an
//! in-process [`crate::node::RunningNode`]. It owns its own swarm (`swarm.rs`: the honest
//! transport stack and gossipsub, so it joins the block topics' meshes), driven by one task
//! (`runner.rs`); this module holds its settings, [`spawn`] and the handle.
//!
//! ```text
//!  spawn ──► dial every target ──► wait until each has it on the block topic (≤ JOIN_TIMEOUT)
//!        ──► every 1/rate s: forge one message (forge.rs) and publish it to all targets,
//!            or (spam-reqresp) one request to each target (spam.rs), ≤ MAX_INFLIGHT open each
//!        ──► re-dial targets that dropped it every REDIAL_INTERVAL (a ban makes them refuse)
//!  counters (stats.rs, atomics) ──► AdversaryHandle::counters, live
//! ```
//!
//! Honest blocks received over gossip are IGNOREd (never forwarded) and remembered: the
//! equivocator copies them, the spammer asks for their numbers.

pub mod forge;
mod kind;
mod runner;
pub mod spam;
mod stats;
mod swarm;
pub use kind::AdversaryKind;

use std::sync::Arc;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use stats::{AdversaryCounters, Answers, TargetCounters};

use crate::chain::ChainSpec;
use crate::wire::signature::BlockSigner;
use runner::{Runner, Target};
use stats::{AdversaryStats, TargetStats};

/// Messages (or requests per target) per second by default: 5× op-node's per-peer server rate
/// (4/s) and 40× a 2 s chain's block rate, plainly hostile, yet light enough to run beside a
/// handful of debug-build nodes on two cores.
pub const DEFAULT_RATE: u32 = 20;
/// Highest accepted rate (a tick per millisecond).
pub const MAX_RATE: u32 = 1000;
/// How long the adversary waits for every target to have it on the block topic before it starts
/// with those that do. Subscriptions travel right after the connection (a few ms on 127.0.0.1).
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often targets that dropped the adversary are dialled again: often enough to show a gate
/// refusing a banned peer several times within a short devnet run, rarely enough not to load the
/// honest accept path.
pub const REDIAL_INTERVAL: Duration = Duration::from_secs(2);
/// Requests open to one target at most (`spam-reqresp`); beyond it a tick skips the target. Twice
/// the server's 64 concurrent streams, so the spammer can fill a server that does not bound each
/// peer, while its own memory stays bounded.
pub const MAX_INFLIGHT: usize = 128;
/// `equivocate` copies only an honest block the adversary received at least this long ago, so the
/// honest block has reached every node before its height fills with equivocations (on 127.0.0.1
/// a block spreads in tens of ms); otherwise an honest block could arrive as some node's 7th
/// block at its height and be REJECTed there.
pub const EQUIVOCATION_DELAY: Duration = Duration::from_secs(1);
/// Equivocations sent at one height before moving to a newer one. Honest nodes accept the first 5
/// (the honest block is the 6th) and may get them from each other before our copies arrive; the
/// 6th and later are REJECTed everywhere, so only we deliver them, and 7 of those (12 in all)
/// put us over the honest per-height limit at every target. 16 leaves a margin.
pub const EQUIVOCATIONS_PER_HEIGHT: u32 = 16;

/// What to run.
#[derive(Clone)]
pub struct AdversaryConfig {
    /// The misbehaviour.
    pub kind: AdversaryKind,
    /// The chain of the honest nodes.
    pub chain: Arc<ChainSpec>,
    /// Nodes to attack, each `/ip4/…/tcp/…/p2p/<id>`.
    pub targets: Vec<Multiaddr>,
    /// Gossip messages per second, or requests per second to each target (`spam-reqresp`);
    /// clamped to 1..=[`MAX_RATE`].
    pub rate: u32,
    /// The sequencer key, needed by `invalid-block` and `equivocate` (on a devnet it is public:
    /// [`crate::devnet::DEVNET_SEQUENCER_KEY`]).
    pub sequencer_key: Option<BlockSigner>,
    /// The adversary's libp2p identity.
    pub keypair: libp2p::identity::Keypair,
}

/// Why the adversary could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdversaryError {
    /// `invalid-block` and `equivocate` sign with the sequencer key, and none was given.
    #[error("adversary: {0} needs the sequencer key")]
    NeedsSequencerKey(AdversaryKind),
    /// A target address it could not check the peer of.
    #[error("adversary: target {0} has no /p2p/<peer id>")]
    TargetWithoutPeerId(Multiaddr),
    /// Its transport (noise) could not be built.
    #[error("adversary setup: {0}")]
    Transport(#[source] libp2p::noise::Error),
    /// Its behaviour (gossipsub) could not be built.
    #[error("adversary setup: {0}")]
    Behaviour(#[source] libp2p::BehaviourBuilderError),
    /// The key it signs `invalid-sig` blocks with could not be made.
    #[error("adversary setup: {0}")]
    Stranger(#[source] forge::ForgeError),
}

/// A running adversary.
pub struct AdversaryHandle {
    peer_id: PeerId,
    kind: AdversaryKind,
    stats: Arc<AdversaryStats>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl AdversaryHandle {
    /// Its peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Its kind.
    pub fn kind(&self) -> AdversaryKind {
        self.kind
    }

    /// Whether it has joined its targets' topic and started misbehaving.
    pub fn joined(&self) -> bool {
        self.stats.has_joined()
    }

    /// Its counters now.
    pub fn counters(&self) -> AdversaryCounters {
        self.stats.snapshot()
    }

    /// Stops it (waiting at most a few seconds) and returns its final counters.
    pub async fn stop(self) -> AdversaryCounters {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        self.stats.snapshot()
    }
}

/// Spawns an adversary on the current runtime; it runs until `shutdown` is cancelled or
/// [`AdversaryHandle::stop`].
pub fn spawn(
    config: AdversaryConfig,
    shutdown: &CancellationToken,
) -> Result<AdversaryHandle, AdversaryError> {
    if config.kind.needs_sequencer_key() && config.sequencer_key.is_none() {
        return Err(AdversaryError::NeedsSequencerKey(config.kind));
    }
    let mut targets = Vec::new();
    let mut target_stats = Vec::new();
    for addr in &config.targets {
        let peer = crate::p2p::peer_id_of(addr)
            .ok_or_else(|| AdversaryError::TargetWithoutPeerId(addr.clone()))?;
        targets.push(Target::new(addr.clone(), peer));
        target_stats.push(TargetStats::new(peer.to_string()));
    }
    let stats = Arc::new(AdversaryStats::new(target_stats));
    let swarm = swarm::build(&config)?;
    let peer_id = *swarm.local_peer_id();
    let stop = shutdown.child_token();
    let runner = Runner::new(&config, swarm, targets, stats.clone(), stop.clone())?;
    let task = tokio::spawn(runner.run());
    Ok(AdversaryHandle {
        peer_id,
        kind: config.kind,
        stats,
        stop,
        task,
    })
}
