//! The orchestrator's side of `op-gossip devnet --adversary <kind>`: starts an
//! [`super::adversary`] inside the orchestrator process against every node running at that
//! moment (the sequencer and the followers; a `--late-joiner` starts later and is not a target),
//! follows what each honest node says about it over the control channel (`accepted`/`judged`
//! events with its peer id as `from`, `banned` events, the server counters in the `exit` line),
//! and turns that into the report's `adversary` section.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::adversary::{
    self, AdversaryConfig, AdversaryCounters, AdversaryHandle, AdversaryKind, TargetCounters,
};
use super::processes::node_key_hex;
use super::report::NodeStats;
use super::{DEVNET_SEQUENCER_KEY, DEVNET_SIGNER, DevnetError, devnet_rollup_json};
use crate::chain::ChainSpec;
use crate::wire::signature::BlockSigner;

/// `--adversary` and `--adversary-rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdversaryPlan {
    /// The misbehaviour.
    pub kind: AdversaryKind,
    /// Messages per second (requests per second to each target for `spam-reqresp`).
    pub rate: u32,
}

/// Index used for the adversary's deterministic node key: past any devnet node (≤ 200).
const ADVERSARY_KEY_INDEX: usize = 1000;
/// How long the orchestrator waits for the adversary to join before producing anyway: its own
/// join timeout plus margin.
pub const JOIN_WAIT: Duration = Duration::from_secs(15);

/// What one honest node said about the adversary.
#[derive(Debug, Clone, Default)]
pub struct Watched {
    /// The adversary's peer id (empty until it starts).
    pub peer: String,
    /// Messages from it this node validated, by verdict.
    pub accepted: u64,
    /// See `accepted`.
    pub rejected: u64,
    /// See `accepted`.
    pub ignored: u64,
    /// Unix ms of its first message here.
    pub first_at_ms: Option<u64>,
    /// Unix ms of the ban.
    pub banned_at_ms: Option<u64>,
    /// Messages from it validated here before the ban.
    pub seen_before_ban: Option<u64>,
    /// Peers other than the adversary this node banned.
    pub other_bans: u64,
    /// Messages from it validated here, per [`MESSAGE_BIN_MS`] bin (key: the bin's start, unix
    /// ms): the HTML report's timeline. One entry per bin with messages, so bounded by the run's
    /// length, not by the adversary's rate.
    pub message_bins: std::collections::BTreeMap<u64, u64>,
}

/// Width of the bins in [`Watched::message_bins`]: fine enough to show the ban's moment on a
/// timeline of seconds.
pub const MESSAGE_BIN_MS: u64 = 100;

impl Watched {
    /// Messages from the adversary this node validated.
    pub fn seen(&self) -> u64 {
        self.accepted + self.rejected + self.ignored
    }

    /// A gossip message from `from` was validated at `at_ms` with `verdict`.
    pub fn on_message(&mut self, from: &str, verdict: &str, at_ms: u64) {
        if self.peer.is_empty() || from != self.peer {
            return;
        }
        self.first_at_ms.get_or_insert(at_ms);
        *self
            .message_bins
            .entry(at_ms - at_ms % MESSAGE_BIN_MS)
            .or_default() += 1;
        match verdict {
            "accept" => self.accepted += 1,
            "reject" => self.rejected += 1,
            _ => self.ignored += 1,
        }
    }

    /// This node banned `peer` at `at_ms`.
    pub fn on_ban(&mut self, peer: &str, at_ms: u64) {
        if !self.peer.is_empty() && peer == self.peer {
            if self.banned_at_ms.is_none() {
                self.banned_at_ms = Some(at_ms);
                self.seen_before_ban = Some(self.seen());
            }
        } else {
            self.other_bans += 1;
        }
    }
}

