//! `ChainSpec`: what the gossip layer needs to know about a chain, and the fork rules on it.
//!
//! Built once at start-up by [`crate::chain_config`] (from `chains/<name>.toml` or op-node's
//! `rollup.json`) and shared read-only by the validator, the publisher and req/resp.
//! Reference: `shared/spec/op-p2p.md` §1 (topics per fork) and §11 (config fields).

use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};

use crate::wire::BlockVersion;

/// A block id (number and hash), as in rollup.json's `genesis.l1` / `genesis.l2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockId {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
}

/// Genesis anchors of the L2 chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// The L1 block the chain starts from.
    pub l1: BlockId,
    /// The first L2 block.
    pub l2: BlockId,
    /// Timestamp of the first L2 block (unix seconds).
    pub l2_time: u64,
}

/// Activation times (unix seconds) of every OP Stack fork; `None` = not scheduled.
///
/// Only Canyon, Ecotone, Isthmus and Jovian change gossip (topics and the blob-gas rule); the
/// others are kept so a chain file or rollup.json round-trips and operators see the full picture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForkTimes {
    /// Regolith (deposit tx changes; gossip unaffected).
    pub regolith: Option<u64>,
    /// Canyon: blocks move to the V2 topic.
    pub canyon: Option<u64>,
    /// Delta (span batches; gossip unaffected).
    pub delta: Option<u64>,
    /// Ecotone: blocks move to the V3 topic.
    pub ecotone: Option<u64>,
    /// Fjord (gossip unaffected).
    pub fjord: Option<u64>,
    /// Granite (gossip unaffected).
    pub granite: Option<u64>,
    /// Holocene (gossip unaffected).
    pub holocene: Option<u64>,
    /// Isthmus: blocks move to the V4 topic.
    pub isthmus: Option<u64>,
    /// Jovian: V3+ blocks may carry a non-zero blobGasUsed.
    pub jovian: Option<u64>,
    /// Karst (execution only; gossip unaffected).
    pub karst: Option<u64>,
    /// Interop (gossip unaffected).
    pub interop: Option<u64>,
}

