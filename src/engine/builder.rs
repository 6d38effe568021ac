//! The sequencer's blocks from the engine (issue 6, sequencer path): payload attributes on top of
//! the current head (timestamp, prevRandao and parent beacon root from the L1 origin, the
//! sequencer fee vault, no withdrawals, the L1-info deposit as the only forced transaction, the
//! gas limit, Holocene's EIP-1559 parameters and Jovian's minimum base fee), then
//! `forkchoiceUpdated` to start the build and `getPayload` to take it. The producer signs,
//! publishes and stores it; the insertion driver inserts it (`newPayload` + `forkchoiceUpdated`)
//! like any stored block, so each block reaches the engine once.
//!
//! Without an L1 RPC the L1 origin is pinned by the caller (a deterministic devnet origin), and
//! the system-config values are the defaults below (op-reth's dev chain and OP Mainnet's).

use alloy_primitives::{B64, B256, Bytes, keccak256};
use alloy_rpc_types_engine::{ForkchoiceState, PayloadAttributes, PayloadStatusEnum};

use super::client::{EngineClient, EngineError};
use super::json::OpPayloadAttributes;
use crate::block_builder::{DEFAULT_GAS_LIMIT, Deposit, L1Info, SEQUENCER_FEE_VAULT};
use crate::chain::ChainSpec;
use crate::store::BlockRef;
use crate::wire::BlockVersion;
use crate::wire::payload::ExecutionPayloadEnvelope;

/// Holocene EIP-1559 denominator (the system config's default, OP Mainnet's).
pub const EIP1559_DENOMINATOR: u32 = 250;
/// Holocene EIP-1559 elasticity.
pub const EIP1559_ELASTICITY: u32 = 6;
/// Jovian minimum base fee (wei) when the system config sets none.
pub const MIN_BASE_FEE: u64 = 0;

/// The payload attributes of the block at `timestamp` on top of the head, with `l1` as origin.
pub fn attributes(chain: &ChainSpec, l1: &L1Info, timestamp: u64) -> OpPayloadAttributes {
    let version = chain.block_version_at(timestamp);
    let deposit = Deposit::l1_info(chain, l1, timestamp).encode_2718();
    let mut eip1559 = [0u8; 8];
    eip1559[..4].copy_from_slice(&EIP1559_DENOMINATOR.to_be_bytes());
    eip1559[4..].copy_from_slice(&EIP1559_ELASTICITY.to_be_bytes());
    OpPayloadAttributes {
        payload_attributes: PayloadAttributes {
            timestamp,
            // The L1 origin's randao; pinned origins derive it from their hash.
            prev_randao: keccak256(l1.hash),
            suggested_fee_recipient: SEQUENCER_FEE_VAULT,
            withdrawals: (version >= BlockVersion::V2).then(Vec::new),
            parent_beacon_block_root: (version >= BlockVersion::V3)
                .then(|| keccak256([b"beacon".as_slice(), &l1.number.to_be_bytes()].concat())),
            ..PayloadAttributes::default()
        },
        transactions: Some(vec![Bytes::from(deposit)]),
        no_tx_pool: Some(false),
        gas_limit: Some(DEFAULT_GAS_LIMIT),
        eip1559_params: chain.is_holocene(timestamp).then(|| B64::from(eip1559)),
        min_base_fee: chain.is_jovian(timestamp).then_some(MIN_BASE_FEE),
    }
}

/// Why the engine built nothing.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A call failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// `forkchoiceUpdated` answered without a payload id: the engine lacks the head (SYNCING, as
    /// op-reth answers for a head it does not have) or refused it (INVALID).
    #[error("the engine started no build on {head} (status {status:?})")]
    NotBuilding {
        /// The head we asked it to build on.
        head: B256,
        /// Its answer.
        status: PayloadStatusEnum,
    },
}

impl BuildError {
    /// The failure's kind, one of [`super::metrics::BUILD_FAILURE_KINDS`].
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Engine(e) if e.is_transient() => "unreachable",
            // -38001: unknown payload (the engine restarted between the two calls).
            Self::Engine(EngineError::Rpc { code: -38001, .. }) => "unknown_payload",
            Self::Engine(_) => "engine_error",
            Self::NotBuilding {
                status: PayloadStatusEnum::Invalid { .. },
                ..
            } => "invalid",
            Self::NotBuilding { .. } => "syncing",
        }
    }
}

/// Has the engine build the block at `timestamp` on `head`: `forkchoiceUpdated` with the
/// attributes, then `getPayload`.
pub async fn build(
    client: &EngineClient,
    chain: &ChainSpec,
    head: BlockRef,
    safe: B256,
    finalized: B256,
    l1: &L1Info,
    timestamp: u64,
) -> Result<(BlockVersion, ExecutionPayloadEnvelope), BuildError> {
    let version = chain.block_version_at(timestamp);
    let state = ForkchoiceState {
        head_block_hash: head.hash,
        safe_block_hash: safe,
        finalized_block_hash: finalized,
    };
    let attrs = attributes(chain, l1, timestamp);
    let updated = client
        .forkchoice_updated(version, state, Some(&attrs))
        .await?;
    let id = updated.payload_id.ok_or(BuildError::NotBuilding {
        head: head.hash,
        status: updated.payload_status.status,
    })?;
    let envelope = client.get_payload(version, id).await?;
    Ok((version, envelope))
}
