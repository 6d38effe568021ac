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
use crate::engine::json::{PayloadJsonError, payload_from_get_payload};
use crate::p2p::NetworkHandle;
use crate::store::StoredBlock;
use crate::store::writer::{BlockSource, StoreOp, StoreRequest};
use crate::validate::{BlockValidator, ValidationError};
use crate::wire::BlockVersion;
use crate::wire::block_hash::compute_block_hash;
use crate::wire::envelope::encode_signed;
use crate::wire::signature::BlockSigner;
use crate::wire::ssz::EncodeError;

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
    /// `executionPayload.timestamp` is missing or not a hex quantity (its fork is unknown).
    #[error("invalid payload: executionPayload.timestamp missing")]
    NoTimestamp,
    /// Not an envelope of the payload's fork.
    #[error("invalid payload: not a {version} envelope: {source}")]
    NotEnvelope {
        /// The fork's block version (read from the timestamp).
        version: BlockVersion,
        /// What does not fit.
        source: PayloadJsonError,
    },
    /// The block hash does not match the payload's fields.
    #[error("invalid payload: block hash {claimed} does not match its fields ({computed})")]
    WrongBlockHash {
        /// The hash the payload claims.
        claimed: B256,
        /// The hash of its fields.
        computed: B256,
    },
    /// The payload cannot be encoded for its topic.
    #[error("invalid payload: {0}")]
    Encode(#[from] EncodeError),
    /// Our own validator refuses the signed block.
    #[error("invalid payload: our validator refuses it: {0}")]
    Refused(#[source] ValidationError),
    /// The store writer has stopped (the node is shutting down).
    #[error("the store has stopped")]
    StoreStopped,
    /// A follower has no key to sign with.
    #[error("this node has no sequencer key")]
    NoSequencerKey,
    /// The blocking task that signs and checks the block panicked or was cancelled.
    #[error("{0}")]
    Task(#[from] tokio::task::JoinError),
}

impl PayloadError {
    /// Whether the payload itself is at fault (the caller's error), not the node.
    pub fn is_invalid(&self) -> bool {
        match self {
            Self::NoTimestamp
            | Self::NotEnvelope { .. }
            | Self::WrongBlockHash { .. }
            | Self::Encode(_)
            | Self::Refused(_) => true,
            Self::StoreStopped | Self::NoSequencerKey | Self::Task(_) => false,
        }
    }
}

impl PayloadContext {
    /// Decodes and checks an envelope.
    pub fn decode(&self, envelope: Value) -> Result<StoredBlock, PayloadError> {
        let timestamp = envelope
            .pointer("/executionPayload/timestamp")
            .and_then(Value::as_str)
            .and_then(|t| u64::from_str_radix(t.trim_start_matches("0x"), 16).ok())
            .ok_or(PayloadError::NoTimestamp)?;
        let version: BlockVersion = self.chain.block_version_at(timestamp);
        let envelope = payload_from_get_payload(version, envelope)
            .map_err(|source| PayloadError::NotEnvelope { version, source })?;
        let computed = compute_block_hash(&envelope);
        if computed != envelope.payload.block_hash {
            return Err(PayloadError::WrongBlockHash {
                claimed: envelope.payload.block_hash,
                computed,
            });
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
            .map_err(|_| PayloadError::StoreStopped)?;
        Ok(hash)
    }

    /// Signs, validates, publishes and stores `block`.
    pub async fn publish(&self, block: StoredBlock) -> Result<B256, PayloadError> {
        let signer = self.signer.clone().ok_or(PayloadError::NoSequencerKey)?;
        let chain_id = self.chain.chain_id;
        let validator = self.validator.clone();
        let (block, data) = tokio::task::spawn_blocking(move || {
            let data = encode_signed(chain_id, block.version, &block.envelope, &signer)?;
            validator
                .validate(block.version, &data, unix_now())
                .map_err(PayloadError::Refused)?;
            Ok::<_, PayloadError>((block, data))
        })
        .await??;
        if let Err(e) = self.network.publish(block.version, data).await {
            tracing::warn!(error = %e, "publish failed (no peers?); storing anyway");
        }
        self.store(block).await
    }
}