impl ForkTimes {
    /// The forks in activation order, with their names.
    pub fn ordered(&self) -> [(&'static str, Option<u64>); 11] {
        [
            ("regolith", self.regolith),
            ("canyon", self.canyon),
            ("delta", self.delta),
            ("ecotone", self.ecotone),
            ("fjord", self.fjord),
            ("granite", self.granite),
            ("holocene", self.holocene),
            ("isthmus", self.isthmus),
            ("jovian", self.jovian),
            ("karst", self.karst),
            ("interop", self.interop),
        ]
    }

    /// Checks that no fork is scheduled before an earlier one, nor without it (op-node's
    /// `checkForkOrder`). Returns the first violation.
    pub fn check_order(&self) -> Result<(), ForkOrderError> {
        let forks = self.ordered();
        // Interop is scheduled independently of karst in op-node; only the hard-fork chain up to
        // karst is ordered.
        let chain = forks.get(..10).unwrap_or_default();
        for pair in chain.windows(2) {
            if let [(prev_name, prev), (name, next)] = pair {
                match (prev, next) {
                    (None, Some(_)) => {
                        return Err(ForkOrderError::EarlierUnscheduled {
                            fork: name,
                            earlier: prev_name,
                        });
                    }
                    (Some(p), Some(n)) if n < p => {
                        return Err(ForkOrderError::BeforeEarlier {
                            fork: name,
                            at: *n,
                            earlier: prev_name,
                            earlier_at: *p,
                        });
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// A fork schedule out of order ([`ForkTimes::check_order`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForkOrderError {
    /// A fork is scheduled while the fork before it is not.
    #[error("{fork} is scheduled but the earlier fork {earlier} is not")]
    EarlierUnscheduled {
        /// The scheduled fork.
        fork: &'static str,
        /// The unscheduled fork before it.
        earlier: &'static str,
    },
    /// A fork is scheduled before the fork that precedes it.
    #[error("{fork} ({at}) is scheduled before {earlier} ({earlier_at})")]
    BeforeEarlier {
        /// The fork.
        fork: &'static str,
        /// Its activation time.
        at: u64,
        /// The fork that must come first.
        earlier: &'static str,
        /// Its activation time.
        earlier_at: u64,
    },
}

fn active(fork: Option<u64>, timestamp: u64) -> bool {
    fork.is_some_and(|t| timestamp >= t)
}

/// Everything the gossip layer knows about one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSpec {
    /// Short name (`op-mainnet`, …, or the file stem for a rollup.json).
    pub name: String,
    /// L2 chain id: in topics, the signing hash, the ENR and the req/resp protocol id.
    pub chain_id: u64,
    /// Seconds between L2 blocks (> 0).
    pub block_time: u64,
    /// Genesis anchors.
    pub genesis: Genesis,
    /// Fork schedule.
    pub forks: ForkTimes,
    /// Accepted unsafe-block signers. Empty (or only the zero address) means "not configured":
    /// every block is then IGNOREd, as op-node does with a zero signer.
    pub unsafe_block_signers: Vec<Address>,
    /// L1 SystemConfig proxy, where the live signer is read from when an L1 RPC is given.
    pub l1_system_config_address: Option<Address>,
    /// Discovery bootnodes (`enr:` records or `enode://` URLs) used when `--p2p.bootnodes` is
    /// not given: op-node's defaults for the public chains, none for a rollup.json or the devnet.
    pub bootnodes: Vec<String>,
}

impl ChainSpec {
    /// The block version (and topic) for a block with this timestamp, as op-node publishes.
    pub fn block_version_at(&self, timestamp: u64) -> BlockVersion {
        if active(self.forks.isthmus, timestamp) {
            BlockVersion::V4
        } else if active(self.forks.ecotone, timestamp) {
            BlockVersion::V3
        } else if active(self.forks.canyon, timestamp) {
            BlockVersion::V2
        } else {
            BlockVersion::V1
        }
    }

    /// True from Holocene on: payload attributes carry `eip1559Params`.
    pub fn is_holocene(&self, timestamp: u64) -> bool {
        active(self.forks.holocene, timestamp)
    }

    /// True from Jovian on: V3+ blocks may carry a non-zero `blobGasUsed` (the DA footprint).
    pub fn is_jovian(&self, timestamp: u64) -> bool {
        active(self.forks.jovian, timestamp)
    }

    /// `/optimism/<chain id>/<N>/blocks`.
    pub fn topic(&self, version: BlockVersion) -> String {
        format!(
            "/optimism/{}/{}/blocks",
            self.chain_id,
            version.topic_index()
        )
    }

    /// The four block topics, V1 first.
    pub fn topics(&self) -> [String; 4] {
        BlockVersion::ALL.map(|v| self.topic(v))
    }

    /// The version of one of this chain's block topics; `None` for any other string.
    pub fn version_of_topic(&self, topic: &str) -> Option<BlockVersion> {
        BlockVersion::ALL
            .into_iter()
            .find(|&v| self.topic(v) == topic)
    }

    /// Expected timestamp of block `number` (op-node `TimestampForBlock`); `None` before genesis
    /// or on overflow.
    pub fn timestamp_for_block(&self, number: u64) -> Option<u64> {
        let blocks = number.checked_sub(self.genesis.l2.number)?;
        blocks
            .checked_mul(self.block_time)?
            .checked_add(self.genesis.l2_time)
    }

    /// The highest block number that can exist at `now` (op-node `TargetBlockNumber`).
    pub fn target_block_number(&self, now: u64) -> u64 {
        let elapsed = now.saturating_sub(self.genesis.l2_time);
        self.genesis
            .l2
            .number
            .saturating_add(elapsed / self.block_time.max(1))
    }

    /// Signers that are actually configured (the zero address counts as "unset").
    pub fn configured_signers(&self) -> impl Iterator<Item = Address> + '_ {
        self.unsafe_block_signers
            .iter()
            .copied()
            .filter(|a| !a.is_zero())
    }
}
