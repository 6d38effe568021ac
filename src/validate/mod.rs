//! Gossip block validation with op-node's verdicts.
//!
//! Sits between gossipsub (which hands over each message's raw bytes and topic) and everything
//! downstream of ACCEPT (store, engine, sync). The steps run in op-node's order, which also puts
//! the unforgeable check first:
//!
//! 1. snappy: declared length within 66 B..10 MiB, then decompress (REJECT)
//! 2. signature recovers (REJECT), a signer is configured (IGNORE if not), and the recovered
//!    address is an accepted signer (REJECT)
//! 3. SSZ decode for the topic's version (REJECT)
//! 4. timestamp within `[now − past window, now + future window]` (REJECT)
//! 5. fork field rules: withdrawals, blob gas (Jovian exception), beacon root, withdrawals root
//!    (REJECT) — op-node checks these after the block hash; both are REJECT, and the cheap rules
//!    first spare the trie hashing
//! 6. block hash recomputed (REJECT)
//! 7. seen cache: > 5 blocks at the height (REJECT), duplicate (IGNORE), else ACCEPT
//!
//! The verdicts come in that order; the work does not quite: the SSZ decode runs before the
//! signature check so that, on CPUs with AVX-512, the payload hash and the transaction trie's leaf
//! hashes share one two-lane keccak pass ([`crate::wire::keccak`]), which costs about what the
//! payload hash alone did. A decode error is still reported only after the signature passed, and
//! a forged message still costs one payload-sized keccak pass (plus a bounded SSZ decode).
//!
//! Steps 1–6 are stateless and can run on many messages in parallel; the signer set and seen
//! cache sit behind short locks. Time is passed in (`now`, unix seconds) so tests drive it.
//! Reference: `shared/spec/op-p2p.md` §3.

mod error;
mod seen;
mod signers;

use std::sync::{Arc, Mutex, RwLock};

use alloy_primitives::{Address, B256, Bytes};

pub use error::{PeerFault, ValidationError, Verdict};
pub use seen::{MAX_BLOCKS_PER_HEIGHT, SEEN_CACHE_HEIGHTS, SeenCache};
pub use signers::{DEFAULT_SIGNER_GRACE_SECS, SignerMatch, SignerSet};

use crate::chain::ChainSpec;
use crate::wire::block_hash::{BlockHeader, transactions_root};
use crate::wire::canonical::{CanonicalSsz, decode_envelope_canonical};
use crate::wire::envelope::SignedBytes;
use crate::wire::keccak::{self, Message, keccak256_all};
use crate::wire::signature::{SIGNATURE_BYTES, payload_hash, recover_signer, signing_hash};
use crate::wire::snappy::{SnappyError, decompress_gossip};
use crate::wire::tx_trie::TransactionLeaves;
use crate::wire::{BlockVersion, ExecutionPayloadEnvelope, Transactions};

/// op-node's default `--p2p.gossip.timestamp.threshold`: blocks older than this are rejected.
pub const DEFAULT_PAST_WINDOW_SECS: u64 = 60;
/// op-node's fixed future window: blocks more than this ahead of the local clock are rejected.
pub const FUTURE_WINDOW_SECS: u64 = 5;

/// Validator settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatorConfig {
    /// How far in the past a block's timestamp may be (`--p2p.gossip.timestamp.threshold`).
    pub past_window_secs: u64,
    /// How far in the future a block's timestamp may be.
    pub future_window_secs: u64,
    /// Heights remembered by the seen cache.
    pub seen_cache_heights: usize,
}

impl Default for ValidatorConfig {
    fn default() -> Self {
        Self {
            past_window_secs: DEFAULT_PAST_WINDOW_SECS,
            future_window_secs: FUTURE_WINDOW_SECS,
            seen_cache_heights: SEEN_CACHE_HEIGHTS,
        }
    }
}

