//! Block hash recomputation: the header op-node's `CheckBlockHash` rebuilds from a payload.
//!
//! Last decode step of the gossip-in path before the seen cache; also used by req/resp
//! verification and by the block producer. Transactions are hashed as raw bytes into the ordered
//! trie (never decoded: OP blocks start with a 0x7e deposit).
//!
//! The header RLP is written here rather than through `alloy_consensus::Header` because
//! alloy's header holds the base fee as a `u64`, while the payload (and op-node's `big.Int`) carry
//! a full u256; a hand-written encoding is exact for every input and saves a copy of the extra
//! data and bloom on the hot path. A test checks it against alloy's `Header::hash_slow`.
//! Reference: `shared/spec/op-p2p.md` §3 ("Block-hash check").

use alloy_primitives::{Address, B64, B256, Bloom, Bytes, U256, b256, keccak256};
use alloy_rlp::{Encodable, Header as RlpHeader};

use super::ExecutionPayloadEnvelope;

/// keccak256(rlp([])): the ommers hash of every post-merge block (go-ethereum `EmptyUncleHash`).
pub const EMPTY_OMMERS_HASH: B256 =
    b256!("1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347");
/// Root of an empty trie (the withdrawals root of V2/V3 OP blocks).
pub const EMPTY_ROOT_HASH: B256 =
    b256!("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421");
/// sha256("") : the EIP-7685 requests hash with no requests (go-ethereum `EmptyRequestsHash`).
pub const EMPTY_REQUESTS_HASH: B256 =
    b256!("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

/// The header of the block a payload describes (go-ethereum `types.Header` field order; see
/// the Yellow Paper for each field).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockHeader {
    pub parent_hash: B256,
    pub ommers_hash: B256,
    pub beneficiary: Address,
    pub state_root: B256,
    pub transactions_root: B256,
    pub receipts_root: B256,
    pub logs_bloom: Bloom,
    pub difficulty: U256,
    pub number: u64,
    pub gas_limit: u64,
    pub gas_used: u64,
    pub timestamp: u64,
    pub extra_data: Bytes,
    pub mix_hash: B256,
    pub nonce: B64,
    pub base_fee_per_gas: U256,
    pub withdrawals_root: Option<B256>,
    pub blob_gas_used: Option<u64>,
    pub excess_blob_gas: Option<u64>,
    pub parent_beacon_block_root: Option<B256>,
    pub requests_hash: Option<B256>,
}

impl BlockHeader {
    /// Rebuilds the header exactly as op-node does: withdrawals hash = OP's `withdrawalsRoot` plus
    /// the empty requests hash for V4; the trie root of the withdrawals list for V2/V3; none for V1.
    pub fn from_envelope(envelope: &ExecutionPayloadEnvelope) -> Self {
        Self::with_transactions_root(envelope, transactions_root(&envelope.payload.transactions))
    }

    /// [`Self::from_envelope`] with the transactions root already computed (the validator
    /// hashes the trie's leaves together with the payload).
    pub fn with_transactions_root(
        envelope: &ExecutionPayloadEnvelope,
        transactions_root: B256,
    ) -> Self {
        let p = &envelope.payload;
        let (withdrawals_root, requests_hash) = match (p.withdrawals_root, &p.withdrawals) {
            (Some(root), _) => (Some(root), Some(EMPTY_REQUESTS_HASH)),
            (None, Some(list)) => (Some(withdrawals_trie_root(list)), None),
            (None, None) => (None, None),
        };
        Self {
            parent_hash: p.parent_hash,
            ommers_hash: EMPTY_OMMERS_HASH,
            beneficiary: p.fee_recipient,
            state_root: p.state_root,
            transactions_root,
            receipts_root: p.receipts_root,
            logs_bloom: p.logs_bloom,
            difficulty: U256::ZERO,
            number: p.block_number,
            gas_limit: p.gas_limit,
            gas_used: p.gas_used,
            timestamp: p.timestamp,
            extra_data: p.extra_data.clone(),
            mix_hash: p.prev_randao,
            nonce: B64::ZERO,
            base_fee_per_gas: p.base_fee_per_gas,
            withdrawals_root,
            blob_gas_used: p.blob_gas_used,
            excess_blob_gas: p.excess_blob_gas,
            parent_beacon_block_root: envelope.parent_beacon_block_root,
            requests_hash,
        }
    }

