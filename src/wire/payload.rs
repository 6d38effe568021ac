//! The execution payload as it travels in gossip and req/resp, and its V3/V4 envelope.
//!
//! Decoded by [`super::ssz`], hashed by [`super::block_hash`], validated by
//! [`crate::validate`]. Transactions stay opaque bytes throughout: an OP block starts with a
//! 0x7e deposit that generic Ethereum decoders refuse, and nothing in the gossip layer needs
//! more than the raw bytes.

use alloy_primitives::{Address, B256, Bloom, Bytes, U256};

/// An OP execution payload (the union of the V1..V4 layouts; absent fields are `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionPayload {
    /// Hash of the parent block.
    pub parent_hash: B256,
    /// Coinbase (the sequencer fee vault on OP chains).
    pub fee_recipient: Address,
    /// State trie root after the block.
    pub state_root: B256,
    /// Receipts trie root.
    pub receipts_root: B256,
    /// Logs bloom filter.
    pub logs_bloom: Bloom,
    /// `mixHash` in the header: the L1 origin's randao.
    pub prev_randao: B256,
    /// Block number.
    pub block_number: u64,
    /// Gas limit.
    pub gas_limit: u64,
    /// Gas used.
    pub gas_used: u64,
    /// Block timestamp, unix seconds.
    pub timestamp: u64,
    /// Header extra data; at most 32 bytes on the wire.
    pub extra_data: Bytes,
    /// EIP-1559 base fee (a full u256 on the wire, little-endian).
    pub base_fee_per_gas: U256,
    /// The block hash the sender claims; checked by recomputing the header.
    pub block_hash: B256,
    /// Raw EIP-2718 transaction bytes.
    pub transactions: Transactions,
    /// V2+: withdrawals (must be empty on OP chains; validation enforces it).
    pub withdrawals: Option<Vec<Withdrawal>>,
    /// V3+: blob gas used (the DA footprint from Jovian on).
    pub blob_gas_used: Option<u64>,
    /// V3+: excess blob gas (always zero on OP chains).
    pub excess_blob_gas: Option<u64>,
    /// V4: OP's withdrawals root (storage root of the L2ToL1MessagePasser).
    pub withdrawals_root: Option<B256>,
}

/// A payload plus, for V3 and V4, the parent beacon block root that precedes it on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionPayloadEnvelope {
    /// V3+: the parent beacon block root (any 32 bytes are accepted).
    pub parent_beacon_block_root: Option<B256>,
    /// The payload itself.
    pub payload: ExecutionPayload,
}

/// A beacon-chain withdrawal (44 bytes in SSZ). OP chains never have any, but the layout still
/// carries the list, so we decode it faithfully to give precise errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, alloy_rlp::RlpEncodable)]
pub struct Withdrawal {
    /// Monotonic withdrawal index.
    pub index: u64,
    /// Validator index.
    pub validator_index: u64,
    /// Recipient.
    pub address: Address,
    /// Amount in gwei.
    pub amount: u64,
}

/// The transaction list, stored as one contiguous buffer of bodies plus end offsets.
///
/// Decoding slices the bodies out of the message buffer without copying, and the index costs
/// 4 bytes per transaction (a `Vec<Bytes>` would cost 32), so a hostile 10 MiB message with the
/// maximum 2^20 empty transactions needs 4 MiB of index, not 32 MiB.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Transactions {
    /// Concatenated transaction bodies.
    bodies: Bytes,
    /// `ends[i]` is the end of transaction `i` within `bodies`; non-decreasing, last == len.
    ends: Vec<u32>,
}

impl Transactions {
    /// Builds the list from individual transactions (copies them into one buffer).
    ///
    /// Returns `None` if the bodies together exceed `u32::MAX` bytes, which no SSZ list can hold.
    pub fn from_slices<'a>(txs: impl IntoIterator<Item = &'a [u8]>) -> Option<Self> {
        let mut bodies = Vec::new();
        let mut ends = Vec::new();
        for tx in txs {
            bodies.extend_from_slice(tx);
            ends.push(u32::try_from(bodies.len()).ok()?);
        }
        Some(Self {
            bodies: bodies.into(),
            ends,
        })
    }

    /// Wraps already-validated parts (used by the SSZ decoder).
    pub(crate) fn from_parts(bodies: Bytes, ends: Vec<u32>) -> Self {
        debug_assert!(ends.windows(2).all(|w| w[0] <= w[1]));
        debug_assert!(ends.last().is_none_or(|&e| e as usize == bodies.len()));
        Self { bodies, ends }
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there are no transactions.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Total size of all bodies.
    pub fn total_bytes(&self) -> usize {
        // The last end, not `bodies.len()`: only bytes that belong to a transaction count.
        self.ends.last().map_or(0, |&end| end as usize)
    }

    /// Transaction `i`, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)? as usize;
        let start = match i.checked_sub(1) {
            Some(prev) => *self.ends.get(prev)? as usize,
            None => 0,
        };
        self.bodies.get(start..end)
    }

    /// Transaction `i` as shared bytes (no copy).
    pub fn get_bytes(&self, i: usize) -> Option<Bytes> {
        let slice = self.get(i)?;
        Some(self.bodies.slice_ref(slice))
    }

    /// Iterates over the raw transactions in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        let mut start = 0usize;
        self.ends.iter().map(move |&end| {
            let end = end as usize;
            // Invariant of construction: ends are non-decreasing and within `bodies`.
            let tx = self.bodies.get(start..end).unwrap_or_default();
            start = end;
            tx
        })
    }
}

impl std::fmt::Debug for Transactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transactions")
            .field("count", &self.len())
            .field("bytes", &self.total_bytes())
            .finish()
    }
}

impl ExecutionPayload {
    /// An all-zero payload of the given version's shape (every optional field of that version
    /// present and zero, no transactions). A starting point for builders and tests.
    pub fn empty(version: super::BlockVersion) -> Self {
        Self {
            parent_hash: B256::ZERO,
            fee_recipient: Address::ZERO,
            state_root: B256::ZERO,
            receipts_root: B256::ZERO,
            logs_bloom: Bloom::ZERO,
            prev_randao: B256::ZERO,
            block_number: 0,
            gas_limit: 0,
            gas_used: 0,
            timestamp: 0,
            extra_data: Bytes::new(),
            base_fee_per_gas: U256::ZERO,
            block_hash: B256::ZERO,
            transactions: Transactions::default(),
            withdrawals: version.has_withdrawals().then(Vec::new),
            blob_gas_used: version.has_blob_fields().then_some(0),
            excess_blob_gas: version.has_blob_fields().then_some(0),
            withdrawals_root: version.has_withdrawals_root().then_some(B256::ZERO),
        }
    }
}