/// An accepted block, with what downstream consumers need.
#[derive(Debug, Clone)]
pub struct ValidBlock {
    /// The topic version it arrived on.
    pub version: BlockVersion,
    /// The decoded payload and beacon root.
    pub envelope: ExecutionPayloadEnvelope,
    /// The signer it recovered to.
    pub signer: Address,
    /// keccak256 of the signed bytes.
    pub payload_hash: B256,
    /// The signature as received.
    pub signature: [u8; SIGNATURE_BYTES],
    /// The signed bytes (shared with the message buffer) when they are the canonical encoding
    /// of `envelope`, as they almost always are; `None` for a form op-node accepts that
    /// re-encodes differently ([`crate::wire::canonical`]), which the store re-encodes.
    pub ssz: Option<CanonicalSsz>,
}

/// Validates gossip blocks for one chain.
#[derive(Debug)]
pub struct BlockValidator {
    chain: Arc<ChainSpec>,
    config: ValidatorConfig,
    signers: RwLock<SignerSet>,
    seen: Mutex<SeenCache>,
}

impl BlockValidator {
    /// A validator accepting the chain's configured signers.
    pub fn new(chain: Arc<ChainSpec>, config: ValidatorConfig) -> Self {
        let signers = SignerSet::new(chain.unsafe_block_signers.iter().copied());
        Self::with_signers(chain, config, signers)
    }

    /// A validator with an explicit signer set.
    pub fn with_signers(
        chain: Arc<ChainSpec>,
        config: ValidatorConfig,
        signers: SignerSet,
    ) -> Self {
        Self {
            seen: Mutex::new(SeenCache::with_capacity(config.seen_cache_heights)),
            chain,
            config,
            signers: RwLock::new(signers),
        }
    }

    /// The chain this validator is for.
    pub fn chain(&self) -> &Arc<ChainSpec> {
        &self.chain
    }

    /// Rotates to a new signer (from the L1 SystemConfig), keeping the old one for the grace period.
    pub fn rotate_signer(&self, new: Address, now: u64, grace_secs: u64) {
        self.signers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .rotate(new, now, grace_secs);
    }