/// Starts the adversary against `targets` (indices into `stats`) and marks its peer id in every
/// node's stats.
pub fn start(
    plan: AdversaryPlan,
    genesis_time: u64,
    stats: &mut [NodeStats],
    targets: &[usize],
    shutdown: &CancellationToken,
) -> Result<AdversaryHandle, DevnetError> {
    let chain = devnet_chain(genesis_time)?;
    let keypair =
        crate::p2p::keys::keypair_from_hex(&node_key_hex(ADVERSARY_KEY_INDEX), "adversary")
            .map_err(|e| DevnetError::Setup(e.into()))?;
    let mut addrs = Vec::new();
    for &i in targets {
        let addr = stats
            .get(i)
            .and_then(|s| s.listening.as_deref())
            .ok_or_else(|| DevnetError::Run(format!("adversary: node {i} has no address")))?;
        addrs.push(addr.parse().map_err(|source| DevnetError::Address {
            addr: addr.to_owned(),
            source,
        })?);
    }
    let handle = adversary::spawn(
        AdversaryConfig {
            kind: plan.kind,
            chain: Arc::new(chain),
            targets: addrs,
            rate: plan.rate,
            sequencer_key: Some(
                BlockSigner::from_hex(DEVNET_SEQUENCER_KEY)
                    .map_err(|e| DevnetError::Setup(e.into()))?,
            ),
            keypair,
        },
        shutdown,
    )?;
    let peer = handle.peer_id().to_string();
    for s in stats.iter_mut() {
        s.adversary.peer = peer.clone();
    }
    Ok(handle)
}

/// The devnet chain as the nodes load it from the rollup.json, with the devnet signer.
fn devnet_chain(genesis_time: u64) -> Result<ChainSpec, DevnetError> {
    let json = devnet_rollup_json(genesis_time).to_string();
    let spec = crate::chain_config::parse_rollup_json(&json, "devnet", "devnet rollup.json")
        .map_err(|e| DevnetError::Setup(e.into()))?;
    let signer = DEVNET_SIGNER
        .parse::<alloy_primitives::Address>()
        .map_err(|e| DevnetError::Setup(e.into()))?;
    Ok(crate::chain_config::with_signer_override(
        spec,
        Some(signer),
    ))
}

/// Whether collection may end as far as the adversary is concerned: a kind that must be banned
/// has been banned by every target.
pub fn settled(kind: AdversaryKind, stats: &[NodeStats], targets: &[usize]) -> bool {
    !kind.should_be_banned()
        || targets.iter().all(|&i| {
            stats
                .get(i)
                .is_some_and(|s| s.adversary.banned_at_ms.is_some())
        })
}

/// Whether the orchestrator can stop waiting for the adversary to join (it did, or [`JOIN_WAIT`]
/// passed since `since`).
pub fn joined_or_late(handle: &AdversaryHandle, since: Instant) -> bool {
    handle.joined() || since.elapsed() >= JOIN_WAIT
}

/// The report's `adversary` section.
#[derive(Debug, Clone, Serialize)]
pub struct AdversaryReport {
    /// `--adversary`.
    pub kind: &'static str,
    /// Its peer id.
    pub peer_id: String,
    /// `--adversary-rate`.
    pub rate_per_sec: u32,
    /// Whether op-node's rules should ban it (every kind but `spam-reqresp`).
    pub should_be_banned: bool,
    /// Nodes it was pointed at.
    pub targets: usize,
    /// Nodes it reached: validated one of its messages (gossip kinds), or got one of its
    /// requests (`spam-reqresp`).
    pub reached: usize,
    /// Nodes that banned it.
    pub banned_by: usize,
    /// Gossip kinds: every node it reached banned it. `spam-reqresp`: every node it reached
    /// answered it code 3 and counted rate-limited requests.
    pub contained: bool,
    /// Bans of other (honest) peers by any node during the run: must be 0.
    pub honest_peers_banned: u64,
    /// What the adversary counted.
    pub counters: AdversaryCounters,
    /// Per honest node, sequencer first.
    pub per_node: Vec<AdversaryNodeReport>,
}

