//! Payloads posted by operators and block builders (issue 6): `admin_postUnsafePayload` (op-node's
//! method: the payload goes into the store as an unsafe block, and from there to the engine in
//! order) and `opgossip_publishPayload` (an externally built payload signed with the sequencer
//! key, checked by our own validator, published on its fork's topic, then stored).
//!
//! Both take op-node's `ExecutionPayloadEnvelope` JSON, `{"executionPayload": {…},
//! "parentBeaconBlockRoot": …}`, in the Engine API form of the payload's fork (the version is
//! read from its timestamp), and refuse a payload whose block hash does not match its fields.

use std::sync::Arc;
use std::time::SystemTime;

use alloy_primitives::B256;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::chain::ChainSpec;
use crate::clock::unix_now;
use crate::engine::json::payload_from_get_payload;
use crate::p2p::NetworkHandle;
use crate::store::StoredBlock;
use crate::store::writer::{BlockSource, StoreOp, StoreRequest};
use crate::validate::BlockValidator;
use crate::wire::BlockVersion;
use crate::wire::block_hash::compute_block_hash;
use crate::wire::envelope::encode_signed;
use crate::wire::signature::BlockSigner;

/// What the payload methods need from the node.
#[derive(Clone)]
pub struct PayloadContext {
    /// Fork rules.
    pub chain: Arc<ChainSpec>,
    /// Into the store (and from there the engine).
    pub store_tx: mpsc::Sender<StoreOp>,
    /// To publish.
    pub network: NetworkHandle,
    /// Our validator: a payload we publish must pass it.
    pub validator: Arc<BlockValidator>,
    /// The sequencer key (`None` on a follower: publishing is refused).
    pub signer: Option<BlockSigner>,
}

/// Why a posted payload was refused.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Not an envelope of the payload's fork, or a wrong block hash.
    #[error("invalid payload: {0}")]
    Invalid(String),
    /// The node cannot do it (no sequencer key, store or network stopped).
    #[error("{0}")]
    Unavailable(String),
}

impl PayloadContext {
    /// Decodes and checks an envelope.
    pub fn decode(&self, envelope: Value) -> Result<StoredBlock, PayloadError> {
        let timestamp = envelope
            .pointer("/executionPayload/timestamp")
            .and_then(Value::as_str)
            .and_then(|t| u64::from_str_radix(t.trim_start_matches("0x"), 16).ok())
            .ok_or_else(|| PayloadError::Invalid("executionPayload.timestamp missing".into()))?;
        let version: BlockVersion = self.chain.block_version_at(timestamp);
        let envelope = payload_from_get_payload(version, envelope)
            .map_err(|e| PayloadError::Invalid(format!("not a {version} envelope: {e}")))?;
        let computed = compute_block_hash(&envelope);
        if computed != envelope.payload.block_hash {
            return Err(PayloadError::Invalid(format!(
                "block hash {} does not match its fields ({computed})",
                envelope.payload.block_hash
            )));
        }
        // From JSON: there are no SSZ bytes to keep; the store encodes them.
        Ok(StoredBlock::new(version, envelope))
    }

    /// Stores `block` as an unsafe block.
    pub async fn store(&self, block: StoredBlock) -> Result<B256, PayloadError> {
        let hash = block.envelope.payload.block_hash;
        self.store_tx
            .send(StoreOp::Insert(Box::new(StoreRequest {
                block,
                source: BlockSource::Local,
                at: SystemTime::now(),
            })))
            .await
            .map_err(|_| PayloadError::Unavailable("the store has stopped".into()))?;
        Ok(hash)
    }

    /// Signs, validates, publishes and stores `block`.
    pub async fn publish(&self, block: StoredBlock) -> Result<B256, PayloadError> {
        let signer = self
            .signer
            .clone()
            .ok_or_else(|| PayloadError::Unavailable("this node has no sequencer key".into()))?;
        let chain_id = self.chain.chain_id;
        let validator = self.validator.clone();
        let (block, data) = tokio::task::spawn_blocking(move || {
            let data = encode_signed(chain_id, block.version, &block.envelope, &signer)
                .map_err(|e| PayloadError::Invalid(e.to_string()))?;
            validator
                .validate(block.version, &data, unix_now())
                .map_err(|e| PayloadError::Invalid(format!("our validator refuses it: {e}")))?;
            Ok::<_, PayloadError>((block, data))
        })
        .await
        .map_err(|e| PayloadError::Unavailable(e.to_string()))??;
        if let Err(e) = self.network.publish(block.version, data).await {
            tracing::warn!(error = %e, "publish failed (no peers?); storing anyway");
        }
        self.store(block).await
    }
}
