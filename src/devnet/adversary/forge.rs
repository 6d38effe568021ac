//! The hostile gossip messages, sans-IO: each function returns the compressed bytes to publish
//! and the topic version to publish them on. Every one of them is REJECTed by op-node's rules
//! (`shared/spec/op-p2p.md` §3), except the first few equivocations at a height, which are valid
//! blocks that honest nodes accept until the height holds 6.
//!
//! `serial` makes every message distinct (gossipsub drops a repeated message id before
//! validation, so a repeated message would never reach the honest nodes' validators).

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};

use crate::block_builder::{BlockSpec, L1Info, build_block};
use crate::chain::ChainSpec;
use crate::wire::block_hash::compute_block_hash;
use crate::wire::envelope::{encode_signed, encode_with_signature};
use crate::wire::signature::{BlockSigner, KeyError};
use crate::wire::ssz::{EncodeError, encode_envelope};
use crate::wire::{BlockVersion, ExecutionPayloadEnvelope, MAX_GOSSIP_SIZE_BYTES};

/// Forged blocks (not equivocations) are numbered from here: far above any devnet height, so a
/// forged block never shares a height with an honest one (they are REJECTed before the seen
/// cache anyway).
pub const FORGED_NUMBER_BASE: u64 = 1 << 40;
/// How far in the past an `invalid-block` "too old" timestamp lies: an hour, far beyond op-node's
/// 60 s window.
const STALE_BY_SECS: u64 = 3600;
/// Decompressed size of the `oversize` message with a genuine body: one byte over op-node's
/// 10 MiB limit (`maxGossipSize`).
pub const JUST_OVER_LIMIT_BYTES: usize = MAX_GOSSIP_SIZE_BYTES + 1;

/// A message the adversary could not build.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// The block does not encode for its version.
    #[error("cannot forge a message: {0}")]
    Encode(#[from] EncodeError),
    /// The stranger's key is not a valid secp256k1 scalar.
    #[error("cannot forge a message: {0}")]
    Key(#[from] KeyError),
}

/// A signer that is not the chain's: keccak256 of a fixed label, a valid secp256k1 scalar.
pub fn stranger() -> Result<BlockSigner, ForgeError> {
    BlockSigner::from_bytes(&keccak256(b"op-gossip adversary: not the sequencer").0)
        .map_err(ForgeError::from)
}

/// `invalid-sig`: a well-formed block (current timestamp, correct hash) signed by `signer`, then
/// its signature broken so that it is no valid secp256k1 signature at all, in turn: Ethereum's
/// `v = 27`, `r = 0`, `s = 0` → REJECT (rule 5b), a fault every node finds in the bytes. (A valid
/// signature by a key that is not the chain's signer is REJECTed too, but proves nothing about
/// the forwarder: the signer may have rotated. Nobody is penalised for it.)
pub fn invalid_signature(
    chain: &ChainSpec,
    signer: &BlockSigner,
    serial: u64,
    now: u64,
) -> Result<(BlockVersion, Vec<u8>), ForgeError> {
    let envelope = forged_block(chain, serial, now);
    let version = chain.block_version_at(envelope.payload.timestamp);
    let signed = encode_envelope(version, &envelope)?;
    let mut signature = signer.sign_payload(chain.chain_id, &signed);
    match serial % 3 {
        0 => signature[64] = 27,
        1 => signature[..32].fill(0),
        _ => signature[32..64].fill(0),
    }
    Ok((version, encode_with_signature(&signature, &signed)))
}

/// The defects of `invalid-block`, taken in turn. Each is checked after the signature, so only a
/// sequencer-signed message gets that far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// The claimed block hash is not the header's (rule 9).
    WrongHash,
    /// The timestamp is an hour old (rule 7).
    TooOld,
    /// `excessBlobGas` is not zero (rule 16; V3+ topics, else a wrong hash instead).
    ExcessBlobGas,
}

impl Defect {
    /// The defect of message `serial`.
    pub fn of(serial: u64) -> Self {
        match serial % 3 {
            0 => Self::WrongHash,
            1 => Self::TooOld,
            _ => Self::ExcessBlobGas,
        }
    }
}

