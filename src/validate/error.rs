//! Every reason a gossip block can fail, and the one place each reason becomes a verdict.
//!
//! The accept/ignore/reject policy is reviewed here and nowhere else (kona's pattern). The
//! mapping equals op-node's (`shared/spec/op-p2p.md` §3): two IGNOREs (no signer configured, block
//! already seen), everything else REJECT.

use alloy_primitives::{Address, B256};

use crate::wire::BlockVersion;
use crate::wire::signature::SignatureError;
use crate::wire::snappy::SnappyError;
use crate::wire::ssz::SszError;

/// A gossipsub validation result (maps 1:1 onto libp2p's `MessageAcceptance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Deliver locally and forward.
    Accept,
    /// Drop without penalising the sender.
    Ignore,
    /// Drop; the sender forwarded something invalid.
    Reject,
}

impl Verdict {
    /// Lowercase name, as printed by `check-message`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Ignore => "ignore",
            Self::Reject => "reject",
        }
    }
}

/// What a REJECT proves about the peer that forwarded the message: a fault every honest node
/// finds in the same bytes, whatever its clock, timestamp window or signer configuration
/// (project decision 5). Only these cost the forwarder score (`p2p::peers::app_score`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerFault {
    /// The bytes do not decode: snappy, the size bounds, or the payload's SSZ.
    Malformed,
    /// The signature is not a valid secp256k1 signature (bad recovery id or scalars, or no key
    /// recovers). A valid signature by a key we do not accept is not a fault: the signer may
    /// have rotated, or our configuration may lag.
    InvalidSignature,
    /// The claimed block hash is not the hash of the header.
    WrongBlockHash,
    /// A field the block's topic and fork forbid or require (withdrawals, blob gas, roots).
    ForkFields,
    /// More blocks at one height than an honest node forwards; proven only against a peer that
    /// itself delivered that many (`p2p::peers::equivocation`).
    TooManyAtHeight,
}