/// One honest node facing the adversary.
#[derive(Debug, Clone, Serialize)]
pub struct AdversaryNodeReport {
    /// Node index.
    pub node: usize,
    /// The adversary was pointed at it.
    pub targeted: bool,
    /// Messages from the adversary this node validated.
    pub seen: u64,
    /// Of those: accepted (valid equivocations before the height filled), rejected, ignored.
    pub accepted: u64,
    /// See `accepted`.
    pub rejected: u64,
    /// See `accepted`.
    pub ignored: u64,
    /// This node banned it.
    pub banned: bool,
    /// From its first message here to the ban (ms).
    pub banned_after_ms: Option<u64>,
    /// Messages validated here before the ban.
    pub seen_before_ban: Option<u64>,
    /// `spam-reqresp`: requests the adversary sent here, and how they were answered.
    pub requests: Option<TargetCounters>,
    /// `spam-reqresp`: this node's server counted this many requests refused by its rate limits
    /// (from any peer).
    pub server_rate_limited: Option<u64>,
    /// `spam-reqresp`: payloads this node's server sent (to any peer).
    pub server_served: Option<u64>,
}

/// Builds the section from the collected stats and the adversary's final counters.
pub fn report(
    plan: AdversaryPlan,
    peer_id: String,
    stats: &[NodeStats],
    targets: &[usize],
    counters: AdversaryCounters,
) -> AdversaryReport {
    let spam = plan.kind == AdversaryKind::SpamReqResp;
    let mut per_node = Vec::new();
    for (i, s) in stats.iter().enumerate() {
        let w = &s.adversary;
        let target = targets.iter().position(|t| *t == i);
        let requests = target
            .filter(|_| spam)
            .and_then(|t| counters.targets.get(t).cloned());
        per_node.push(AdversaryNodeReport {
            node: i,
            targeted: target.is_some(),
            seen: w.seen(),
            accepted: w.accepted,
            rejected: w.rejected,
            ignored: w.ignored,
            banned: w.banned_at_ms.is_some(),
            banned_after_ms: w
                .banned_at_ms
                .map(|at| at.saturating_sub(w.first_at_ms.unwrap_or(at))),
            seen_before_ban: w.seen_before_ban,
            requests,
            server_rate_limited: s.server.filter(|_| spam).map(|c| c.rate_limited),
            server_served: s.server.filter(|_| spam).map(|c| c.served),
        });
    }
    let reached: Vec<&AdversaryNodeReport> = per_node
        .iter()
        .filter(|n| {
            if spam {
                n.requests.as_ref().is_some_and(|r| r.requests > 0)
            } else {
                n.seen > 0
            }
        })
        .collect();
    let contained = !reached.is_empty()
        && reached.iter().all(|n| {
            if spam {
                n.server_rate_limited.unwrap_or(0) > 0
                    && n.requests
                        .as_ref()
                        .is_some_and(|r| r.answers.rate_limited > 0)
            } else {
                n.banned
            }
        });
    AdversaryReport {
        kind: plan.kind.as_str(),
        peer_id,
        rate_per_sec: plan.rate,
        should_be_banned: plan.kind.should_be_banned(),
        targets: targets.len(),
        reached: reached.len(),
        banned_by: per_node.iter().filter(|n| n.banned).count(),
        contained,
        honest_peers_banned: stats.iter().map(|s| s.adversary.other_bans).sum(),
        counters,
        per_node,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_adversarys_messages_and_ban_are_counted() {
        let mut w = Watched {
            peer: "adv".into(),
            ..Watched::default()
        };
        w.on_message("honest", "reject", 1);
        w.on_message("adv", "accept", 10);
        w.on_message("adv", "reject", 20);
        w.on_ban("adv", 30);
        w.on_message("adv", "ignore", 40);
        w.on_ban("adv", 50);
        w.on_ban("honest", 60);
        assert_eq!((w.accepted, w.rejected, w.ignored), (1, 1, 1));
        assert_eq!(w.first_at_ms, Some(10));
        assert_eq!(w.banned_at_ms, Some(30));
        assert_eq!(w.seen_before_ban, Some(2));
        assert_eq!(w.other_bans, 1);
        // 10, 20 and 40 ms all fall in the first 100 ms bin.
        assert_eq!(w.message_bins.into_iter().collect::<Vec<_>>(), vec![(0, 3)]);
    }
}