    /// keccak256 of the RLP encoding.
    pub fn hash(&self) -> B256 {
        let mut buf = Vec::with_capacity(self.length());
        self.encode(&mut buf);
        keccak256(&buf)
    }

    /// How many optional trailing fields are encoded. go-ethereum's `rlp:"optional"` omits
    /// trailing absent fields and writes an absent field followed by a present one as empty.
    fn optional_count(&self) -> usize {
        let present = [
            self.withdrawals_root.is_some(),
            self.blob_gas_used.is_some(),
            self.excess_blob_gas.is_some(),
            self.parent_beacon_block_root.is_some(),
            self.requests_hash.is_some(),
        ];
        present.iter().rposition(|&p| p).map_or(0, |i| i + 1)
    }

    fn payload_length(&self) -> usize {
        let mut len = self.parent_hash.length()
            + self.ommers_hash.length()
            + self.beneficiary.length()
            + self.state_root.length()
            + self.transactions_root.length()
            + self.receipts_root.length()
            + self.logs_bloom.length()
            + self.difficulty.length()
            + self.number.length()
            + self.gas_limit.length()
            + self.gas_used.length()
            + self.timestamp.length()
            + self.extra_data.length()
            + self.mix_hash.length()
            + self.nonce.length()
            + self.base_fee_per_gas.length();
        self.for_each_optional(|field| len += field.length());
        len
    }

    fn for_each_optional(&self, mut f: impl FnMut(OptionalField)) {
        let fields = [
            self.withdrawals_root.map(OptionalField::Hash),
            self.blob_gas_used.map(OptionalField::Int),
            self.excess_blob_gas.map(OptionalField::Int),
            self.parent_beacon_block_root.map(OptionalField::Hash),
            self.requests_hash.map(OptionalField::Hash),
        ];
        for field in fields.into_iter().take(self.optional_count()) {
            f(field.unwrap_or(OptionalField::Empty));
        }
    }
}

/// One optional header field; an absent one before a present one is encoded as an empty string.
#[derive(Clone, Copy)]
enum OptionalField {
    Hash(B256),
    Int(u64),
    Empty,
}

impl OptionalField {
    fn length(self) -> usize {
        match self {
            Self::Hash(h) => h.length(),
            Self::Int(v) => v.length(),
            Self::Empty => 1,
        }
    }

    fn encode(self, out: &mut dyn alloy_rlp::BufMut) {
        match self {
            Self::Hash(h) => h.encode(out),
            Self::Int(v) => v.encode(out),
            Self::Empty => out.put_u8(alloy_rlp::EMPTY_STRING_CODE),
        }
    }
}

impl Encodable for BlockHeader {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        RlpHeader {
            list: true,
            payload_length: self.payload_length(),
        }
        .encode(out);
        self.parent_hash.encode(out);
        self.ommers_hash.encode(out);
        self.beneficiary.encode(out);
        self.state_root.encode(out);
        self.transactions_root.encode(out);
        self.receipts_root.encode(out);
        self.logs_bloom.encode(out);
        self.difficulty.encode(out);
        self.number.encode(out);
        self.gas_limit.encode(out);
        self.gas_used.encode(out);
        self.timestamp.encode(out);
        self.extra_data.encode(out);
        self.mix_hash.encode(out);
        self.nonce.encode(out);
        self.base_fee_per_gas.encode(out);
        self.for_each_optional(|field| field.encode(out));
    }

    fn length(&self) -> usize {
        let payload = self.payload_length();
        payload + alloy_rlp::length_of_length(payload)
    }
}

/// The block hash a payload should carry.
pub fn compute_block_hash(envelope: &ExecutionPayloadEnvelope) -> B256 {
    BlockHeader::from_envelope(envelope).hash()
}

/// Ordered trie root over the raw transaction bytes (go-ethereum `DeriveSha`).
pub fn transactions_root(txs: &super::Transactions) -> B256 {
    super::tx_trie::transactions_root(txs)
}

/// Ordered trie root over RLP-encoded withdrawals.
pub fn withdrawals_trie_root(withdrawals: &[super::Withdrawal]) -> B256 {
    alloy_trie::root::ordered_trie_root(withdrawals)
}