    /// A snapshot of the accepted signers.
    pub fn signers(&self) -> SignerSet {
        self.signers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Validates a raw (compressed) gossip message received on the `version` topic at `now`.
    pub fn validate(
        &self,
        version: BlockVersion,
        data: &[u8],
        now: u64,
    ) -> Result<ValidBlock, ValidationError> {
        let decompressed = decompress_gossip(data)?;
        self.validate_decompressed(version, decompressed.into(), now)
    }

    /// Same as [`Self::validate`] for a message already decompressed (and size-checked) by the
    /// caller, so the message-id function and the validator can share one decompression.
    pub fn validate_decompressed(
        &self,
        version: BlockVersion,
        decompressed: Bytes,
        now: u64,
    ) -> Result<ValidBlock, ValidationError> {
        let len = decompressed.len();
        let parts =
            SignedBytes::split(decompressed).ok_or(SnappyError::TooSmall { declared: len })?;
        // A signature that cannot recover whatever it signs is refused before the payload is
        // hashed: the same REJECT op-node gives after hashing, at no cost.
        crate::wire::signature::check_form(&parts.signature)?;

        // Decoded ahead of the signature check so the payload hash and the transaction leaves
        // can be hashed in one pass; a decode error still counts only after the signature.
        let decoded = decode_envelope_canonical(version, &parts.signed);
        let hashes = MessageHashes::compute(
            &parts.signed,
            decoded.as_ref().ok().map(|(envelope, _)| envelope),
            keccak::hashes_in_pairs(),
        );
        let (signer, payload_hash) = self.check_signature(&parts, hashes.payload, now)?;
        let (envelope, ssz) = decoded?;
        check_timestamp(&self.config, envelope.payload.timestamp, now)?;
        check_fork_fields(&self.chain, version, &envelope)?;
        let transactions_root = hashes.transactions_root(&envelope.payload.transactions);
        check_block_hash_with_transactions_root(&envelope, transactions_root)?;
        let payload = &envelope.payload;
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe(payload.block_number, payload.block_hash)?;
        Ok(ValidBlock {
            version,
            envelope,
            signer,
            payload_hash,
            signature: parts.signature,
            ssz,
        })
    }

    /// Rules 5 and 5b in op-node's order: recover (REJECT if impossible), then IGNORE when no
    /// signer is configured, then REJECT an unknown signer. A block from the current signer ends
    /// any grace period of the previous one (op-node `ConfirmCurrentSigner`).
    fn check_signature(
        &self,
        parts: &SignedBytes,
        hash: B256,
        now: u64,
    ) -> Result<(Address, B256), ValidationError> {
        let recovered = recover_signer(&parts.signature, &signing_hash(self.chain.chain_id, hash))?;
        let signers = self.signers.read().unwrap_or_else(|p| p.into_inner());
        match signers.check(recovered, now) {
            SignerMatch::Current if signers.has_previous() => {
                drop(signers);
                self.signers
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .confirm_current();
            }
            SignerMatch::Current | SignerMatch::Previous => {}
            SignerMatch::Unset => return Err(ValidationError::SignerUnset),
            SignerMatch::Unknown => return Err(ValidationError::UnknownSigner { recovered }),
        }
        Ok((recovered, hash))
    }
}

/// Rules 7–8: the timestamp window. `now − window` saturates at 0 (op-node's unsigned
/// subtraction would wrap for a clock within 60 s of the epoch, which no real clock is).
pub fn check_timestamp(
    config: &ValidatorConfig,
    timestamp: u64,
    now: u64,
) -> Result<(), ValidationError> {
    if timestamp < now.saturating_sub(config.past_window_secs) {
        return Err(ValidationError::TimestampTooOld {
            timestamp,
            now,
            window_secs: config.past_window_secs,
        });
    }
    if timestamp > now.saturating_add(config.future_window_secs) {
        return Err(ValidationError::TimestampTooNew {
            timestamp,
            now,
            window_secs: config.future_window_secs,
        });
    }
    Ok(())
}

/// Rules 10–18: the fields each topic version must (not) carry, including the Jovian exception
/// for `blobGasUsed`.
pub fn check_fork_fields(
    chain: &ChainSpec,
    version: BlockVersion,
    envelope: &ExecutionPayloadEnvelope,
) -> Result<(), ValidationError> {
    let p = &envelope.payload;
    match (&p.withdrawals, version.has_withdrawals()) {
        (Some(_), false) => return Err(ValidationError::UnexpectedWithdrawals { version }),
        (None, true) => return Err(ValidationError::WithdrawalsMissing { version }),
        (Some(list), true) if !list.is_empty() => {
            return Err(ValidationError::WithdrawalsNotEmpty { count: list.len() });
        }
        _ => {}
    }
    if version.has_blob_fields() {
        match p.blob_gas_used {
            None => return Err(ValidationError::BlobGasUsedMissing { version }),
            Some(value) if value != 0 && !chain.is_jovian(p.timestamp) => {
                return Err(ValidationError::BlobGasUsedNonZero { value });
            }
            Some(_) => {}
        }
        match p.excess_blob_gas {
            None => return Err(ValidationError::ExcessBlobGasMissing { version }),
            Some(value) if value != 0 => {
                return Err(ValidationError::ExcessBlobGasNonZero { value });
            }
            Some(_) => {}
        }
    } else if p.blob_gas_used.is_some() || p.excess_blob_gas.is_some() {
        return Err(ValidationError::UnexpectedBlobFields { version });
    }
    match (
        envelope.parent_beacon_block_root,
        version.has_parent_beacon_root(),
    ) {
        (None, true) => return Err(ValidationError::ParentBeaconRootMissing { version }),
        (Some(_), false) => return Err(ValidationError::UnexpectedParentBeaconRoot { version }),
        _ => {}
    }
    match (p.withdrawals_root, version.has_withdrawals_root()) {
        (None, true) => Err(ValidationError::WithdrawalsRootMissing),
        (Some(_), false) => Err(ValidationError::UnexpectedWithdrawalsRoot { version }),
        _ => Ok(()),
    }
}

/// Rule 9: the claimed block hash equals the recomputed header hash.
pub fn check_block_hash(envelope: &ExecutionPayloadEnvelope) -> Result<(), ValidationError> {
    let root = transactions_root(&envelope.payload.transactions);
    check_block_hash_with_transactions_root(envelope, root)
}

/// [`check_block_hash`] with the transactions root already computed.
fn check_block_hash_with_transactions_root(
    envelope: &ExecutionPayloadEnvelope,
    transactions_root: B256,
) -> Result<(), ValidationError> {
    let computed = BlockHeader::with_transactions_root(envelope, transactions_root).hash();
    let claimed = envelope.payload.block_hash;
    if computed != claimed {
        return Err(ValidationError::BlockHashMismatch { claimed, computed });
    }
    Ok(())
}

/// The keccak work on a message's bytes, done in one pass where the CPU allows.
///
/// On a CPU that hashes two messages for the price of one ([`keccak::hashes_in_pairs`]), the
/// transaction leaves ride along with the payload hash, so the pass costs about what the payload
/// hash alone costs (the larger of the two), and a forged message costs no more than before. On
/// other CPUs the leaves wait for the block-hash check, which a forged message never reaches.
struct MessageHashes {
    /// keccak256 of the signed bytes (what op-node signs).
    payload: B256,
    /// The transaction trie's batched leaves and the pass's hashes (the payload's first, then
    /// one per leaf), when the leaves were hashed in the same pass.
    leaves: Option<(TransactionLeaves, Vec<B256>)>,
}

impl MessageHashes {
    /// Hashes `signed`, with the leaves of `decoded` in the same pass when `in_pairs`
    /// ([`keccak::hashes_in_pairs`] in production).
    fn compute(signed: &[u8], decoded: Option<&ExecutionPayloadEnvelope>, in_pairs: bool) -> Self {
        let Some(envelope) = decoded.filter(|_| in_pairs) else {
            return Self {
                payload: payload_hash(signed),
                leaves: None,
            };
        };
        let txs = &envelope.payload.transactions;
        let leaves = TransactionLeaves::new(txs);
        let hashes =
            keccak256_all(std::iter::once(Message::new(signed)).chain(leaves.messages(txs)));
        Self {
            payload: hashes
                .first()
                .copied()
                .unwrap_or_else(|| payload_hash(signed)),
            leaves: Some((leaves, hashes)),
        }
    }