/// Why a gossip block was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // variant fields are named for what they carry
pub enum ValidationError {
    /// Rules 1–4: snappy header, size bounds, or body.
    #[error(transparent)]
    Snappy(#[from] SnappyError),
    /// Rule 5: no unsafe-block signer is configured (op-node: zero address).
    #[error("no unsafe block signer is configured")]
    SignerUnset,
    /// Rule 5b: the signature does not recover.
    #[error("invalid signature: {0}")]
    Signature(#[from] SignatureError),
    /// Rule 5b: it recovers, but not to an accepted signer.
    #[error("block signed by {recovered}, which is not an accepted unsafe block signer")]
    UnknownSigner { recovered: Address },
    /// Rule 6: the payload does not decode for the topic's version.
    #[error("payload does not decode: {0}")]
    Ssz(#[from] SszError),
    /// Rule 7: older than the past window.
    #[error("timestamp {timestamp} is more than {window_secs} s before now ({now})")]
    TimestampTooOld {
        timestamp: u64,
        now: u64,
        window_secs: u64,
    },
    /// Rule 8: further in the future than the future window.
    #[error("timestamp {timestamp} is more than {window_secs} s after now ({now})")]
    TimestampTooNew {
        timestamp: u64,
        now: u64,
        window_secs: u64,
    },
    /// Rule 9: the recomputed header hash differs from the claimed one.
    #[error("block hash {claimed} does not match the recomputed {computed}")]
    BlockHashMismatch { claimed: B256, computed: B256 },
    /// Rule 10: a withdrawals list on the V1 topic.
    #[error("withdrawals present on the {version} topic")]
    UnexpectedWithdrawals { version: BlockVersion },
    /// Rule 11: no withdrawals list on V2+.
    #[error("withdrawals missing on the {version} topic")]
    WithdrawalsMissing { version: BlockVersion },
    /// Rule 12: a non-empty withdrawals list (OP chains have none).
    #[error("{count} withdrawals present; OP blocks carry none")]
    WithdrawalsNotEmpty { count: usize },
    /// Rule 13: blob gas fields on V1/V2.
    #[error("blob gas fields present on the {version} topic")]
    UnexpectedBlobFields { version: BlockVersion },
    /// Rule 14: `blobGasUsed` missing on V3+.
    #[error("blobGasUsed missing on the {version} topic")]
    BlobGasUsedMissing { version: BlockVersion },
    /// Rule 15: non-zero `blobGasUsed` before Jovian.
    #[error("blobGasUsed is {value} before Jovian (must be 0)")]
    BlobGasUsedNonZero { value: u64 },
    /// Rule 16: `excessBlobGas` missing on V3+.
    #[error("excessBlobGas missing on the {version} topic")]
    ExcessBlobGasMissing { version: BlockVersion },
    /// Rule 16: non-zero `excessBlobGas` (never allowed on OP chains).
    #[error("excessBlobGas is {value} (must be 0)")]
    ExcessBlobGasNonZero { value: u64 },
    /// Rule 17: no parent beacon root on V3+.
    #[error("parent beacon block root missing on the {version} topic")]
    ParentBeaconRootMissing { version: BlockVersion },
    /// Spec rule "topic ≤ V2 ⇒ no parent beacon root" (unreachable after gossip decoding).
    #[error("parent beacon block root present on the {version} topic")]
    UnexpectedParentBeaconRoot { version: BlockVersion },
    /// Rule 18: no withdrawals root on V4.
    #[error("withdrawals root missing on the V4 topic")]
    WithdrawalsRootMissing,
    /// Spec rule "topic ≤ V3 ⇒ no withdrawals root" (unreachable after gossip decoding).
    #[error("withdrawals root present on the {version} topic")]
    UnexpectedWithdrawalsRoot { version: BlockVersion },
    /// Rule 19: more than 5 distinct blocks already accepted at this height. `hash` is the
    /// refused block's, so the forwarder's share can be told ([`crate::p2p::peers::equivocation`]).
    #[error("{seen} distinct blocks already seen at height {number}; refused {hash}")]
    TooManyBlocksAtHeight {
        number: u64,
        hash: B256,
        seen: usize,
    },
    /// Rule 20: this block was already accepted.
    #[error("block {hash} at height {number} was already seen")]
    AlreadySeen { number: u64, hash: B256 },
}

impl ValidationError {
    /// Every value [`Self::reason`] returns: the bounded set the metrics label `reason` draws
    /// from (a test checks the two agree).
    pub const REASONS: [&'static str; 24] = [
        "too_large",
        "too_small",
        "invalid_snappy",
        "signer_unset",
        "invalid_signature",
        "unknown_signer",
        "invalid_payload_encoding",
        "timestamp_too_old",
        "timestamp_too_new",
        "block_hash_mismatch",
        "unexpected_withdrawals",
        "withdrawals_missing",
        "withdrawals_not_empty",
        "unexpected_blob_fields",
        "blob_gas_used_missing",
        "blob_gas_used_nonzero",
        "excess_blob_gas_missing",
        "excess_blob_gas_nonzero",
        "parent_beacon_root_missing",
        "unexpected_parent_beacon_root",
        "withdrawals_root_missing",
        "unexpected_withdrawals_root",
        "too_many_blocks_at_height",
        "already_seen",
    ];

    /// op-node's verdict for this failure. The single place policy is decided.
    pub fn verdict(&self) -> Verdict {
        match self {
            Self::SignerUnset | Self::AlreadySeen { .. } => Verdict::Ignore,
            Self::Snappy(_)
            | Self::Signature(_)
            | Self::UnknownSigner { .. }
            | Self::Ssz(_)
            | Self::TimestampTooOld { .. }
            | Self::TimestampTooNew { .. }
            | Self::BlockHashMismatch { .. }
            | Self::UnexpectedWithdrawals { .. }
            | Self::WithdrawalsMissing { .. }
            | Self::WithdrawalsNotEmpty { .. }
            | Self::UnexpectedBlobFields { .. }
            | Self::BlobGasUsedMissing { .. }
            | Self::BlobGasUsedNonZero { .. }
            | Self::ExcessBlobGasMissing { .. }
            | Self::ExcessBlobGasNonZero { .. }
            | Self::ParentBeaconRootMissing { .. }
            | Self::UnexpectedParentBeaconRoot { .. }
            | Self::WithdrawalsRootMissing
            | Self::UnexpectedWithdrawalsRoot { .. }
            | Self::TooManyBlocksAtHeight { .. } => Verdict::Reject,
        }
    }

    /// What this failure proves about the forwarder (`None`: nothing, so no penalty). The
    /// single place punishment policy is decided; every REJECT left out depends on the judge's
    /// clock or settings (too old, too new, a signer not accepted here), and op-node gives those
    /// no score effect either.
    pub fn peer_fault(&self) -> Option<PeerFault> {
        match self {
            Self::Snappy(_) | Self::Ssz(_) => Some(PeerFault::Malformed),
            Self::Signature(_) => Some(PeerFault::InvalidSignature),
            Self::BlockHashMismatch { .. } => Some(PeerFault::WrongBlockHash),
            Self::UnexpectedWithdrawals { .. }
            | Self::WithdrawalsMissing { .. }
            | Self::WithdrawalsNotEmpty { .. }
            | Self::UnexpectedBlobFields { .. }
            | Self::BlobGasUsedMissing { .. }
            | Self::BlobGasUsedNonZero { .. }
            | Self::ExcessBlobGasMissing { .. }
            | Self::ExcessBlobGasNonZero { .. }
            | Self::ParentBeaconRootMissing { .. }
            | Self::UnexpectedParentBeaconRoot { .. }
            | Self::WithdrawalsRootMissing
            | Self::UnexpectedWithdrawalsRoot { .. } => Some(PeerFault::ForkFields),
            Self::TooManyBlocksAtHeight { .. } => Some(PeerFault::TooManyAtHeight),
            Self::SignerUnset
            | Self::UnknownSigner { .. }
            | Self::TimestampTooOld { .. }
            | Self::TimestampTooNew { .. }
            | Self::AlreadySeen { .. } => None,
        }
    }

    /// A stable snake_case code for this failure: a bounded set, fit for metric labels and for
    /// the `reason` field of `check-message`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Snappy(SnappyError::TooLarge { .. }) => "too_large",
            Self::Snappy(SnappyError::TooSmall { .. }) => "too_small",
            Self::Snappy(_) => "invalid_snappy",
            Self::SignerUnset => "signer_unset",
            Self::Signature(_) => "invalid_signature",
            Self::UnknownSigner { .. } => "unknown_signer",
            Self::Ssz(_) => "invalid_payload_encoding",
            Self::TimestampTooOld { .. } => "timestamp_too_old",
            Self::TimestampTooNew { .. } => "timestamp_too_new",
            Self::BlockHashMismatch { .. } => "block_hash_mismatch",
            Self::UnexpectedWithdrawals { .. } => "unexpected_withdrawals",
            Self::WithdrawalsMissing { .. } => "withdrawals_missing",
            Self::WithdrawalsNotEmpty { .. } => "withdrawals_not_empty",
            Self::UnexpectedBlobFields { .. } => "unexpected_blob_fields",
            Self::BlobGasUsedMissing { .. } => "blob_gas_used_missing",
            Self::BlobGasUsedNonZero { .. } => "blob_gas_used_nonzero",
            Self::ExcessBlobGasMissing { .. } => "excess_blob_gas_missing",
            Self::ExcessBlobGasNonZero { .. } => "excess_blob_gas_nonzero",
            Self::ParentBeaconRootMissing { .. } => "parent_beacon_root_missing",
            Self::UnexpectedParentBeaconRoot { .. } => "unexpected_parent_beacon_root",
            Self::WithdrawalsRootMissing => "withdrawals_root_missing",
            Self::UnexpectedWithdrawalsRoot { .. } => "unexpected_withdrawals_root",
            Self::TooManyBlocksAtHeight { .. } => "too_many_blocks_at_height",
            Self::AlreadySeen { .. } => "already_seen",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One error of every variant (a new variant breaks the exhaustive match below until it is
    /// added here, and then the reason list is checked for it).
    fn one_of_each() -> Vec<ValidationError> {
        let v = BlockVersion::V4;
        let all = vec![
            ValidationError::Snappy(SnappyError::TooLarge {
                declared: 1,
                limit: 0,
            }),
            ValidationError::Snappy(SnappyError::TooSmall { declared: 0 }),
            ValidationError::Snappy(SnappyError::Corrupt(snap::Error::Empty)),
            ValidationError::SignerUnset,
            ValidationError::Signature(SignatureError::RecoveryFailed),
            ValidationError::UnknownSigner {
                recovered: Address::ZERO,
            },
            ValidationError::Ssz(SszError::ScopeTooLarge { len: 0 }),
            ValidationError::TimestampTooOld {
                timestamp: 0,
                now: 0,
                window_secs: 0,
            },
            ValidationError::TimestampTooNew {
                timestamp: 0,
                now: 0,
                window_secs: 0,
            },
            ValidationError::BlockHashMismatch {
                claimed: B256::ZERO,
                computed: B256::ZERO,
            },
            ValidationError::UnexpectedWithdrawals { version: v },
            ValidationError::WithdrawalsMissing { version: v },
            ValidationError::WithdrawalsNotEmpty { count: 1 },
            ValidationError::UnexpectedBlobFields { version: v },
            ValidationError::BlobGasUsedMissing { version: v },
            ValidationError::BlobGasUsedNonZero { value: 1 },
            ValidationError::ExcessBlobGasMissing { version: v },
            ValidationError::ExcessBlobGasNonZero { value: 1 },
            ValidationError::ParentBeaconRootMissing { version: v },
            ValidationError::UnexpectedParentBeaconRoot { version: v },
            ValidationError::WithdrawalsRootMissing,
            ValidationError::UnexpectedWithdrawalsRoot { version: v },
            ValidationError::TooManyBlocksAtHeight {
                number: 0,
                hash: B256::ZERO,
                seen: 6,
            },
            ValidationError::AlreadySeen {
                number: 0,
                hash: B256::ZERO,
            },
        ];
        for e in &all {
            // Exhaustive on purpose: see the doc comment.
            match e {
                ValidationError::Snappy(_)
                | ValidationError::SignerUnset
                | ValidationError::Signature(_)
                | ValidationError::UnknownSigner { .. }
                | ValidationError::Ssz(_)
                | ValidationError::TimestampTooOld { .. }
                | ValidationError::TimestampTooNew { .. }
                | ValidationError::BlockHashMismatch { .. }
                | ValidationError::UnexpectedWithdrawals { .. }
                | ValidationError::WithdrawalsMissing { .. }
                | ValidationError::WithdrawalsNotEmpty { .. }
                | ValidationError::UnexpectedBlobFields { .. }
                | ValidationError::BlobGasUsedMissing { .. }
                | ValidationError::BlobGasUsedNonZero { .. }
                | ValidationError::ExcessBlobGasMissing { .. }
                | ValidationError::ExcessBlobGasNonZero { .. }
                | ValidationError::ParentBeaconRootMissing { .. }
                | ValidationError::UnexpectedParentBeaconRoot { .. }
                | ValidationError::WithdrawalsRootMissing
                | ValidationError::UnexpectedWithdrawalsRoot { .. }
                | ValidationError::TooManyBlocksAtHeight { .. }
                | ValidationError::AlreadySeen { .. } => {}
            }
        }
        all
    }

    #[test]
    fn only_faults_in_the_bytes_are_held_against_the_forwarder() {
        let unprovable: Vec<&str> = one_of_each()
            .iter()
            .filter(|e| e.peer_fault().is_none())
            .map(ValidationError::reason)
            .collect();
        assert_eq!(
            unprovable,
            [
                "signer_unset",
                "unknown_signer",
                "timestamp_too_old",
                "timestamp_too_new",
                "already_seen"
            ]
        );
        // Every IGNORE is fault-free (nothing to prove).
        for e in one_of_each() {
            if e.verdict() == Verdict::Ignore {
                assert_eq!(e.peer_fault(), None, "{e}");
            }
        }
    }

    #[test]
    fn the_reason_list_is_exactly_what_reason_returns() {
        let produced: Vec<&str> = one_of_each().iter().map(ValidationError::reason).collect();
        assert_eq!(produced, ValidationError::REASONS.to_vec());
    }
}