/// `invalid-block`: signed by the real sequencer key (a buggy or compromised proxy of the
/// sequencer) but invalid, the defect varying with `serial` ([`Defect`]) → REJECT.
pub fn invalid_block(
    chain: &ChainSpec,
    sequencer: &BlockSigner,
    serial: u64,
    now: u64,
) -> Result<(BlockVersion, Vec<u8>), ForgeError> {
    let defect = Defect::of(serial);
    let timestamp = match defect {
        Defect::TooOld => now.saturating_sub(STALE_BY_SECS),
        _ => now,
    };
    let mut envelope = forged_block(chain, serial, timestamp);
    let version = chain.block_version_at(timestamp);
    match defect {
        Defect::ExcessBlobGas if version.has_blob_fields() => {
            envelope.payload.excess_blob_gas = Some(1 + serial);
            envelope.payload.block_hash = compute_block_hash(&envelope);
        }
        Defect::TooOld => {}
        Defect::WrongHash | Defect::ExcessBlobGas => {
            envelope.payload.block_hash = keccak256(envelope.payload.block_hash);
        }
    }
    sign(chain, &envelope, sequencer)
}

/// `equivocate`: a valid block at the height of `honest` (same parent, timestamp and fork fields)
/// that differs in extra data and fee recipient, signed by the sequencer key. Honest nodes accept
/// such blocks until the height holds 6 and REJECT the rest (rule 19).
pub fn equivocation(
    chain: &ChainSpec,
    sequencer: &BlockSigner,
    honest: &ExecutionPayloadEnvelope,
    serial: u64,
) -> Result<(BlockVersion, Vec<u8>), ForgeError> {
    let mut envelope = honest.clone();
    let mut extra = b"equivocation ".to_vec();
    extra.extend_from_slice(&serial.to_be_bytes());
    envelope.payload.extra_data = Bytes::from(extra);
    envelope.payload.fee_recipient = Address::from_word(keccak256(serial.to_be_bytes()));
    envelope.payload.block_hash = compute_block_hash(&envelope);
    sign(chain, &envelope, sequencer)
}

/// `oversize`, alternating two shapes: an odd `serial` gives a 13-byte message whose snappy
/// header claims about 4 GiB; an even one a genuine snappy block that decompresses to exactly
/// [`JUST_OVER_LIMIT_BYTES`] (an 8-byte literal repeated by copies, ≈ 480 KiB compressed). Both
/// are over the 10 MiB limit → REJECT (rule 2) without a byte being decompressed.
pub fn oversize(serial: u64) -> Vec<u8> {
    if serial % 2 == 1 {
        // uvarint 0xffff_fffe − (serial mod 2^16): ≤ 2^32 − 1, the largest length snappy allows.
        let declared = u64::from(u32::MAX - 1 - (serial % (1 << 16)) as u32);
        let mut out = uvarint(declared);
        out.extend_from_slice(&serial.to_le_bytes());
        return out;
    }
    just_over_limit(serial)
}

fn just_over_limit(serial: u64) -> Vec<u8> {
    snappy_bomb(serial, JUST_OVER_LIMIT_BYTES)
}

/// A genuine snappy block that decompresses to `len` bytes (at least 8): the serial as an 8-byte
/// literal, then copies of it. About 3 bytes per 64 decompressed: 10 MiB from 480 KiB.
pub fn snappy_bomb(serial: u64, len: usize) -> Vec<u8> {
    // Snappy's longest copy is 64 bytes.
    const LITERAL: usize = 8;
    const MAX_COPY: usize = 64;
    let copied = len.saturating_sub(LITERAL);
    let mut out = uvarint(len.max(LITERAL) as u64);
    out.reserve(1 + LITERAL + 3 * copied.div_ceil(MAX_COPY));
    // Literal of 8 bytes: tag (len − 1) << 2.
    out.push(((LITERAL - 1) << 2) as u8);
    out.extend_from_slice(&serial.to_le_bytes());
    // Copies with a 2-byte offset of 8: tag (len − 1) << 2 | 0b10, then the offset, little-endian.
    let mut left = copied;
    while left > 0 {
        let len = left.min(MAX_COPY);
        out.push((((len - 1) << 2) | 0b10) as u8);
        out.extend_from_slice(&(LITERAL as u16).to_le_bytes());
        left -= len;
    }
    out
}

fn uvarint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
    out
}

/// A well-formed block numbered above every honest height, its fields varying with `serial`.
fn forged_block(chain: &ChainSpec, serial: u64, timestamp: u64) -> ExecutionPayloadEnvelope {
    let number = FORGED_NUMBER_BASE.saturating_add(serial);
    let l1_number = timestamp / 12;
    build_block(
        chain,
        &BlockSpec {
            parent_hash: keccak256(number.to_be_bytes()),
            number,
            timestamp,
            target_tx_bytes: 0,
            l1: L1Info {
                number: l1_number,
                timestamp: l1_number * 12,
                hash: keccak256(l1_number.to_be_bytes()),
                base_fee: U256::from(1_000_000_000u64),
                batcher_hash: B256::ZERO,
                ..L1Info::default()
            },
        },
    )
}

