//! Payloads between our wire type ([`ExecutionPayloadEnvelope`], what gossip and the store carry)
//! and the Engine API's JSON (alloy's `ExecutionPayloadV1..V3`, plus OP's V4, which is V3 with a
//! `withdrawalsRoot`), and OP's payload attributes (alloy's `PayloadAttributes` with OP's
//! additions: `transactions`, `noTxPool`, `gasLimit`, Holocene's `eip1559Params`, Jovian's
//! `minBaseFee`). Sans-IO; the client ([`super::client`]) sends what this builds.

use alloy_primitives::{B64, B256, Bytes};
use alloy_rpc_types_engine::{
    ExecutionPayloadV1, ExecutionPayloadV2, ExecutionPayloadV3, PayloadAttributes,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::BlockVersion;
use crate::wire::payload::{ExecutionPayload, ExecutionPayloadEnvelope, Transactions, Withdrawal};

/// OP's V4 payload (`engine_newPayloadV4` / `engine_getPayloadV4`): V3 plus the
/// L2ToL1MessagePasser storage root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpExecutionPayloadV4 {
    /// The V3 fields.
    #[serde(flatten)]
    pub payload_inner: ExecutionPayloadV3,
    /// `withdrawalsRoot`.
    pub withdrawals_root: B256,
}

/// OP's payload attributes for `engine_forkchoiceUpdated*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpPayloadAttributes {
    /// timestamp, prevRandao, suggestedFeeRecipient, withdrawals, parentBeaconBlockRoot.
    #[serde(flatten)]
    pub payload_attributes: PayloadAttributes,
    /// Transactions forced into the block, the L1-info deposit first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions: Option<Vec<Bytes>>,
    /// Build from the forced transactions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_tx_pool: Option<bool>,
    /// The block's gas limit (a hex quantity).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "alloy_serde::quantity::opt"
    )]
    pub gas_limit: Option<u64>,
    /// Holocene: EIP-1559 denominator and elasticity, big-endian u32s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eip1559_params: Option<B64>,
    /// Jovian: minimum base fee. A JSON **number**: op-reth refuses a hex string
    /// (`shared/spec/engine-api.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_base_fee: Option<u64>,
}

/// Why a payload cannot be converted.
#[derive(Debug, thiserror::Error)]
pub enum PayloadJsonError {
    /// A field the version requires is missing.
    #[error("a {version} payload needs {field}")]
    Missing {
        /// The block version.
        version: BlockVersion,
        /// The field.
        field: &'static str,
    },
    /// The JSON does not have the version's shape.
    #[error("engine payload JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A V1 payload (before Canyon) with withdrawals.
    #[error("engine payload JSON: a V1 payload (before Canyon) carries no withdrawals")]
    WithdrawalsBeforeCanyon,
    /// More transaction bytes than a payload can carry.
    #[error("engine payload JSON: transactions exceed 4 GiB")]
    TransactionsTooLarge,
}

fn missing(version: BlockVersion, field: &'static str) -> PayloadJsonError {
    PayloadJsonError::Missing { version, field }
}

fn v1(p: &ExecutionPayload) -> ExecutionPayloadV1 {
    ExecutionPayloadV1 {
        parent_hash: p.parent_hash,
        fee_recipient: p.fee_recipient,
        state_root: p.state_root,
        receipts_root: p.receipts_root,
        logs_bloom: p.logs_bloom,
        prev_randao: p.prev_randao,
        block_number: p.block_number,
        gas_limit: p.gas_limit,
        gas_used: p.gas_used,
        timestamp: p.timestamp,
        extra_data: p.extra_data.clone(),
        base_fee_per_gas: p.base_fee_per_gas,
        block_hash: p.block_hash,
        transactions: p.transactions.iter().map(Bytes::copy_from_slice).collect(),
    }
}

fn v2(p: &ExecutionPayload) -> ExecutionPayloadV2 {
    ExecutionPayloadV2 {
        payload_inner: v1(p),
        withdrawals: p
            .withdrawals
            .iter()
            .flatten()
            .map(|w| alloy_eips::eip4895::Withdrawal {
                index: w.index,
                validator_index: w.validator_index,
                address: w.address,
                amount: w.amount,
            })
            .collect(),
    }
}

fn v3(version: BlockVersion, p: &ExecutionPayload) -> Result<ExecutionPayloadV3, PayloadJsonError> {
    Ok(ExecutionPayloadV3 {
        payload_inner: v2(p),
        blob_gas_used: p
            .blob_gas_used
            .ok_or_else(|| missing(version, "blobGasUsed"))?,
        excess_blob_gas: p
            .excess_blob_gas
            .ok_or_else(|| missing(version, "excessBlobGas"))?,
    })
}

/// The `params` of `engine_newPayload*` for `envelope` of `version` (see [`super::methods`]):
/// V1/V2 `[payload]` (V2 form, `withdrawals` from Canyon on), V3
/// `[payload, [], parentBeaconBlockRoot]`, V4 `[payload + withdrawalsRoot, [], root, []]`.
pub fn new_payload_params(
    version: BlockVersion,
    envelope: &ExecutionPayloadEnvelope,
) -> Result<Value, PayloadJsonError> {
    let p = &envelope.payload;
    let json = |v: Result<Value, serde_json::Error>| v.map_err(PayloadJsonError::Json);
    match version {
        BlockVersion::V1 => json(serde_json::to_value([v1(p)])),
        BlockVersion::V2 => json(serde_json::to_value([v2(p)])),
        BlockVersion::V3 | BlockVersion::V4 => {
            let root = envelope
                .parent_beacon_block_root
                .ok_or_else(|| missing(version, "parentBeaconBlockRoot"))?;
            let no_hashes: [B256; 0] = [];
            if version == BlockVersion::V3 {
                json(serde_json::to_value((v3(version, p)?, no_hashes, root)))
            } else {
                let payload = OpExecutionPayloadV4 {
                    payload_inner: v3(version, p)?,
                    withdrawals_root: p
                        .withdrawals_root
                        .ok_or_else(|| missing(version, "withdrawalsRoot"))?,
                };
                let no_requests: [Bytes; 0] = [];
                json(serde_json::to_value((
                    payload,
                    no_hashes,
                    root,
                    no_requests,
                )))
            }
        }
    }
}