    /// The transactions root of `txs` (the transactions the leaves were taken from), from the
    /// leaf hashes of this pass when there are any.
    fn transactions_root(&self, txs: &Transactions) -> B256 {
        self.leaves
            .as_ref()
            .and_then(|(leaves, hashes)| leaves.root(txs, hashes.get(1..)?))
            .unwrap_or_else(|| transactions_root(txs))
    }
}

/// Validation outcome as a verdict (ACCEPT on success).
pub fn verdict_of<T>(result: &Result<T, ValidationError>) -> Verdict {
    match result {
        Ok(_) => Verdict::Accept,
        Err(e) => e.verdict(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly
mod tests {
    use super::*;
    use crate::block_builder::{BlockSpec, L1Info, build_block};
    use crate::chain_config::load_chain;
    use crate::wire::ssz::encode_envelope;

    #[test]
    fn one_pass_and_separate_hashing_agree() {
        // Both paths run on every CPU here, whichever one `validate` takes on this one.
        let chain = load_chain("devnet").unwrap();
        for target_tx_bytes in [0, 1000, 100 * 1024] {
            let spec = BlockSpec {
                parent_hash: B256::repeat_byte(1),
                number: 7,
                timestamp: chain.genesis.l2_time + 1_000_000,
                target_tx_bytes,
                l1: L1Info::default(),
            };
            let envelope = build_block(&chain, &spec);
            let version = chain.block_version_at(spec.timestamp);
            let signed = encode_envelope(version, &envelope).unwrap();
            let txs = &envelope.payload.transactions;
            let paired = MessageHashes::compute(&signed, Some(&envelope), true);
            let separate = MessageHashes::compute(&signed, Some(&envelope), false);
            assert!(paired.leaves.is_some() && separate.leaves.is_none());
            assert_eq!(paired.payload, separate.payload);
            assert_eq!(paired.payload, alloy_primitives::keccak256(&signed));
            assert_eq!(
                paired.transactions_root(txs),
                separate.transactions_root(txs)
            );
            assert_eq!(
                BlockHeader::with_transactions_root(&envelope, paired.transactions_root(txs))
                    .hash(),
                envelope.payload.block_hash,
                "{target_tx_bytes} bytes"
            );
        }
    }
}