fn sign(
    chain: &ChainSpec,
    envelope: &ExecutionPayloadEnvelope,
    signer: &BlockSigner,
) -> Result<(BlockVersion, Vec<u8>), ForgeError> {
    let version = chain.block_version_at(envelope.payload.timestamp);
    let data = encode_signed(chain.chain_id, version, envelope, signer)?;
    Ok((version, data))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::devnet::{DEVNET_SEQUENCER_KEY, DEVNET_SIGNER, devnet_rollup_json};
    use crate::validate::{BlockValidator, ValidatorConfig, Verdict};

    const NOW: u64 = 1_800_000_000;

    fn chain() -> Arc<ChainSpec> {
        let json = devnet_rollup_json(NOW - 86_400).to_string();
        let spec = crate::chain_config::parse_rollup_json(&json, "devnet", "test").unwrap();
        Arc::new(crate::chain_config::with_signer_override(
            spec,
            Some(DEVNET_SIGNER.parse().unwrap()),
        ))
    }

    fn reason(v: &BlockValidator, (version, data): &(BlockVersion, Vec<u8>)) -> &'static str {
        v.validate(*version, data, NOW).unwrap_err().reason()
    }

    #[test]
    fn forged_messages_get_op_node_verdicts() {
        let chain = chain();
        let v = BlockValidator::new(chain.clone(), ValidatorConfig::default());
        let sequencer = BlockSigner::from_hex(DEVNET_SEQUENCER_KEY).unwrap();
        let stranger = stranger().unwrap();
        assert_ne!(stranger.address(), sequencer.address());
        for serial in 0..3 {
            let m = invalid_signature(&chain, &stranger, serial, NOW).unwrap();
            assert_eq!(reason(&v, &m), "invalid_signature");
        }
        let reasons: Vec<_> = (0..3)
            .map(|s| reason(&v, &invalid_block(&chain, &sequencer, s, NOW).unwrap()))
            .collect();
        assert_eq!(
            reasons,
            [
                "block_hash_mismatch",
                "timestamp_too_old",
                "excess_blob_gas_nonzero"
            ]
        );
        for serial in 0..4 {
            let m = (BlockVersion::V4, oversize(serial));
            assert_eq!(reason(&v, &m), "too_large", "serial {serial}");
        }
    }

    #[test]
    fn equivocations_fill_a_height_then_are_rejected() {
        let chain = chain();
        let v = BlockValidator::new(chain.clone(), ValidatorConfig::default());
        let sequencer = BlockSigner::from_hex(DEVNET_SEQUENCER_KEY).unwrap();
        let honest = crate::block_builder::build_block(
            &chain,
            &BlockSpec {
                parent_hash: B256::repeat_byte(1),
                number: 42,
                timestamp: NOW,
                target_tx_bytes: 0,
                l1: L1Info::default(),
            },
        );
        let (version, data) = sign(&chain, &honest, &sequencer).unwrap();
        assert!(v.validate(version, &data, NOW).is_ok());
        let verdicts: Vec<Verdict> = (0..7)
            .map(|s| {
                let (version, data) = equivocation(&chain, &sequencer, &honest, s).unwrap();
                crate::validate::verdict_of(&v.validate(version, &data, NOW))
            })
            .collect();
        assert_eq!(verdicts[..5], [Verdict::Accept; 5]);
        assert_eq!(verdicts[5..], [Verdict::Reject; 2]);
    }

    #[test]
    fn the_just_over_limit_body_is_a_genuine_snappy_block() {
        let data = oversize(0);
        assert!(data.len() < 500 * 1024, "{} bytes", data.len());
        let out = snap::raw::Decoder::new().decompress_vec(&data).unwrap();
        assert_eq!(out.len(), JUST_OVER_LIMIT_BYTES);
        assert_eq!(out[..8], 0u64.to_le_bytes());
        assert!(out.iter().all(|b| *b == 0), "the literal repeated");
        let out = snap::raw::Decoder::new()
            .decompress_vec(&oversize(0x0102))
            .unwrap();
        assert_eq!(out[8..16], out[..8]);
        assert_eq!(
            out[JUST_OVER_LIMIT_BYTES - 1],
            out[(JUST_OVER_LIMIT_BYTES - 1) % 8]
        );
        assert_ne!(oversize(2), data, "distinct per serial");
    }
}