fn from_v1(p: ExecutionPayloadV1) -> Result<ExecutionPayload, PayloadJsonError> {
    let transactions = Transactions::from_slices(p.transactions.iter().map(|t| t.as_ref()))
        .ok_or(PayloadJsonError::TransactionsTooLarge)?;
    Ok(ExecutionPayload {
        parent_hash: p.parent_hash,
        fee_recipient: p.fee_recipient,
        state_root: p.state_root,
        receipts_root: p.receipts_root,
        logs_bloom: p.logs_bloom,
        prev_randao: p.prev_randao,
        block_number: p.block_number,
        gas_limit: p.gas_limit,
        gas_used: p.gas_used,
        timestamp: p.timestamp,
        extra_data: p.extra_data,
        base_fee_per_gas: p.base_fee_per_gas,
        block_hash: p.block_hash,
        transactions,
        withdrawals: None,
        blob_gas_used: None,
        excess_blob_gas: None,
        withdrawals_root: None,
    })
}

fn from_v2(p: ExecutionPayloadV2) -> Result<ExecutionPayload, PayloadJsonError> {
    let withdrawals = p
        .withdrawals
        .iter()
        .map(|w| Withdrawal {
            index: w.index,
            validator_index: w.validator_index,
            address: w.address,
            amount: w.amount,
        })
        .collect();
    Ok(ExecutionPayload {
        withdrawals: Some(withdrawals),
        ..from_v1(p.payload_inner)?
    })
}

fn from_v3(p: ExecutionPayloadV3) -> Result<ExecutionPayload, PayloadJsonError> {
    Ok(ExecutionPayload {
        blob_gas_used: Some(p.blob_gas_used),
        excess_blob_gas: Some(p.excess_blob_gas),
        ..from_v2(p.payload_inner)?
    })
}

/// `engine_getPayloadV2`'s payload: an `ExecutionPayloadV1` before Canyon (no `withdrawals`
/// field, or `null` from op-geth), an `ExecutionPayloadV2` from Canyon on. alloy's
/// `ExecutionPayloadV2` requires the list, so the two are read apart.
#[derive(Deserialize)]
struct ExecutionPayloadV1OrV2 {
    #[serde(flatten)]
    inner: ExecutionPayloadV1,
    /// Absent, `null`, or the list.
    #[serde(default)]
    withdrawals: Option<Vec<alloy_eips::eip4895::Withdrawal>>,
}

/// The payload in an `engine_getPayload*` answer for a block of `version`: V2
/// `{executionPayload}`, V3 `{executionPayload, parentBeaconBlockRoot, …}`, V4 the same with
/// `withdrawalsRoot` in the payload.
pub fn payload_from_get_payload(
    version: BlockVersion,
    response: Value,
) -> Result<ExecutionPayloadEnvelope, PayloadJsonError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Envelope<P> {
        execution_payload: P,
        #[serde(default)]
        parent_beacon_block_root: Option<B256>,
    }
    match version {
        BlockVersion::V1 | BlockVersion::V2 => {
            let e: Envelope<ExecutionPayloadV1OrV2> = serde_json::from_value(response)?;
            let ExecutionPayloadV1OrV2 { inner, withdrawals } = e.execution_payload;
            let payload = match (version, withdrawals) {
                (BlockVersion::V1, None) => from_v1(inner)?,
                (BlockVersion::V1, Some(list)) if list.is_empty() => from_v1(inner)?,
                (BlockVersion::V1, Some(_)) => {
                    return Err(PayloadJsonError::WithdrawalsBeforeCanyon);
                }
                (_, None) => return Err(missing(version, "withdrawals")),
                (_, Some(withdrawals)) => from_v2(ExecutionPayloadV2 {
                    payload_inner: inner,
                    withdrawals,
                })?,
            };
            Ok(ExecutionPayloadEnvelope {
                parent_beacon_block_root: None,
                payload,
            })
        }
        BlockVersion::V3 => {
            let e: Envelope<ExecutionPayloadV3> = serde_json::from_value(response)?;
            Ok(ExecutionPayloadEnvelope {
                parent_beacon_block_root: Some(
                    e.parent_beacon_block_root
                        .ok_or_else(|| missing(version, "parentBeaconBlockRoot"))?,
                ),
                payload: from_v3(e.execution_payload)?,
            })
        }
        BlockVersion::V4 => {
            let e: Envelope<OpExecutionPayloadV4> = serde_json::from_value(response)?;
            let mut payload = from_v3(e.execution_payload.payload_inner)?;
            payload.withdrawals_root = Some(e.execution_payload.withdrawals_root);
            Ok(ExecutionPayloadEnvelope {
                parent_beacon_block_root: Some(
                    e.parent_beacon_block_root
                        .ok_or_else(|| missing(version, "parentBeaconBlockRoot"))?,
                ),
                payload,
            })
        }
    }
}
