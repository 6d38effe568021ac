//! The gossip message: `snappy_block( signature[65] ‖ [parentBeaconRoot[32]] ‖ SSZ(payload) )`.
//!
//! [`decode_message`] is the plain codec (no signature or field checks; the validator in
//! [`crate::validate`] runs the same steps with op-node's verdicts in between), and
//! [`encode_signed`] is the publish path. Reference: `shared/spec/op-p2p.md` §2.1.

use alloy_primitives::{B256, Bytes};

use super::signature::{BlockSigner, SIGNATURE_BYTES, payload_hash};
use super::snappy::{SnappyError, compress_block, decompress_gossip};
use super::ssz::{EncodeError, SszError, decode_envelope, encode_envelope};
use super::{BlockVersion, ExecutionPayloadEnvelope};

/// A decompressed message split into its signature and the bytes it signs.
#[derive(Debug, Clone)]
pub struct SignedBytes {
    /// r ‖ s ‖ v.
    pub signature: [u8; SIGNATURE_BYTES],
    /// Everything after the signature (beacon root for V3/V4, then the SSZ payload).
    pub signed: Bytes,
}

impl SignedBytes {
    /// Splits a decompressed message; `None` if it is shorter than a signature.
    pub fn split(decompressed: Bytes) -> Option<Self> {
        let signature: [u8; SIGNATURE_BYTES] =
            decompressed.get(..SIGNATURE_BYTES)?.try_into().ok()?;
        Some(Self {
            signature,
            signed: decompressed.slice(SIGNATURE_BYTES..),
        })
    }
}

/// A fully decoded (not validated) gossip message.
#[derive(Debug, Clone)]
pub struct DecodedMessage {
    /// r ‖ s ‖ v as received.
    pub signature: [u8; SIGNATURE_BYTES],
    /// keccak256 of the signed bytes.
    pub payload_hash: B256,
    /// The payload and its beacon root.
    pub envelope: ExecutionPayloadEnvelope,
    /// Size after decompression.
    pub decompressed_len: usize,
}

/// Why a gossip message failed to decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Snappy header or body refused.
    #[error(transparent)]
    Snappy(#[from] SnappyError),
    /// The SSZ payload did not decode for the topic's version.
    #[error(transparent)]
    Ssz(#[from] SszError),
}

/// Decodes a compressed gossip message for `version`, without judging it.
pub fn decode_message(
    version: BlockVersion,
    compressed: &[u8],
) -> Result<DecodedMessage, MessageError> {
    let decompressed = decompress_gossip(compressed)?;
    let decompressed_len = decompressed.len();
    // decompress_gossip guarantees at least 66 bytes, so the split cannot fail.
    let parts = SignedBytes::split(decompressed.into()).ok_or(SnappyError::TooSmall {
        declared: decompressed_len,
    })?;
    let envelope = decode_envelope(version, &parts.signed)?;
    Ok(DecodedMessage {
        signature: parts.signature,
        payload_hash: payload_hash(&parts.signed),
        envelope,
        decompressed_len,
    })
}

/// Encodes, signs and compresses `envelope` as a gossip message for `version` on `chain_id`.
pub fn encode_signed(
    chain_id: u64,
    version: BlockVersion,
    envelope: &ExecutionPayloadEnvelope,
    signer: &BlockSigner,
) -> Result<Vec<u8>, EncodeError> {
    let body = encode_envelope(version, envelope)?;
    let signature = signer.sign_payload(chain_id, &body);
    Ok(compress_block(&join(&signature, &body)))
}

/// Compresses an already-signed message (for re-encoding or for tests that forge signatures).
pub fn encode_with_signature(signature: &[u8; SIGNATURE_BYTES], signed: &[u8]) -> Vec<u8> {
    compress_block(&join(signature, signed))
}

fn join(signature: &[u8; SIGNATURE_BYTES], body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNATURE_BYTES + body.len());
    message.extend_from_slice(signature);
    message.extend_from_slice(body);
    message
}
